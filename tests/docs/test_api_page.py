"""The API reference (mkdocstrings) shows the type hints of the public API, in both languages."""

from __future__ import annotations

import inspect
import re

import pytest
from bs4 import BeautifulSoup

import simple_llm

from .helpers import DOCS, LANGUAGES, url_path


def api_page(site, language: str) -> BeautifulSoup:
    path = site / url_path(DOCS / f"api.{language}.md") / "index.html"
    assert path.is_file(), f"not built: {path}"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


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
def test_api_page_shows_a_type_for_every_parameter_attribute_and_return(built_site, language):
    article = api_page(built_site, language).select_one("article")
    missing = [name for name in simple_llm.__all__ if article.find(id=f"simple_llm.{name}") is None]
    assert not missing, f"not on the API page: {missing}"
    tables = article.select("table")
    assert tables, "the API page shows no parameter tables"
    untyped = []
    for table in tables:
        header = [th.get_text(strip=True) for th in table.select("thead th")]
        assert "Type" in header, f"a table with no Type column: {header}"
        column = header.index("Type")
        rows = [[td.get_text(" ", strip=True) for td in tr.select("td")] for tr in table.select("tbody tr")]
        owner = table.find_previous(["h2", "h3", "h4"])["id"]
        untyped += [f"{owner}: {row[0]}" for row in rows if not row[column]]
        title = table.find_previous(class_="doc-section-title")
        if title is not None and title.get_text(strip=True).startswith(("Returns", "Возвращает")):
            # one return value per function here: a second row is a description split by griffe
            assert len(rows) == 1, f"{owner}: its Returns section was read as {len(rows)} values"
    assert not untyped, f"rows with an empty Type cell: {untyped}"
    signatures = [sig.get_text(" ", strip=True) for sig in article.select(".doc-signature")]
    assert signatures and all("->" in sig for sig in signatures if "(" in sig), (
        "a signature shows no return type"
    )
    roles = re.findall(r":(?:class|meth|func|attr|mod):`[^`]*`", article.get_text(" "))
    assert not roles, f"Sphinx roles shown as text (write [`name`][simple_llm.name] instead): {roles}"
    # With two languages autorefs resolves a docstring's [`name`][simple_llm.name] to the first
    # language's page: only the links inside the page itself stay in its language.
    elsewhere = [a["href"] for a in article.select("a.autorefs") if not a["href"].startswith("#")]
    assert not elsewhere, f"cross-references that leave the {language} API page: {elsewhere}"
