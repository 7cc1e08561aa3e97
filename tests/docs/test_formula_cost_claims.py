"""What the benchmark page says formulas weigh (its section on formulas) is what the built site
holds, measured by scripts/formula_cost.py: the number of formulas and of pages with formulas,
KaTeX's stylesheet as sent, and chapter 12 in Russian: its formulas, its HTML as sent, how much of
that is the formulas' markup, and its elements with the formulas and with the TeX as text."""

from __future__ import annotations

import lxml.html
import pytest

from scripts.formula_cost import as_tex, elements, measure

from .helpers import DOCS, russian


@pytest.fixture(scope="module")
def measured(built_site) -> dict:
    return measure(built_site)


def number(value: float, language: str, digits: int = 0) -> str:
    """A number as the page of that language writes it: 2,864 / 2864 and 5.5 / 5,5."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "").replace(".", ",") if language == "ru" else text


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_benchmark_page_says_what_formulas_weigh(measured, language):

    def n(key: str, digits: int = 0) -> str:
        return number(measured[key], language, digits)

    said = {
        "ru": [
            f"{n('formulas')} {russian(measured['formulas'], 'формула', 'формулы', 'формул')} на "
            f"{n('pages')} {russian(measured['pages'], 'странице', 'страницах', 'страницах')}",
            f"таблицу стилей KaTeX — {n('stylesheet_kb', 1)} КБ со сжатием",
            f"HTML главы 12 с {n('page_formulas')} формулами весит со сжатием {n('page_kb')} КБ, "
            f"на {n('page_markup_kb', 1)} КБ больше",
            f"элементов на странице {n('page_elements')} вместо {n('page_elements_as_tex')}",
        ],
        "en": [
            f"{n('formulas')} formulas on {n('pages')} pages",
            f"KaTeX's stylesheet, {n('stylesheet_kb', 1)} KB with gzip",
            f"chapter 12's HTML, with {n('page_formulas')} formulas, is {n('page_kb')} KB with gzip, "
            f"{n('page_markup_kb', 1)} KB more",
            f"the page has {n('page_elements')} elements instead of {n('page_elements_as_tex')}",
        ],
    }[language]
    text = " ".join((DOCS / f"benchmark.{language}.md").read_text(encoding="utf-8").split())
    missing = [s for s in said if s not in text]
    assert not missing, (
        f"benchmark.{language}.md does not say {missing}: `python scripts/formula_cost.py SITE`"
    )


def test_russian_numerals_agree():
    forms = ("формула", "формулы", "формул")
    assert [russian(n, *forms) for n in (1, 2, 5, 11, 14, 21, 2864, 2060)] == [
        "формула",
        "формулы",
        "формул",
        "формул",
        "формул",
        "формула",
        "формулы",
        "формул",
    ]


def test_a_formula_put_back_as_tex_is_its_source():
    """What the measure compares with: each formula, inline and display, becomes the TeX it was
    typeset from, where it stood, and nothing else of the page changes."""
    from hooks.formulas import render_page, renderer

    render = renderer()
    page = (
        '<article><p>Before <span class="arithmatex">\\(x_i\\)</span> after.</p>'
        '<div class="arithmatex">\\[\\frac{a}{b}\\]</div><p>End.</p></article>'
    )
    tree = lxml.html.fromstring(render_page(page, render))
    assert elements(tree) > 20
    assert as_tex(tree) == 2
    assert lxml.html.tostring(tree, encoding="unicode") == (
        "<article><p>Before $x_i$ after.</p>$$\\frac{a}{b}$$<p>End.</p></article>"
    )
