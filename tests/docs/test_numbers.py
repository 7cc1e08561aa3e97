r"""Numbers quoted in the prose of a chapter are numbers its notebooks really print.

A page that says "the difference is 0.785" goes stale silently when the code changes; here
every decimal number in a chapter's prose (outside code blocks) must be found, at the precision
the page gives, among the outputs or the code of the notebooks of the same language.

Numbers inside formulas count like any other: ``$p \approx 0{,}785$`` quotes 0.785 (TeX writes the
Russian decimal comma as ``{,}``). Integers (``\sqrt{64}``, ``10000^{-2i/C}``) are not checked.
"""

from __future__ import annotations

import re

import pytest

from .helpers import DOCS, NOTEBOOKS, language_of, read_notebook, strip_fenced

NUMBER = re.compile(r"(?<![\w.,])\d+[.,]\d+(?![\w]|[.,]\d)")
CHAPTERS = sorted((DOCS / "chapters").glob("*.md"))


def _numbers(text: str) -> list[str]:
    text = text.replace("{,}", ",")  # TeX's decimal comma: 0{,}785
    return [m.group(0).replace(",", ".") for m in NUMBER.finditer(text)]


def test_numbers_in_formulas_are_read():
    """A number inside TeX is a quoted number: the check must see it, in either language."""
    assert _numbers(r"$\operatorname{softmax}(x)_1 \approx 0{,}785$, $\sqrt{64}=8$") == ["0.785"]
    assert _numbers(r"$$p = 0.125,\quad \omega_i = 10000^{-2i/C}$$") == ["0.125"]


def _notebook_numbers(language: str) -> set[float]:
    found = set()
    for path in NOTEBOOKS.glob(f"*.{language}.ipynb"):
        for cell in read_notebook(path).cells:
            texts = [cell.source]
            for output in cell.get("outputs", []):
                texts.append(output.get("text", ""))
                texts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
            found |= {float(n) for text in texts for n in _numbers(text)}
    return found


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_quoted_numbers_come_from_the_notebooks(page):
    printed = _notebook_numbers(language_of(page))
    prose = strip_fenced(page.read_text(encoding="utf-8"))
    prose = re.sub(r"`[^`]*`", "", prose)  # inline code: shapes and expressions, not results
    stale = []
    for number in set(_numbers(prose)):
        decimals = len(number.split(".")[1])
        if not any(round(value, decimals) == float(number) for value in printed):
            stale.append(number)
    assert not stale, f"{page.name} quotes numbers no notebook prints: {sorted(stale)}"
