"""The built site in Chromium: every page works for a reader, offline, in both languages and
both colour schemes, and stays light.

The pages come from docs/ (every page and notebook in each language) and a check makes sure the
built site has exactly these. Each page is opened once per colour scheme; every check below reads
that one visit.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from simple_llm.plotting import MIN_FONT_PT
from tests.docs.helpers import COLAB, DEFAULT_LANGUAGE, LANGUAGES, ROOT, repo_url

from .browsing import (
    DEVICES,
    HTML_BUDGET,
    INSPECT,
    MIN_DIAGRAM_TEXT_PX,
    MIN_FIGURE_TEXT_PX,
    READY_TIMEOUT_MS,
    SCREENSHOTS,
    WEIGHTS,
    Visit,
    built_page_paths,
    chromium_problem,
    contrast,
    first_visit_budget,
    is_local,
    language_of_path,
    luminance,
    page_paths,
    transfer_bytes,
    twin_path,
)

PAGES = page_paths()
SCHEMES = ("light", "dark")
DEVICE_NAMES = ("desktop", "phone")
CYRILLIC = re.compile(r"[а-яё]", re.I)
MATERIAL_SCHEME = {"light": "default", "dark": "slate"}
MIN_TEXT_CONTRAST = 4.5  # WCAG AA for body text
MIN_DIAGRAM_CONTRAST = 3.0  # WCAG AA for graphics and large text (diagram labels)


def static_html(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def mermaid_blocks(html: str) -> int:
    """The diagrams of a built page (drawn ahead of time by hooks/diagrams.py)."""
    return len(re.findall(r'<figure class="diagram"', html))


def is_notebook_html(html: str) -> bool:
    return 'class="jupyter-wrapper"' in html


def screenshot_name(path: str, scheme: str) -> str:
    language = language_of_path(path)
    bare = path if language == DEFAULT_LANGUAGE else path[len(language) + 1 :]
    return f"{language}-{bare.strip('/').replace('/', '_') or 'home'}-{scheme}.png"


@pytest.fixture(scope="module")
def visited(browsing, site_root):
    """Every page, visited once in the light palette on a desktop and on a phone (the browser
    loads several at a time)."""
    browsing.visit_all(PAGES, "light", screenshots=screenshots(site_root, "light"))
    browsing.visit_all(PAGES, "light", device="phone")
    return browsing


# The browser and the pages --------------------------------------------------------------------
def test_chromium_is_installed():
    problem = chromium_problem()
    assert problem is None, problem


def test_a_request_to_another_host_fails_at_once_and_is_recorded(browsing, server):
    """The checks run offline: a page that asks another host gets an error at once (Chromium
    resolves no other host: conftest.OTHER_HOSTS_FAIL), and its visit records the request."""
    visit = Visit(path="", scheme="light")
    page = browsing.new_page(visit=visit)
    try:
        page.goto(server.url(""))
        began = time.monotonic()
        page.evaluate("() => fetch('https://example.com/x.js').then(() => 'loaded', () => 'failed')")
        took = time.monotonic() - began
    finally:
        page.close()
    assert "https://example.com/x.js" in visit.requests
    assert any(f.startswith("https://example.com/x.js: ") for f in visit.failed), visit.failed
    assert took < 5, f"a request to another host took {took:.1f} s to fail"


def test_browser_checks_cover_every_built_page(site_root):
    built = built_page_paths(site_root)
    assert built, f"no page in {site_root}"
    assert built == PAGES, (
        "the pages in docs/ and the pages of the built site differ: "
        f"only in docs/: {sorted(set(PAGES) - set(built))}, only built: {sorted(set(built) - set(PAGES))}"
    )


@pytest.mark.parametrize("device", DEVICE_NAMES)
@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_without_errors(visited, path, device):
    """Every page on both screens: no request to another host, none failed, no error. The search
    worker and its files load for real on the phone (on the desktop the tabs get an empty worker:
    tests/browser/conftest.py says why)."""
    visit = visited.visit(path, device=device)
    assert visit.status == 200, f"/{path}: HTTP {visit.status}"
    outside = sorted({url for url in visit.requests if not is_local(url)})
    assert not outside, f"/{path} requests other hosts (blocked here; offline they fail): {outside}"
    assert not visit.failed, f"/{path}: requests that failed: {visit.failed}"
    assert not visit.page_errors, f"/{path}: uncaught errors: {visit.page_errors}"
    assert not visit.console_errors, f"/{path}: console errors: {visit.console_errors}"
    assert visit.not_ready is None, f"/{path}: {visit.not_ready}"


@pytest.mark.parametrize("device", DEVICE_NAMES)
@pytest.mark.parametrize("path", PAGES)
def test_every_diagram_is_drawn_with_readable_text(visited, site_root, path, device):
    """Diagrams are SVG in the page (no script draws them), one drawing shown per diagram, and
    their smallest text is at least MIN_DIAGRAM_TEXT_PX on the screen."""
    expected = mermaid_blocks(static_html(site_root, path))
    info = visited.visit(path, device=device).info
    assert info["pendingMermaid"] == 0, f"/{path}: {info['pendingMermaid']} diagram(s) left to a script"
    diagrams = info["diagrams"]
    assert len(diagrams) == expected, f"/{path}: {expected} diagram(s) in the HTML, {len(diagrams)} seen"
    for number, diagram in enumerate(diagrams, start=1):
        name = f"/{path} ({device}): diagram {number}"
        assert diagram["svg"] and diagram["shown"] == 1, f"{name} shows {diagram['shown']} drawings"
        assert diagram["text"] and diagram["labels"], f"{name} is an SVG without text"
        assert diagram["width"] > 50 and diagram["height"] > 20, f"{name} is {diagram}"
        smallest = min(label["px"] for label in diagram["labels"])
        assert smallest >= MIN_DIAGRAM_TEXT_PX[device] - 0.05, (
            f"{name}: text {smallest:.1f} px, at least {MIN_DIAGRAM_TEXT_PX[device]} px wanted"
        )


@pytest.mark.parametrize("path", PAGES)
def test_phone_page_does_not_scroll_sideways(visited, path):
    info = visited.visit(path, device="phone").info
    assert info["sideways"] <= 1, f"/{path}: the page is {info['sideways']} px wider than a 390-px phone"


@pytest.mark.parametrize("device", DEVICE_NAMES)
@pytest.mark.parametrize("path", PAGES)
def test_figures_have_readable_labels_and_real_alt_text(visited, path, device):
    """A figure's smallest text (matplotlib's MIN_FONT_PT at the dpi the PNG was saved with) at the
    scale the page shows it; alt text in the page's language that is not nbconvert's filler."""
    language = language_of_path(path)
    for image in visited.visit(path, device=device).info["images"]:
        name = f"/{path} ({device}): figure {image['src']}..."
        alt = (image["alt"] or "").strip()
        assert len(alt) >= 12 and "No description" not in alt, f"{name} has no real alt text: {alt!r}"
        assert bool(CYRILLIC.search(alt)) == (language == "ru"), (
            f"{name}: alt text not in {language}: {alt!r}"
        )
        if not image["notebook"]:
            continue
        assert image["dpi"], f"{name}: no resolution in the PNG"
        label_px = MIN_FONT_PT * image["dpi"] / 72 * image["width"] / image["naturalWidth"]
        assert label_px >= MIN_FIGURE_TEXT_PX[device], (
            f"{name}: its smallest labels show at {label_px:.1f} px (at least {MIN_FIGURE_TEXT_PX[device]} px"
            f" wanted; {image['naturalWidth']} px wide, shown at {image['width']:.0f} px)"
        )
        assert image["fullSize"], f"{name} does not open full size"


def test_a_figure_opens_full_size_on_tap(browsing, server, site_root):
    path = next(
        p
        for p in PAGES
        if "<img" in static_html(site_root, p) and is_notebook_html(static_html(site_root, p))
    )
    page = browsing.new_page(device="phone")
    try:
        page.goto(server.url(path))
        figure = page.locator(".jp-RenderedImage img").first
        figure.scroll_into_view_if_needed()
        shown = figure.evaluate("img => img.getBoundingClientRect().width")
        figure.tap()
        full = page.locator("dialog.figure-dialog[open] img")
        full.wait_for(timeout=READY_TIMEOUT_MS)
        natural = full.evaluate("img => [img.getBoundingClientRect().width, img.naturalWidth]")
        assert natural[0] >= natural[1] - 1 > shown, f"/{path}: full size shows {natural}, the page {shown}"
        page.keyboard.press("Escape")
        assert page.locator("dialog.figure-dialog[open]").count() == 0, "Escape does not close the figure"
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES)
def test_table_of_contents_links_land_on_headings(visited, path):
    toc = visited.visit(path).info["toc"]
    broken = [link["href"] for link in toc if not link["found"]]
    assert not broken, f"/{path}: table of contents links to no heading: {broken}"


@pytest.mark.parametrize("path", PAGES)
def test_language_switcher_leads_to_the_same_page_and_back(visited, server, path):
    links = {link["lang"]: server.path_of(link["href"]) for link in visited.visit(path).info["switcher"]}
    assert set(links) == set(LANGUAGES), f"/{path}: the language switcher offers {sorted(links)}"
    own = language_of_path(path)
    for language in LANGUAGES:
        assert links[language] == twin_path(path, language), (
            f"/{path}: the {language} link leads to /{links[language]}, not the same page"
        )
        if language == own:
            continue
        other = visited.visit(links[language])
        assert other.status == 200, f"/{links[language]}: HTTP {other.status}"
        back = {link["lang"]: server.path_of(link["href"]) for link in other.info["switcher"]}
        assert back.get(own) == path, f"/{links[language]}: the {own} link leads to /{back.get(own)}"


def test_language_switcher_works_with_the_mouse(browsing, server):
    start = (
        PAGES[0] if language_of_path(PAGES[0]) == DEFAULT_LANGUAGE else twin_path(PAGES[0], DEFAULT_LANGUAGE)
    )
    page = browsing.new_page()
    try:
        page.goto(server.url(start))
        path = start
        for language in [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE] + [DEFAULT_LANGUAGE]:
            page.hover(".md-select")
            page.click(f".md-select a[hreflang='{language}']")
            target = twin_path(path, language)
            page.wait_for_url(server.url(target), timeout=READY_TIMEOUT_MS)
            assert page.evaluate("document.documentElement.lang") == language
            path = target
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES)
def test_colab_links_open_the_notebook_of_the_page_language(visited, path):
    language = language_of_path(path)
    for href in visited.visit(path).info["colab"]:
        match = COLAB.fullmatch(href)
        assert match, f"/{path}: not a Colab link to this repository: {href}"
        owner, repo, repo_path = match.groups()
        assert f"https://github.com/{owner}/{repo}" == repo_url(), f"/{path}: {href}"
        assert repo_path.endswith(f".{language}.ipynb"), f"/{path} ({language}) opens {repo_path} in Colab"
        assert (ROOT / repo_path).is_file(), f"/{path}: Colab opens {repo_path}, not in the repository"


# Search -----------------------------------------------------------------------------------------
def index_words(site: Path, language: str) -> Counter:
    folder = site if language == DEFAULT_LANGUAGE else site / language
    index = json.loads((folder / "search" / "search_index.json").read_text(encoding="utf-8"))
    words = Counter()
    for doc in index["docs"]:
        text = unescape(re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"])).lower()
        words.update(re.findall(r"[a-zа-яё]+", text))
    return words


# Other forms of a Russian word that the Snowball stemmer (lunr.ru) reduces to the same stem.
RUSSIAN_FORMS = [
    (re.compile(r"^(\w{4,}н)(ие|ия|ию|ии)$"), r"\1ием"),  # внимание, внимания -> вниманием
    (re.compile(r"^(\w{3,}[бвгдзклмнпрстфх])(ы|ов|ам|ах)$"), r"\1ами"),  # головы -> головами
]


def russian_query(words: Counter) -> tuple[str, str]:
    """A form of a frequent Russian word of the site that no page has itself."""
    for word, _ in words.most_common():
        for pattern, replacement in RUSSIAN_FORMS:
            if pattern.match(word):
                form = pattern.sub(replacement, word)
                if form not in words:
                    return word, form
    raise AssertionError("no Russian word in the search index to try other forms of")


def search(browsing, server, path: str, query: str) -> list[dict]:
    """Material's search box on ``path``: for each result of the whole ``query``, its site path,
    the words its link highlights (``?h=``) and the words it lists as missing (struck through)."""
    page = browsing.new_page()
    try:
        page.goto(server.url(path))
        meta = page.locator(".md-search-result__meta")
        box = page.locator("input.md-search__input")
        box.click()
        placeholder = meta.inner_text()
        # The whole query at once (typed letter by letter, the results of its first letters show
        # for a moment), then a key press: material searches on keyup.
        box.fill(query)
        box.press("End")
        try:
            page.wait_for_function(
                "placeholder => document.querySelector('.md-search-result__meta').textContent.trim() !== placeholder",
                arg=placeholder.strip(),
                timeout=READY_TIMEOUT_MS,
                polling=100,
            )
        except Exception:
            raise AssertionError(
                f"/{path}: the search for {query!r} never answered ({meta.inner_text()!r})"
            ) from None
        results = page.eval_on_selector_all(
            ".md-search-result__item > a",
            "links => links.map(a => ({ href: a.href, missing: [...a.querySelectorAll('del')].map(d => d.textContent) }))",
        )
        if not results:
            raise AssertionError(f"/{path}: searching {query!r} found nothing ({meta.inner_text()!r})")
    finally:
        page.close()
    found = []
    for result in results:
        words = parse_qs(urlsplit(result["href"]).query).get("h", [""])[0].split()
        # A result of a shorter, half-typed query would carry that one; a stem is a prefix.
        assert all(query.startswith(w) for w in words), f"results of another query than {query!r}: {words}"
        found.append(
            {
                "path": server.path_of(result["href"]),
                "href": result["href"],
                "h": words,
                "missing": result["missing"],
            }
        )
    return found


def test_russian_search_finds_other_forms_of_a_word(browsing, server, site_root):
    word, query = russian_query(index_words(site_root, "ru"))
    results = search(browsing, server, "", query)
    assert results, f"searching {query!r} (the pages say {word!r}) found nothing"
    foreign = [r["path"] for r in results if language_of_path(r["path"]) != DEFAULT_LANGUAGE]
    assert not foreign, f"the Russian search for {query!r} returns pages of other languages: {foreign}"
    struck = [r for r in results if r["missing"]]
    assert not struck, f"results list {query!r} as missing although they match it: {struck[:3]}"
    unmarked = [r["path"] for r in results if not r["h"]]
    assert not unmarked, f"result links for {query!r} that highlight nothing (empty ?h=): {unmarked[:5]}"
    page = browsing.new_page()
    try:
        page.goto(results[0]["href"])
        page.wait_for_function(
            "() => document.querySelectorAll('article mark').length > 0", timeout=READY_TIMEOUT_MS
        )
        marked = page.eval_on_selector_all(
            "article mark", "marks => marks.map(m => m.textContent.toLowerCase())"
        )
    finally:
        page.close()
    assert any(m.startswith(results[0]["h"][0]) for m in marked), (
        f"{results[0]['href']} highlights {marked[:5]}"
    )


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE])
def test_search_returns_pages_of_its_own_language_only(browsing, server, site_root, language):
    words = index_words(site_root, language)
    query = next(w for w, _ in words.most_common() if len(w) >= 6 and w.isascii())
    results = search(browsing, server, f"{language}/", query)
    assert results, f"searching {query!r} on /{language}/ found nothing"
    foreign = [r["path"] for r in results if not r["path"].startswith(f"{language}/")]
    assert not foreign, f"the {language} search for {query!r} returns pages of other languages: {foreign}"


# Light and dark ---------------------------------------------------------------------------------
def screenshot_pages(site: Path) -> list[str]:
    """Each language's notebook page and other page with the most to look at (figures, diagrams)."""

    def richness(path):
        html = static_html(site, path)
        return mermaid_blocks(html) + html.count("<img")

    chosen = []
    for language in LANGUAGES:
        own = [p for p in PAGES if language_of_path(p) == language]
        notebooks = [p for p in own if is_notebook_html(static_html(site, p))]
        others = [p for p in own if p not in notebooks and mermaid_blocks(static_html(site, p))]
        for group in (notebooks, others):
            if group:
                chosen.append(max(group, key=richness))  # the first of the richest
    return chosen


