"""simple_llm.practice on the site: on its API page (api-practice), exercises with the solution folded."""

from __future__ import annotations

import inspect

import pytest
from bs4 import BeautifulSoup

import simple_llm.practice
from simple_llm.practice import solutions

from .helpers import DOCS, LANGUAGES, url_path

# chapter page -> the tasks its folded solution shows
EXERCISES = {
    "01-attention": ["attention"],
    "02-one-head": ["causal_mask"],
    "03-multi-head": ["causal_mask", "attention", "multi_head_attention"],
    "04-masks": ["attention"],
    "08-mock-interview": ["causal_mask", "attention", "multi_head_attention"],
    "09-positions": ["rope"],
    "12-tiled-attention": ["tiled_attention"],
}


def article(site, page: str, language: str) -> BeautifulSoup:
    path = site / url_path(DOCS / f"{page}.{language}.md") / "index.html"
    assert path.is_file(), f"not built: {path}"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "lxml").select_one("article")


@pytest.mark.parametrize("language", LANGUAGES)
def test_api_page_documents_every_grader(built_site, language):
    api = article(built_site, "api-practice", language)
    names = [name for name in simple_llm.practice.__all__ if name != "SITE_URL"]
    missing = [name for name in names if api.find(id=f"simple_llm.practice.{name}") is None]
    assert not missing, f"not on the API page: {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", EXERCISES)
def test_the_solution_is_folded_and_is_the_tested_source(built_site, page, language):
    body = article(built_site, f"chapters/{page}", language)
    folded = [d for d in body.select("details") if d.select("pre")]
    assert len(folded) == 1, f"{page}: expected one folded solution, found {len(folded)}"
    assert not folded[0].has_attr("open"), f"{page}: the solution is shown unfolded"
    code = folded[0].select_one("pre").get_text()
    for task in EXERCISES[page]:
        first = inspect.getsource(getattr(solutions, task)).splitlines()[0]
        assert first in code, f"{page}: the solution does not show {first!r}"
