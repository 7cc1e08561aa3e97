"""One translation per term: docs/glossary.tsv is the data, the two glossary pages show it, the
project's shared glossary (../shared/GLOSSARY.md, when it sits beside the repository) is its
origin, and the Russian chapters use its terms."""

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


def test_every_row_appears_in_both_glossary_pages():
    en_rows = table_rows((DOCS / "glossary.en.md").read_text(encoding="utf-8"))
    ru_rows = table_rows((DOCS / "glossary.ru.md").read_text(encoding="utf-8"))
    ru_by_term = {(row[0], row[1]): row for row in ru_rows if len(row) == 3}
    problems = []
    for english, russian, note in ROWS:
        if [english, russian, note] not in en_rows:
            problems.append(f"glossary.en.md has no row | {english} | {russian} | {note} |")
        ru_row = ru_by_term.get((russian, english))
        if ru_row is None:
            problems.append(f"glossary.ru.md has no row | {russian} | {english} | … |")
        elif bool(ru_row[2]) != bool(note):
            # The Russian note is a translation: it must exist exactly where the English one does.
            problems.append(
                f"glossary.ru.md: the note of {russian!r} should be {'there' if note else 'empty'}"
            )
    assert not problems, "\n".join(problems)


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