def screenshots(site: Path, scheme: str) -> dict[str, Path]:
    return {path: SCREENSHOTS / screenshot_name(path, scheme) for path in screenshot_pages(site)}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_figures_and_diagrams_are_readable_in_both_palettes(visited, site_root, scheme):
    """Every page with a diagram or a figure in the light palette (all visited already); in the
    dark one, those of the default language (the other language has the same diagrams and
    figures: tests/docs) and the pages of the screenshots."""
    shots = screenshots(site_root, scheme)
    paths = [
        p
        for p in PAGES
        if p in shots
        or (
            (scheme == "light" or language_of_path(p) == DEFAULT_LANGUAGE)
            and (mermaid_blocks(static_html(site_root, p)) or "<img" in static_html(site_root, p))
        )
    ]
    checked, problems = 0, []
    visits = (
        [visited.visit(p) for p in paths]
        if scheme == "light"
        else visited.visit_all(paths, scheme, screenshots=shots)
    )
    for visit in visits:
        path = visit.path
        info, checked = visit.info, checked + 1
        if info["scheme"] != MATERIAL_SCHEME[scheme]:
            problems.append(f"/{path}: a {scheme} browser gets the {info['scheme']!r} palette")
        page = info["pageBackground"]
        for number, diagram in enumerate(info["diagrams"], start=1):
            for label in diagram["labels"]:
                ratio = contrast(label["colour"], page)
                if ratio < MIN_DIAGRAM_CONTRAST or not label["visible"]:
                    problems.append(
                        f"/{path} ({scheme}): diagram {number} label {label['text']!r} "
                        f"contrast {ratio:.1f}, visible={label['visible']}"
                    )
                    break
        for image in info["images"]:
            name = f"/{path} ({scheme}): figure {image['src']}..."
            if image["opacity"] < 1 or image["visibility"] != "visible" or image["filter"] != "none":
                problems.append(f"{name} is dimmed or filtered: {image}")
            if (image["transparentShare"] or 0) > 0.05 and luminance(image["behind"]) < 0.5:
                problems.append(f"{name} is transparent over a dark background: dark lines vanish")
        if info["linkDecoration"] is not None and "underline" not in info["linkDecoration"]:
            problems.append(f"/{path} ({scheme}): links in text are told apart by colour only")
        for part in ("code", "output", "prose", "link", "button", "comment", "footer"):
            sample = info[part]
            if sample and contrast(sample["colour"], sample["background"]) < MIN_TEXT_CONTRAST:
                problems.append(
                    f"/{path} ({scheme}): {part} text contrast "
                    f"{contrast(sample['colour'], sample['background']):.1f}: {sample}"
                )
    assert checked, "no page with a figure or a diagram"
    assert not problems, "\n".join(problems)
    for shot in shots.values():
        assert shot.is_file(), f"no screenshot {shot}"


