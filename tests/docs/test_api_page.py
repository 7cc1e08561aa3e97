"""The API reference (mkdocstrings) shows the type hints of the public API, in both languages.

The reference is split by topic into docs/api*.{ru,en}.md (the core on api.md, later chapters on
pages of their own, so that each page stays light): every public name is on exactly one of them.
"""

from __future__ import annotations

import inspect
import posixpath
import re

import pytest
from bs4 import BeautifulSoup

import simple_llm

from .helpers import DOCS, LANGUAGES, url_path


def api_sources(language: str) -> list:
    """docs/api.{language}.md, then the other API pages (api-*.{language}.md)."""
    return sorted(DOCS.glob(f"api*.{language}.md"), key=lambda p: (p.name != f"api.{language}.md", p.name))


def api_page(site, source) -> BeautifulSoup:
    path = site / url_path(source) / "index.html"
    assert path.is_file(), f"not built: {path}"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")


def api_articles(site, language: str) -> dict:
    """Site path of each API page -> its article."""
    return {url_path(s): api_page(site, s).select_one("article") for s in api_sources(language)}


def public_functions() -> list[tuple[str, object, bool]]:
    """(name, function, is_method) for every public function, constructor, method and property."""
    found = []
    for name in simple_llm.__all__:
        obj = getattr(simple_llm, name)
        if not inspect.isclass(obj):
            found.append((name, obj, False))
            continue
        found.append((f"{name}.__init__", obj.__init__, True))
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            if isinstance(value, property):
                value = value.fget
            elif isinstance(value, (classmethod, staticmethod)):
                value = value.__func__
            if inspect.isfunction(value):
                found.append((f"{name}.{member}", value, not isinstance(vars(obj)[member], staticmethod)))
    return found


FUNCTIONS = public_functions()


@pytest.mark.parametrize("name, function, is_method", FUNCTIONS, ids=[name for name, _, _ in FUNCTIONS])
def test_public_api_is_annotated(name, function, is_method):
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1 if is_method else 0 :]  # not self / cls
    bare = [p.name for p in parameters if p.annotation is p.empty]
    assert not bare, f"{name}: parameters without a type hint: {bare}"
    assert signature.return_annotation is not signature.empty, f"{name}: no return type hint"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_public_name_is_on_exactly_one_api_page(built_site, language):
    articles = api_articles(built_site, language)
    assert len(articles) >= 2, f"the API reference is one page again: {list(articles)}"
    on = {
        name: [path for path, article in articles.items() if article.find(id=f"simple_llm.{name}")]
        for name in simple_llm.__all__
    }
    missing = [name for name, paths in on.items() if not paths]
    assert not missing, f"on no API page: {missing}"
    twice = {name: paths for name, paths in on.items() if len(paths) > 1}
    assert not twice, f"on more than one API page: {twice}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_api_page_shows_a_type_for_every_parameter_attribute_and_return(built_site, language):
    articles = api_articles(built_site, language)
    for page in articles:
        check_types_and_links(articles, language, page)


def check_types_and_links(articles: dict, language: str, page: str) -> None:
    article = articles[page]
    tables = article.select("table")
    assert tables, f"/{page} shows no parameter tables"
    untyped = []
    for table in tables:
        header = [th.get_text(strip=True) for th in table.select("thead th")]
        assert "Type" in header, f"/{page}: a table with no Type column: {header}"
        column = header.index("Type")
        rows = [[td.get_text(" ", strip=True) for td in tr.select("td")] for tr in table.select("tbody tr")]
        owner = table.find_previous(["h2", "h3", "h4"])["id"]
        untyped += [f"{owner}: {row[0]}" for row in rows if not row[column]]
        title = table.find_previous(class_="doc-section-title")
        if title is not None and title.get_text(strip=True).startswith(("Returns", "Возвращает")):
            # one return value per function here: a second row is a description split by griffe
            assert len(rows) == 1, f"{owner}: its Returns section was read as {len(rows)} values"
    assert not untyped, f"/{page}: rows with an empty Type cell: {untyped}"
    signatures = [sig.get_text(" ", strip=True) for sig in article.select(".doc-signature")]
    assert signatures and all("->" in sig for sig in signatures if "(" in sig), (
        f"/{page}: a signature shows no return type"
    )
    roles = re.findall(r":(?:class|meth|func|attr|mod):`[^`]*`", article.get_text(" "))
    assert not roles, (
        f"/{page}: Sphinx roles shown as text (write [`name`][simple_llm.name] instead): {roles}"
    )
    # With two languages autorefs may resolve a docstring's [`name`][simple_llm.name] to the first
    # language's page: a cross-reference must stay on its page or go to another API page of the
    # same language (RollingKVCache's base KVCache is on api.md) that has the id.
    wrong = []
    for a in article.select("a.autorefs"):
        target, _, anchor = a["href"].partition("#")
        resolved = posixpath.normpath(posixpath.join(page, target)) + "/" if target else page
        if resolved not in articles:
            wrong.append(f"{a['href']} (-> /{resolved}, not a {language} API page)")
        elif articles[resolved].find(id=anchor) is None:
            wrong.append(f"{a['href']} (no id {anchor} on /{resolved})")
    assert not wrong, f"/{page}: cross-references that leave the {language} API pages: {wrong}"
