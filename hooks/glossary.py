"""The glossary pages' terms table, generated from docs/glossary.tsv: a term is written once.

docs/glossary.tsv has the columns ``english``, ``russian``, ``note`` (in English) and ``note_ru``
(the same note in Russian). On docs/glossary.en.md and docs/glossary.ru.md the line ``MARKER``
stands where the table goes; this hook puts the table there while the site is built, in the
page's language and column order. tests/docs/test_glossary.py checks the TSV and the pages.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError

TSV = Path(__file__).resolve().parents[1] / "docs" / "glossary.tsv"
COLUMNS = ["english", "russian", "note", "note_ru"]
MARKER = "<!-- the terms table: docs/glossary.tsv, by hooks/glossary.py -->"
# Per language: the header row and the columns of the TSV shown under it.
LAYOUT = {
    "en": (("English", "Русский", "Note"), ("english", "russian", "note")),
    "ru": (("Русский", "English", "Примечание"), ("russian", "english", "note_ru")),
}
PAGE = re.compile(r"glossary\.(ru|en)\.md")


def read_rows(path: Path = TSV) -> list[dict[str, str]]:
    """The TSV's rows as dicts of its columns; a row may leave out its empty last cells."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != COLUMNS:
        raise ValueError(f"{path.name} must start with the header {COLUMNS}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = [cell.strip() for cell in line.split("\t")]
        if not 2 <= len(cells) <= len(COLUMNS):
            raise ValueError(
                f"{path.name}:{number}: expected {len(COLUMNS)} tab-separated columns, got {cells}"
            )
        rows.append(dict(zip(COLUMNS, cells + [""] * (len(COLUMNS) - len(cells)), strict=True)))
    return rows


def terms_table(language: str, rows: list[dict[str, str]] | None = None) -> str:
    """The markdown table of the terms, in ``language``'s column order."""
    header, columns = LAYOUT[language]
    lines = ["| " + " | ".join(header) + " |", "| --- | --- | --- |"]
    for row in read_rows() if rows is None else rows:
        lines.append("| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    found = PAGE.fullmatch(Path(page.file.src_uri).name)
    if found is None:
        return markdown
    if markdown.count(MARKER) != 1:
        raise PluginError(
            f"{page.file.src_uri}: expected the line {MARKER!r} once, where the terms table goes"
        )
    try:
        table = terms_table(found.group(1))
    except ValueError as error:
        raise PluginError(str(error)) from None
    return markdown.replace(MARKER, table)