# Light pages --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_first_visit_weight(visited, server, site_root, path):
    """Everything a first visit loads (cold cache), as Pages sends it (gzip): within the budget of
    its kind of page. The table is printed at the end of the run and written to artifacts/."""
    html = static_html(site_root, path)
    visit = visited.visit(path, device="phone")
    row = {"html": 0, "css": 0, "js": 0, "images": 0, "other": 0}
    for url in dict.fromkeys(visit.requests[: visit.inspected]):  # not what FORMULAS drew later
        file = server.file_of(url)
        if file is None:
            continue
        name = file.name
        kind = (
            "html"
            if name.endswith(".html")
            else "css"
            if name.endswith(".css")
            else "js"
            if name.endswith(".js")
            else "images"
            if re.search(r"\.(png|svg|jpe?g|gif|webp|ico)$", name)
            else "other"
        )
        row[kind] += transfer_bytes(file)
    row["total"] = sum(row.values())
    row["own_html"] = len(html.encode("utf-8"))
    row["notebook"] = is_notebook_html(html)
    row["formulas"] = 'class="katex"' in html
    WEIGHTS[path] = row
    assert row["html"] > 0, f"/{path}: the page itself was not loaded"
    assert row["own_html"] <= HTML_BUDGET, (
        f"/{path}: its HTML weighs {row['own_html'] / 1024:.0f} KB "
        f"(budget {HTML_BUDGET // 1024} KB): shared CSS and scripts belong in files"
    )
    budget = first_visit_budget(row)
    assert row["total"] <= budget, (
        f"/{path}: a first visit moves {row['total'] / 1024:.0f} KB with gzip (budget {budget // 1024} KB): {row}"
    )


