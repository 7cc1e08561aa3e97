"""One translation per term: docs/glossary.tsv is the source of truth, the terms table of each
glossary page shows exactly its rows in its order, and the Russian chapters use its terms. The
project's shared glossary (../shared/GLOSSARY.md), where it sits beside the repository, is checked
too: the TSV starts with its rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import DOCS, ROOT, strip_fenced

TSV = DOCS / "glossary.tsv"
SHARED = ROOT.parent / "shared" / "GLOSSARY.md"
COLUMNS = ["english", "russian", "note"]


def read_tsv() -> list[list[str]]:
    """Rows of docs/glossary.tsv as [english, russian, note] (an empty note may lose its tab)."""
    lines = TSV.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].split("\t") == COLUMNS, f"{TSV.name} must start with the header {COLUMNS}"
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        assert 2 <= len(cells) <= 3, f"{TSV.name}:{number}: expected 3 tab-separated columns, got {cells}"
        rows.append([cell.strip() for cell in cells] + [""] * (3 - len(cells)))
    return rows


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of every markdown table row outside code fences, separator rows left out."""
    rows = []
    for line in strip_fenced(markdown).splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        cells = [cell.strip() for cell in line[1:-1].split("|")]
        if all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            continue
        rows.append(cells)
    return rows


ROWS = read_tsv()


def test_tsv_has_unique_terms():
    for column, name in enumerate(COLUMNS[:2]):
        terms = [row[column] for row in ROWS]
        assert all(terms), f"an empty {name} term in {TSV.name}"
        repeated = sorted({t for t in terms if terms.count(t) > 1})
        assert not repeated, f"{name} terms listed twice in {TSV.name}: {repeated}"


def terms_table(page: Path) -> list[list[str]]:
    """The rows of the table under the page's ``{ #terms }`` heading, its header row left out."""
    text = strip_fenced(page.read_text(encoding="utf-8"))
    found = re.search(r"^##[^\n]*\{\s*#terms\s*\}\s*$(.*?)(?=^#|\Z)", text, flags=re.M | re.S)
    assert found, f"{page.name} has no heading with the anchor {{ #terms }}"
    rows = table_rows(found.group(1))
    assert rows, f"{page.name}: no table under the {{ #terms }} heading"
    return [row + [""] * (3 - len(row)) for row in rows[1:]]


def test_english_page_shows_exactly_the_tsv_rows_in_order():
    shown = terms_table(DOCS / "glossary.en.md")
    missing = [row for row in ROWS if row not in shown]
    extra = [row for row in shown if row not in ROWS]
    assert not missing and not extra, (
        f"glossary.en.md and {TSV.name} disagree.\nnot on the page: {missing}\nnot in the TSV: {extra}"
    )
    assert shown == ROWS, f"glossary.en.md lists the terms in another order than {TSV.name}"


def test_russian_page_shows_exactly_the_tsv_terms_in_order():
    shown = terms_table(DOCS / "glossary.ru.md")
    pairs = [(russian, english) for english, russian, _ in ROWS]
    shown_pairs = [(row[0], row[1]) for row in shown]
    missing = [pair for pair in pairs if pair not in shown_pairs]
    extra = [pair for pair in shown_pairs if pair not in pairs]
    assert not missing and not extra, (
        f"glossary.ru.md and {TSV.name} disagree.\nnot on the page: {missing}\nnot in the TSV: {extra}"
    )
    assert shown_pairs == pairs, f"glossary.ru.md lists the terms in another order than {TSV.name}"
    # The Russian note is a translation: it must exist exactly where the English one does.
    wrong = [row[0] for row, (_, _, note) in zip(shown, ROWS) if bool(row[2]) != bool(note)]
    assert not wrong, f"glossary.ru.md: a note missing or extra (the TSV's English note decides) for {wrong}"


def shared_rows() -> list[list[str]]:
    table = table_rows(SHARED.read_text(encoding="utf-8"))
    assert table and [cell.lower() for cell in table[0]] == ["english", "русский", "note"], (
        f"{SHARED} no longer starts its table with English | Русский | Note"
    )
    return [row + [""] * (3 - len(row)) for row in table[1:]]


@pytest.mark.skipif(
    not SHARED.is_file(), reason="the shared glossary ../shared/GLOSSARY.md is not beside the repository"
)
def test_tsv_matches_the_shared_glossary_row_for_row():
    """Every row of the shared list, in its order, then the site's own additions (if any)."""
    shared = shared_rows()
    assert len(ROWS) >= len(shared), f"{TSV.name} has {len(ROWS)} rows, the shared glossary {len(shared)}"
    for number, (ours, theirs) in enumerate(zip(ROWS, shared), start=1):
        assert ours == theirs, f"row {number}: {TSV.name} has {ours}, the shared glossary {theirs}"


# A few terms the glossary fixes and that are easy to get wrong in Russian prose.
FORBIDDEN = {
    r"многоголовочн\w*": "многоголовое внимание",
    r"мульти-?хед\w*": "многоголовое внимание",
    r"эмбединг\w*": "эмбеддинг (две «д»)",
    r"причинн\w* маск\w*": "каузальная маска",
}
# "голова внимания" in any case: голова, головы, голове, голову, головой, головах...
REQUIRED = r"голов\w* внимания"


def russian_chapters() -> list[Path]:
    return sorted((DOCS / "chapters").glob("*.ru.md"))


def test_russian_chapters_use_the_glossary_terms():
    chapters = russian_chapters()
    assert chapters, "no Russian chapter pages under docs/chapters"
    found = []
    for page in chapters:
        text = page.read_text(encoding="utf-8")
        for pattern, right in FORBIDDEN.items():
            for match in re.finditer(pattern, text, flags=re.IGNORECASE):
                found.append(f"{page.name}: {match.group(0)!r}, the glossary says {right!r}")
    assert not found, "\n".join(found)
    assert any(re.search(REQUIRED, p.read_text(encoding="utf-8"), flags=re.IGNORECASE) for p in chapters), (
        "no Russian chapter says «голова внимания» (attention head)"
    )
