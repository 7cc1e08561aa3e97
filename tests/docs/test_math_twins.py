r"""The two languages carry the same formulas: the TeX of a Russian page and of its English twin, and
of the two notebooks of a pair (their markdown cells), is the same formula for formula, except
words inside ``\text{...}`` and the Russian decimal comma ``0{,}5`` (English ``0.5``)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from .helpers import ANCHOR, DOCS, language_of, pages, read_source, sources, strip_fenced, twin

_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
# $$...$$ first (on lines of their own, or a whole line), then $...$ as arithmatex reads it: no space
# after the opening dollar nor before the closing one.
_FORMULA = re.compile(
    r"\$\$(?P<display>.+?)\$\$|(?<![\\$])\$(?P<inline>[^$\s](?:[^$]*?[^$\s\\])?)\$(?!\d)", re.S
)
_TEXT = re.compile(r"\\(text|textrm|textit|textbf|mbox)\s*\{[^{}]*\}")


def formulas(markdown: str) -> list[str]:
    """The formulas of a page or a markdown cell, in order, outside code, normalised: words in
    ``\text{}`` dropped, ``{,}`` read as a decimal point, whitespace collapsed, and the punctuation
    that ends a display formula (the sentence's: a Russian sentence may go on after it) left out."""
    prose = _INLINE_CODE.sub("", strip_fenced(markdown))
    found = []
    for match in _FORMULA.finditer(prose):
        tex = match.group("display") if match.group("display") is not None else match.group("inline")
        tex = _TEXT.sub(lambda m: f"\\{m.group(1)}{{}}", tex).replace("{,}", ".")
        tex = " ".join(tex.split())
        if match.group("display") is not None:  # the sentence's own punctuation after a display formula
            tex = re.sub(r"(\\[,;!]|\s)*[,.;:]$", "", tex)
        found.append(tex)
    return found


def test_formulas_are_read_as_the_renderer_reads_them():
    text = (
        "Sum $x_i$ costs `$y$` and\n\n$$\n\\frac{a}{2} + \\text{шаг} = 0{,}5,\n$$\n\n"
        "```python\nprint('$z$')\n```\nand $5 or $6, then $\\text{step}\\,x$."
    )
    assert formulas(text) == ["x_i", "\\frac{a}{2} + \\text{} = 0.5", "\\text{}\\,x"]


def _differences(ru: dict[str, list[str]], en: dict[str, list[str]]) -> list[str]:
    """Part by part (a page's sections, a notebook's markdown cells): the formulas only one language
    has. Within a part the order may differ, as sentences are ordered differently in translation."""
    lines = []
    for part in dict.fromkeys([*ru, *en]):
        a, b = Counter(ru.get(part, [])), Counter(en.get(part, []))
        if a != b:
            lines.append(
                f"  {part}:\n    only in ru: {sorted((a - b).elements())}\n"
                f"    only in en: {sorted((b - a).elements())}"
            )
    return lines


def sections(markdown: str) -> dict[str, list[str]]:
    """The formulas of each section of a page, by its heading anchor (the same in both languages)."""
    parts: dict[str, list[str]] = {}
    anchor = "(top of the page)"
    for chunk in re.split(r"^(#{1,6}\s.*)$", strip_fenced(markdown), flags=re.M):
        heading = ANCHOR.search(chunk.strip()) if chunk.startswith("#") else None
        if heading:
            anchor = f"#{heading.group(1)}"
            continue
        parts.setdefault(anchor, []).extend(formulas(chunk))
    return parts


RU_PAGES = [p for p in pages() if language_of(p) == "ru"]
RU_SOURCES = [p for p in sources() if language_of(p) == "ru"]


@pytest.mark.parametrize("ru", RU_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_twins_carry_the_same_tex(ru):
    en = twin(ru, "en")
    differences = _differences(
        sections(ru.read_text(encoding="utf-8")), sections(en.read_text(encoding="utf-8"))
    )
    assert not differences, f"{ru.name} and {en.name} differ in their formulas:\n" + "\n".join(differences)


@pytest.mark.parametrize("ru", RU_SOURCES, ids=lambda p: p.name)
def test_notebook_twins_carry_the_same_tex(ru):
    en = twin(ru, "en")

    def tex(path):
        cells = read_source(path).cells
        return {
            f"markdown cell {n}": formulas(c.source) for n, c in enumerate(cells) if c.cell_type == "markdown"
        }

    differences = _differences(tex(ru), tex(en))
    assert not differences, f"{ru.name} and {en.name} differ in their formulas:\n" + "\n".join(differences)