# The address readers meet: the sub-path, the 404 page ---------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("device", DEVICE_NAMES)
def test_missing_address_gets_a_styled_404_in_its_language(browsing, server, language, device):
    path = ("" if language == DEFAULT_LANGUAGE else f"{language}/") + "chapters/no-such-page/"
    visit = browsing.visit(path, device=device)
    info = visit.info
    assert visit.status == 404, f"/{path}: HTTP {visit.status}, not 404"
    own = server.url(path)
    failed = [f for f in visit.failed if not f.startswith(f"{own}: ")]  # the page itself is the 404
    console = [e for e in visit.console_errors if "404" not in e.split("(")[0]]
    outside = [url for url in visit.requests if not is_local(url)]
    assert not failed and not outside, f"/{path}: {failed} {outside}"
    assert not visit.page_errors and not console, f"/{path}: {visit.page_errors} {console}"
    assert info["stylesheets"] >= 3, f"/{path}: the 404 page is unstyled ({info['stylesheets']} stylesheets)"
    assert info["lang"] == language, f"/{path}: the 404 page speaks {info['lang']!r}"
    assert info["sideways"] <= 1, f"/{path}: the 404 page scrolls sideways"
    switcher = {link["lang"]: link["href"] for link in info["switcher"]}
    assert set(switcher) == set(LANGUAGES), f"/{path}: switcher {switcher}"
    for lang, href in switcher.items():
        assert server.path_of(href) == twin_path("", lang), f"/{path}: the {lang} link leads to {href}"


