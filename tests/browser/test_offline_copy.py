"""The offline copy (``make offline``): the whole site in both languages, opened from the file
system, with navigation, the language switcher and search working and nothing fetched."""

from __future__ import annotations

import zipfile

import pytest

from scripts.background_build import start_build
from scripts.build_offline import FOLDER, write_zip

from .browsing import READY_TIMEOUT_MS


@pytest.fixture(scope="module")
def offline_copy():
    """The offline copy, built in the background since collection ended (conftest.py)."""
    site = start_build("offline").result()
    assert site.name == FOLDER
    return site


def test_the_zip_holds_both_languages(offline_copy, tmp_path):
    target = tmp_path / "copy.zip"
    write_zip(offline_copy, target)
    names = set(zipfile.ZipFile(target).namelist())
    for name in ("index.html", "en/index.html", "search/search_index.js", "en/search/search_index.js"):
        assert f"{FOLDER}/{name}" in names, f"the offline zip has no {name}"


def test_offline_copy_navigates_switches_language_and_searches(browsing, offline_copy):
    visit_errors: list[str] = []
    page = browsing.new_page()
    page.on("pageerror", lambda e: visit_errors.append(str(e)))
    try:
        page.goto((offline_copy / "index.html").as_uri())
        links = page.eval_on_selector_all(
            "nav.md-nav--primary a.md-nav__link[href]", "as => as.map(a => a.href)"
        )
        pages = [link for link in links if link.startswith("file:") and "#" not in link]
        assert pages and all(link.endswith(".html") for link in pages), (
            f"navigation links that open folder listings from files: {[p for p in pages if not p.endswith('.html')]}"
        )
        chapter = next(link for link in pages if "03-multi-head" in link)
        page.goto(chapter)
        assert page.locator("article h1").count() == 1, f"{chapter} is no page"
        english = page.eval_on_selector(".md-select a[hreflang='en']", "a => a.href")
        assert english.startswith("file:") and english.endswith("en/chapters/03-multi-head/index.html"), (
            english
        )
        page.goto(english)
        assert page.evaluate("document.documentElement.lang") == "en"
        page.locator("input.md-search__input").click()
        page.locator("input.md-search__input").fill("attention")
        page.locator("input.md-search__input").press("End")
        page.wait_for_function(
            "() => document.querySelectorAll('.md-search-result__item').length > 0", timeout=READY_TIMEOUT_MS
        )
        results = page.eval_on_selector_all(".md-search-result__item > a", "as => as.map(a => a.href)")
        assert results and all("/en/" in r and ".html" in r for r in results), results[:5]
    finally:
        page.close()
    assert not visit_errors, f"errors in the offline copy: {visit_errors}"


def test_offline_copy_shows_the_notebook_figures(browsing, offline_copy):
    """Figures are files beside their page (hooks/notebook_pages.py): opened from the file
    system, each one loads once it is scrolled into view."""
    pages = sorted(offline_copy.glob("notebooks/*/index.html")) + sorted(
        offline_copy.glob("en/notebooks/*/index.html")
    )
    with_figures = [p for p in pages if "figure-" in p.read_text(encoding="utf-8")]
    assert len(with_figures) >= 2, f"no notebook page of the offline copy has figures: {pages}"
    page = browsing.new_page()
    try:
        for path in with_figures[:1] + with_figures[-1:]:  # one in each language
            page.goto(path.as_uri())
            shown = page.evaluate(
                """async () => {
                    const out = [];
                    for (const img of document.querySelectorAll('.jp-OutputArea-output img')) {
                      img.scrollIntoView({ block: 'center' });
                      try { await img.decode(); } catch (e) {}
                      out.push([img.getAttribute('src'), img.naturalWidth]);
                    }
                    return out;
                }"""
            )
            assert shown and all(width > 0 for _, width in shown), f"{path}: figures not shown: {shown}"
    finally:
        page.close()
