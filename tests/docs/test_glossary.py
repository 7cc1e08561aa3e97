"""One translation per term: docs/glossary.tsv is the one source. Each glossary page holds, under
its ``{ #terms }`` heading, only the line where hooks/glossary.py puts the table generated from the
TSV; the generated table and the built pages show exactly its rows in its order; every note has its
Russian translation; and the Russian chapters use the terms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from hooks.glossary import COLUMNS, MARKER, read_rows, terms_table

from .helpers import DOCS, LANGUAGES, strip_fenced, url_path

TSV = DOCS / "glossary.tsv"
ROWS = read_rows(TSV)
# What each language's table shows of a row, in its column order (hooks/glossary.py's LAYOUT).
SHOWN = {
    "en": lambda row: [row["english"], row["russian"], row["note"]],
    "ru": lambda row: [row["russian"], row["english"], row["note_ru"]],
}


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


def test_tsv_header_and_unique_terms():
    assert TSV.read_text(encoding="utf-8").splitlines()[0].split("\t") == COLUMNS
    for name in COLUMNS[:2]:
        terms = [row[name] for row in ROWS]
        assert all(terms), f"an empty {name} term in {TSV.name}"
        repeated = sorted({t for t in terms if terms.count(t) > 1})
        assert not repeated, f"{name} terms listed twice in {TSV.name}: {repeated}"


def test_every_note_has_its_russian_translation():
    wrong = [row["english"] for row in ROWS if bool(row["note"]) != bool(row["note_ru"])]
    assert not wrong, (
        f"{TSV.name}: a note without its Russian translation in the column note_ru (or the other way "
        f"round) for {wrong}"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_holds_the_marker_not_a_copy_of_the_table(language):
    page = DOCS / f"glossary.{language}.md"
    text = strip_fenced(page.read_text(encoding="utf-8"))
    found = re.search(r"^##[^\n]*\{\s*#terms\s*\}\s*$(.*?)(?=^#|\Z)", text, flags=re.M | re.S)
    assert found, f"{page.name} has no heading with the anchor {{ #terms }}"
    assert found.group(1).strip() == MARKER, f"{page.name}: under {{ #terms }} only the line {MARKER!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_generated_table_shows_exactly_the_tsv_rows_in_order(language):
    header, *rows = table_rows(terms_table(language))
    assert header == (
        ["English", "Русский", "Note"] if language == "en" else ["Русский", "English", "Примечание"]
    )
    assert rows == [SHOWN[language](row) for row in ROWS]


def test_generated_table_escapes_a_pipe():
    row = {"english": "a | b", "russian": "а", "note": "", "note_ru": ""}
    assert terms_table("en", [row]).splitlines()[2] == "| a \\| b | а |  |"


@pytest.mark.parametrize("language", LANGUAGES)
def test_built_glossary_page_shows_the_tsv(built_site, language):
    path = built_site / url_path(DOCS / f"glossary.{language}.md") / "index.html"
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")
    heading = soup.find(id="terms")
    assert heading is not None, f"{path}: no #terms heading"
    table = heading.find_next("table")
    shown = [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in table.select("tbody tr")]
    assert [row[:2] for row in shown] == [SHOWN[language](row)[:2] for row in ROWS]


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