def test_the_site_is_served_under_its_path_only(server):
    """The checks run where Pages serves the site: nothing of it answers at the root."""
    import urllib.error
    import urllib.request

    assert server.prefix != "/", "the site is served at the root: serve it under its sub-path"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(server.origin + "/index.html")
    assert error.value.code == 404


def test_notebook_pages_share_one_jupyter_stylesheet(site_root):
    linked = {}
    for path in PAGES:
        html = static_html(site_root, path)
        if not is_notebook_html(html):
            continue
        hrefs = re.findall(r'<link rel="stylesheet" href="([^"]*jupyter\.[0-9a-f]+\.css)">', html)
        assert len(hrefs) == 1, f"/{path} links {len(hrefs)} Jupyter stylesheets"
        target = (site_root / path / hrefs[0]).resolve()
        assert target.is_file(), f"/{path} links {hrefs[0]}, not in the site"
        linked[path] = target
        assert "selection" not in target.read_text(encoding="utf-8"), (
            f"{hrefs[0]} keeps a ::selection rule (hooks/notebook_css.py says what it costs)"
        )
        big = [len(s) for s in re.findall(r"<style\b.*?</style>", html, re.S) if len(s) > 20_000]
        assert not big, f"/{path} still inlines {big} bytes of CSS"
    assert linked, "no notebook page"
    assert len(set(linked.values())) == 1, f"notebook pages link different Jupyter stylesheets: {linked}"


