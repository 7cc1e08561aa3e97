"""No Unicode stand-ins for formulas in prose: ``softmax(QKᵀ/√hs)`` or ``dⱼ`` is written in TeX
(``$\\operatorname{softmax}(QK^\\top/\\sqrt{\\mathrm{hs}})$``, ``$d_j$``), which the site typesets.
Code, printed output and diagrams stay plain text: fenced and inline code (mermaid included) are
not prose, nor are notebook code cells and outputs."""

from __future__ import annotations

import re
import unicodedata

from .helpers import DOCS, ROOT, pages, read_source, sources, strip_fenced

# Sub- and superscript letters and digits, the transpose and root signs, sums and products, and the
# operators prose used in place of TeX's \cdot and \approx.
STAND_INS = re.compile(
    "[\u2070-\u209f\u00b2\u00b3\u00b9\u1d2c-\u1d6a\u2c7c\u1d40\u22a4\u221a\u221b\u2211\u220f\u03a3\u00b7\u22c5\u2248]"
)
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)


def _blank_code(markdown: str) -> str:
    """``markdown`` with fenced blocks and inline code blanked, line numbers kept."""

    def blank(match: re.Match) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    markdown = re.sub(r"^(```|~~~).*?^\1", blank, markdown, flags=re.S | re.M)
    return _INLINE_CODE.sub(blank, markdown)


def stand_ins(markdown: str) -> list[tuple[int, str, str]]:
    """(line number, the stand-ins on it, the line) of each line with stand-ins outside code."""
    found = []
    for number, line in enumerate(_blank_code(markdown).splitlines(), start=1):
        chars = "".join(dict.fromkeys(STAND_INS.findall(line)))
        if chars:
            found.append((number, chars, line.strip()))
    return found


def test_stand_ins_are_found_outside_code_only():
    text = 'Weights softmax(QKᵀ) and dⱼ.\n\n```mermaid\nA["H·hs"]\n```\n\nThen `√hs` is code, x² is not.'
    assert [(n, c) for n, c, _ in stand_ins(text)] == [(1, "ᵀⱼ"), (7, "²")]
    assert strip_fenced(text).count("H·hs") == 0  # the same fences helpers.strip_fenced drops


def _named(chars: str) -> str:
    return ", ".join(f"{c} ({unicodedata.name(c).lower()})" for c in chars)


def test_no_unicode_stand_ins_for_formulas_in_prose():
    offenders = []
    for page in pages():
        for number, chars, line in stand_ins(page.read_text(encoding="utf-8")):
            offenders.append(f"{page.relative_to(ROOT)}:{number}: {_named(chars)} in {line[:90]!r}")
    for source in sources():
        lines = source.read_text(encoding="utf-8").splitlines()
        for cell in read_source(source).cells:  # markdown cells; their line in the py:percent file
            if cell.cell_type != "markdown":
                continue
            for _, chars, line in stand_ins(cell.source):
                number = next((n for n, text in enumerate(lines, 1) if line in text), 0)
                offenders.append(f"{source.relative_to(ROOT)}:{number}: {_named(chars)} in {line[:90]!r}")
    assert not offenders, (
        f"Unicode stand-ins for formulas in prose on {len(offenders)} lines, write TeX instead:\n"
        + "\n".join(offenders)
    )


def test_the_pages_checked_include_every_kind():
    names = {p.relative_to(DOCS).parts[0] for p in pages()}
    assert {"chapters", "index.ru.md", "glossary.en.md", "benchmark.ru.md", "api.en.md"} <= names
    assert {"api-beyond.ru.md", "api-practice.en.md"} <= names  # the API reference's other pages
