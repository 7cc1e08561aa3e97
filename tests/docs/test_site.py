"""The built site, read as HTML: what `mkdocs build --strict` stays green about when it breaks."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup, SoupStrainer
from PIL import Image

from .helpers import (
    COLAB,
    DEFAULT_LANGUAGE,
    DOCS,
    LANGUAGES,
    NOTEBOOKS,
    ROOT,
    language_of,
    mermaid_count,
    mkdocs_config,
    pages,
    read_notebook,
    repo_url,
    url_path,
)

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


def page_html(site: Path, src: Path) -> Path:
    """Where the page built from ``docs/<src>`` lands in the built ``site``."""
    return site / url_path(src) / "index.html"


def soup(path: Path) -> BeautifulSoup:
    assert path.is_file(), f"not built: {path}"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_page_is_rendered_not_copied(built_site, notebook):
    html_path = page_html(built_site, notebook)
    page = soup(html_path)
    article = page.select_one("article")
    assert article is not None, f"{html_path} is no material page"
    assert '"cell_type"' not in article.text, "the notebook came out as raw JSON"
    stored = read_notebook(notebook)
    code_cells = [c for c in stored.cells if c.cell_type == "code"]
    rendered = [c for c in page.select(".jp-CodeCell") if c.find_parent(class_="jp-CodeCell") is None]
    assert len(rendered) == len(code_cells), "not every code cell was rendered"
    figures = [
        base64.b64decode(o["data"]["image/png"])
        for c in code_cells
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    images = page.select(".jp-OutputArea-output img")
    assert len(images) == len(figures), f"{len(figures)} figures stored, {len(images)} shown"
    # Each figure is a file beside the page, not a data: URL in it (hooks/notebook_pages.py, 6),
    # loaded lazily and with its size, so that nothing moves when it arrives.
    for image, stored_png in zip(images, figures, strict=True):
        src = image["src"]
        assert re.fullmatch(r"figure-[0-9a-f]{16}\.png", src), f"{html_path}: figure at {src[:40]!r}"
        assert (html_path.parent / src).read_bytes() == stored_png, f"{src} is not the stored figure"
        width, height = Image.open(io.BytesIO(stored_png)).size
        assert (image.get("width"), image.get("height")) == (str(width), str(height)), image.attrs
        assert image.get("loading") == "lazy", f"{src} is not loaded lazily"
    nav_links = [unquote(a["href"]) for a in page.select(".md-nav a.md-nav__link[href]")]
    assert any(
        link.endswith(f"notebooks/{notebook.name.split('.')[0]}/") or link in ("./", "") for link in nav_links
    ), "the notebook page is not in the navigation"


@pytest.mark.parametrize("src", pages() + NOTEBOOK_FILES, ids=lambda p: str(p.relative_to(DOCS)))
def test_table_of_contents_links_to_real_headings(built_site, src):
    page = soup(page_html(built_site, src))
    ids = {tag["id"] for tag in page.select("[id]")}
    toc = page.select('nav.md-nav--secondary a.md-nav__link[href^="#"]')
    broken = [a["href"] for a in toc if unquote(a["href"][1:]) not in ids]
    assert not broken, f"table of contents links to missing ids: {broken}"
    assert all(a["href"] != "#" for a in toc), "a heading got an empty id"


@pytest.mark.parametrize("src", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_mermaid_diagram_reaches_the_page_as_svg(built_site, src):
    expected = mermaid_count(src.read_text(encoding="utf-8"))
    page = soup(page_html(built_site, src))
    figures = page.select("figure.diagram")
    assert len(figures) == expected, f"{expected} diagrams in the source, {len(figures)} drawn"
    assert not page.select("pre.mermaid, div.mermaid"), "a diagram is left for a script to draw"
    assert all(f.select("svg text") for f in figures), "a drawing without text"
    assert "mermaid.min.js" not in str(page), "the page still loads the mermaid bundle"


def test_site_url_is_the_pages_address_of_the_repository():
    """The default site_url is where GitHub Pages serves the repository of repo_url."""
    config = mkdocs_config()
    owner, repo = repo_url().split("/")[-2:]
    if "SITE_URL" not in os.environ:
        assert config["site_url"] == f"https://{owner}.github.io/{repo}/"
    assert config["site_url"].endswith("/")


def test_language_switcher_links_are_relative(built_site):
    """Links under the site's own path would leave a copy opened from files: every page's
    switcher links are relative (the 404 page, built once for every address, has absolute ones)."""
    for html in built_site.rglob("*.html"):
        if html.name == "404.html" or "assets" in html.relative_to(built_site).parts:
            continue
        switcher = BeautifulSoup(
            html.read_text(encoding="utf-8"), "lxml", parse_only=SoupStrainer("div", class_="md-select")
        )
        links = switcher.select(".md-select a[hreflang]")
        assert len(links) == len(LANGUAGES), f"{html}: the switcher has {len(links)} links"
        for link in links:
            assert not link["href"].startswith(("/", "http")), f"{html}: switcher link {link['href']}"


def test_404_page_speaks_both_languages_and_finds_its_assets(built_site):
    page = soup(built_site / "404.html")
    path = urlsplit(mkdocs_config()["site_url"]).path
    assert {b["lang"] for b in page.select("[data-not-found]")} == set(LANGUAGES)
    sheets = [link["href"] for link in page.select('link[rel="stylesheet"]')]
    assert sheets and all(href.startswith(path) for href in sheets), f"404 stylesheets: {sheets}"
    assert "mermaid" not in str(page.select("script")), "the 404 page loads mermaid"


def test_notebook_search_entries_hold_no_prompts_buttons_or_pilcrows(built_site):
    for language in LANGUAGES:
        folder = built_site if language == DEFAULT_LANGUAGE else built_site / language
        index = json.loads((folder / "search" / "search_index.json").read_text(encoding="utf-8"))
        notebook_docs = [d for d in index["docs"] if "notebooks/" in d["location"]]
        assert notebook_docs, f"no notebook in the {language} search index"
        for doc in notebook_docs:
            text = doc["title"] + " " + doc["text"]
            for junk in ("In [", "Out[", "Copied!", "¶"):
                assert junk not in text, f"{language} index, {doc['location']}: {junk!r} in {text[:120]!r}"


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_figures_have_alt_text_in_the_page_language(built_site, notebook):
    images = soup(page_html(built_site, notebook)).select(".jp-OutputArea-output img")
    for image in images:
        alt = image.get("alt", "")
        assert alt and "No description" not in alt, f"{notebook.name}: figure without alt text"
        assert bool(re.search("[а-яё]", alt, re.I)) == (language_of(notebook) == "ru"), alt


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_page_links_to_colab_and_download_in_its_language(built_site, notebook):
    html_path = page_html(built_site, notebook)
    page = soup(html_path)
    colab = page.select_one("a[data-colab]")
    assert colab is not None, "no Open in Colab link"
    match = COLAB.fullmatch(colab["href"])
    assert match, colab["href"]
    owner, repo, path = match.groups()
    assert f"https://github.com/{owner}/{repo}" == repo_url()
    assert path == f"docs/notebooks/{notebook.name}", "Colab opens another notebook than the page shows"
    download = page.select_one("a[data-download]")
    assert download is not None and (html_path.parent / download["href"]).is_file(), (
        "download link leads nowhere"
    )


def test_every_colab_link_names_a_file_in_the_repository(built_site):
    texts = [(p, p.read_text(encoding="utf-8")) for p in [ROOT / "README.md", *DOCS.rglob("*.md")]]
    texts += [(p, p.read_text(encoding="utf-8")) for p in built_site.rglob("*.html")]
    links = [(p, m) for p, text in texts for m in COLAB.finditer(text)]
    assert links, "no Colab link anywhere"
    for path, match in links:
        owner, repo, repo_path = match.groups()
        assert f"https://github.com/{owner}/{repo}" == repo_url(), f"{path}: {match.group(0)}"
        assert (ROOT / repo_path).is_file(), f"{path}: Colab link to a missing file {repo_path}"


def test_each_language_searches_only_its_own_pages(built_site):
    for language in LANGUAGES:
        folder = built_site if language == DEFAULT_LANGUAGE else built_site / language
        index = json.loads((folder / "search" / "search_index.json").read_text(encoding="utf-8"))
        assert index["docs"], f"empty {language} search index"
        assert language in index["config"]["lang"], f"no {language} stemming in the {language} index"
        other = [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE]
        leaked = [d["location"] for d in index["docs"] if d["location"].split("/")[0] in other]
        assert not leaked, f"the {language} index holds pages of another language: {leaked[:3]}"
        for doc in index["docs"]:
            if doc["location"].endswith("/") and doc["location"].count("/") <= 2:
                assert (folder / doc["location"] / "index.html").is_file() or doc["location"] == "", doc[
                    "location"
                ]


def test_home_pages_link_the_offline_copy_at_the_site_root(built_site):
    """The deploy workflow runs `make offline`, which writes site/simple-llm-offline.zip: the home
    page of each language links to that file at the root of the site."""
    from posixpath import normpath
    from urllib.parse import urljoin

    from scripts.build_offline import ZIP

    assert ZIP == ROOT / "site" / "simple-llm-offline.zip"
    assert "site/simple-llm-offline.zip" in (ROOT / "Makefile").read_text(encoding="utf-8")
    for language in LANGUAGES:
        home = "" if language == DEFAULT_LANGUAGE else f"{language}/"
        links = [a["href"] for a in soup(built_site / home / "index.html").select("article a[href$='.zip']")]
        assert links, f"the {language} home page does not link the offline copy"
        assert {normpath(urljoin(f"/{home}", href)) for href in links} == {"/simple-llm-offline.zip"}, links


_SCRIPT_TAG = re.compile(r"<script\b[^>]*>")


def test_every_page_defers_materials_bundle_and_what_follows_it(built_site):
    """overrides/main.html defers material's bundle so that a page paints before the script runs
    (docs/benchmark: Formulas). Every page (the 404 page included) loads the bundle once, deferred,
    and every script after it is a deferred file too, so that the bundle still runs before them
    (an inline script after it would now run before the bundle)."""
    problems = {}
    for path in sorted(built_site.rglob("*.html")):
        if "assets" in path.relative_to(built_site).parts:
            continue
        tags = _SCRIPT_TAG.findall(path.read_text(encoding="utf-8"))
        bundles = [
            i for i, tag in enumerate(tags) if re.search(r"assets/javascripts/bundle\.\w+\.min\.js", tag)
        ]
        if len(bundles) != 1:
            problems[path] = f"{len(bundles)} bundle tags"
            continue
        after = tags[bundles[0] :]
        blocking = [tag for tag in after if " defer" not in tag]
        if blocking:
            problems[path] = blocking
    assert not problems, {str(p.relative_to(built_site)): v for p, v in list(problems.items())[:5]}