def test_notebook_cells_keep_their_style(visited, server, site_root):
    """A notebook page looks the same with its shared stylesheet as with the CSS inlined."""
    path = next(p for p in PAGES if is_notebook_html(static_html(site_root, p)))
    html = static_html(site_root, path)
    link = re.search(r'<link rel="stylesheet" href="([^"]*jupyter\.[0-9a-f]+\.css)">', html)
    assert link, f"/{path} links no Jupyter stylesheet"
    css = (site_root / path / link.group(1)).resolve().read_text(encoding="utf-8")
    inlined = html.replace(link.group(0), f'<style type="text/css">\n{css}\n</style>', 1)

    shared = visited.visit(path).info["styled"]
    page = visited.new_page()
    try:
        page.route(
            server.url(path),
            lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=inlined),
        )
        page.goto(server.url(path))
        visited.wait_ready(page)
        before = page.evaluate(INSPECT)["styled"]
    finally:
        page.close()
    assert shared == before, "notebook cells are styled differently with the shared stylesheet"
    editor = shared[".jp-InputArea-editor"]
    assert editor, f"/{path} has no code cell"
    assert (
        editor["background-color"] not in ("rgba(0, 0, 0, 0)", "transparent")
        or editor["border-top-width"] != "0px"
    ), f"/{path}: code cells have neither a background nor a border: {editor}"
    keyword, plain = shared[".highlight-ipynb .k"], shared[".highlight-ipynb"]
    assert keyword and keyword["color"] != plain["color"], f"/{path}: code is not highlighted"


def test_a_code_cells_copy_button_copies_its_code(browsing, server, site_root):
    """The copy button of a notebook's code cell copies the cell's source, as written in the
    notebook (hooks/notebook_pages.py points it at the highlighted code, which is kept once)."""
    path = "notebooks/01_attention/"
    notebook = json.loads((site_root / path / "01_attention.ru.ipynb").read_text(encoding="utf-8"))
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    context = browsing.browser.new_context(**DEVICES["desktop"], service_workers="block")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url(""))
    page = context.new_page()
    try:
        page.goto(server.url(path))
        buttons = page.locator("clipboard-copy")
        assert buttons.count() == len(sources), f"{buttons.count()} copy buttons, {len(sources)} code cells"
        assert page.locator(".clipboard-copy-txt").count() == 0, "the code is still on the page twice"
        for number in (0, len(sources) - 1):
            buttons.nth(number).click()
            copied = page.evaluate("navigator.clipboard.readText()")
            assert copied.strip() == sources[number].strip(), f"code cell {number + 1} copies {copied[:80]!r}"
    finally:
        context.close()


TOKEN_LOOK = ("color", "background-color", "font-weight", "font-style", "text-decoration-line", "font-family")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_token_spans_left_out_would_look_like_their_text(browsing, server, site_root, scheme):
    """hooks/notebook_css.py replaces the token spans whose classes no stylesheet names by their
    text: a span of each such Pygments class, put back into a code block, must look like the
    block's own text in both schemes (or the hook has dropped colour from the code)."""
    from pygments.token import STANDARD_TYPES

    from hooks.notebook_css import named_classes

    path = next(p for p in PAGES if is_notebook_html(static_html(site_root, p)))
    html = static_html(site_root, path)
    # What the hook reads: every stylesheet but the theme's own (material scopes its token colours
    # to .highlight, which a notebook cell is not in: the browser below checks that assumption).
    sheets = [
        (site_root / path / href).resolve().read_text(encoding="utf-8")
        for href in re.findall(r'<link rel="stylesheet" href="([^"]+\.css)"', html)
        if not re.search(r"/stylesheets/(main|palette)\.[0-9a-f]+\.min\.css$", href)
    ] + re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.S)
    styled = named_classes(*sheets)
    left_out = sorted({name for name in STANDARD_TYPES.values() if name} - styled)
    assert "n" in left_out, f"names (class n) are styled now: {sorted(styled)[:40]}"
    assert not re.search(r'<span class="n">', html), f"/{path} still wraps names in spans"
    page = browsing.new_page(scheme)
    try:
        page.goto(server.url(path))
        browsing.wait_ready(page)
        looks = page.evaluate(
            """([classes, props]) => {
                const pre = document.querySelector('.highlight-ipynb pre');
                const look = (el) => { const s = getComputedStyle(el); return props.map((p) => s.getPropertyValue(p)); };
                const out = {};
                for (const name of ['', ...classes]) {  // '': a span without a class, as text looks
                  const span = document.createElement('span');
                  span.className = name; span.textContent = 'x'; pre.append(span);
                  out[name || 'plain'] = look(span);
                  span.remove();
                }
                return out;
            }""",
            [left_out, list(TOKEN_LOOK)],
        )
    finally:
        page.close()
    plain = looks.pop("plain")
    differ = {name: dict(zip(TOKEN_LOOK, look)) for name, look in looks.items() if look != plain}
    assert not differ, f"/{path} ({scheme}): spans left out would look different from the text: {differ}"


def test_printed_output_wraps_at_spaces_on_a_phone(browsing, server, site_root):
    """JupyterLab breaks printed output anywhere (``word-break: break-all``), which cut numbers in
    two on a phone ("0." and "1"); extra.css makes it wrap at spaces."""
    path = next(p for p in PAGES if is_notebook_html(static_html(site_root, p)))
    page = browsing.new_page(device="phone")
    try:
        page.goto(server.url(path))
        browsing.wait_ready(page)
        breaks = page.evaluate(
            """[...document.querySelectorAll('.jp-OutputArea-output pre')]
                 .map((pre) => getComputedStyle(pre).wordBreak)"""
        )
    finally:
        page.close()
    assert breaks, f"/{path} prints nothing"
    assert set(breaks) == {"normal"}, f"/{path}: printed output breaks with {sorted(set(breaks))}"


def test_switching_the_palette_turns_transitions_off_for_a_moment_only(browsing, server):
    """hooks/palette_css.py takes material's ``[data-md-color-switching] *`` rule out (it restyled
    every element twice on each load); palette.js keeps what it did: while the reader switches
    the palette, transitions are off, and a few frames later they are back."""
    page = browsing.new_page()
    try:
        page.goto(server.url(""))
        browsing.wait_ready(page)
        seen = page.evaluate(
            """async () => {
                const rules = [];
                const walk = (list) => { for (const r of list) { if (r.selectorText) rules.push(r.selectorText); if (r.cssRules) walk(r.cssRules); } };
                for (const sheet of document.styleSheets) walk(sheet.cssRules);
                const moving = [...document.querySelectorAll('body *')].find(
                  (el) => getComputedStyle(el).transitionDuration.split(',').some((d) => parseFloat(d) > 0));
                const duration = () => getComputedStyle(moving).transitionDuration;
                const frame = () => new Promise((done) => requestAnimationFrame(done));
                const before = { scheme: document.body.dataset.mdColorScheme, duration: duration() };
                const toggle = [...document.querySelectorAll('[data-md-component=palette] label')].find((l) => !l.hidden);
                toggle.click();
                const during = { scheme: document.body.dataset.mdColorScheme, duration: duration(),
                                 marked: document.documentElement.hasAttribute('data-palette-switching') };
                for (let i = 0; i < 4; i++) await frame();
                const after = { duration: duration(), marked: document.documentElement.hasAttribute('data-palette-switching') };
                return { switching: rules.filter((s) => s.includes('data-md-color-switching')), element: moving.className,
                         before, during, after };
            }"""
        )
    finally:
        page.close()
    assert not seen["switching"], f"material's switching rule is still served: {seen['switching']}"
    assert seen["before"]["scheme"] != seen["during"]["scheme"], (
        f"the toggle did not switch the palette: {seen}"
    )
    assert seen["during"]["marked"] and set(seen["during"]["duration"].split(", ")) == {"0s"}, (
        f"transitions run while the palette switches: {seen}"
    )
    assert not seen["after"]["marked"] and seen["after"]["duration"] == seen["before"]["duration"], (
        f"transitions do not come back after the switch: {seen}"
    )
