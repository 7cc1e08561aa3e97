"""Russian and English are kept in step by these checks, not by good intentions."""

from __future__ import annotations

import pytest

from .helpers import (
    ANCHOR,
    DOCS,
    LANGUAGES,
    NOTEBOOKS,
    SOURCES,
    code_without_words,
    headings,
    includes,
    language_of,
    mermaid_count,
    pages,
    read_source,
    sources,
    twin,
)

PAGES = pages()
RU_PAGES = [p for p in PAGES if language_of(p) == "ru"]
RU_SOURCES = [p for p in sources() if language_of(p) == "ru"]


@pytest.mark.parametrize("folder, pattern", [(DOCS, "**/*.md"), (SOURCES, "*.py"), (NOTEBOOKS, "*.ipynb")])
def test_everything_exists_in_both_languages(folder, pattern):
    files = [p for p in folder.glob(pattern) if len(p.suffixes) >= 2]
    assert files, f"nothing found under {folder}"
    untranslated = []
    for path in files:
        if language_of(path) not in LANGUAGES:
            untranslated.append(f"{path.relative_to(folder)}: no .ru/.en suffix")
        for language in LANGUAGES:
            if not twin(path, language).is_file():
                untranslated.append(f"{path.relative_to(folder)} has no {language} twin")
    assert not untranslated, "\n".join(untranslated)


@pytest.mark.parametrize("ru", RU_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_pages_have_the_same_structure(ru):
    en = twin(ru, "en")
    ru_text, en_text = ru.read_text(encoding="utf-8"), en.read_text(encoding="utf-8")
    ru_headings, en_headings = headings(ru_text), headings(en_text)
    missing = [text for _, text in ru_headings + en_headings if not ANCHOR.search(text)]
    assert not missing, f"headings without an explicit {{ #anchor }} (the same in both languages): {missing}"

    def outline(items):
        return [(level, ANCHOR.search(text).group(1)) for level, text in items]

    assert outline(ru_headings) == outline(en_headings), "the two languages have different heading anchors"
    assert mermaid_count(ru_text) == mermaid_count(en_text), "different number of mermaid diagrams"
    assert includes(ru_text) == includes(en_text), "different code includes"


@pytest.mark.parametrize("ru", RU_SOURCES, ids=lambda p: p.name)
def test_notebooks_differ_only_in_prose_comments_and_strings(ru):
    en = twin(ru, "en")
    ru_nb, en_nb = read_source(ru), read_source(en)
    assert [c.cell_type for c in ru_nb.cells] == [c.cell_type for c in en_nb.cells], "different cell layout"
    for number, (a, b) in enumerate(zip(ru_nb.cells, en_nb.cells)):
        if a.cell_type == "code":
            assert code_without_words(a.source) == code_without_words(b.source), (
                f"code cell {number} differs in more than comments and string literals:\n"
                f"--- {ru.name}\n{a.source}\n--- {en.name}\n{b.source}"
            )
        else:
            assert [lvl for lvl, _ in headings(a.source)] == [lvl for lvl, _ in headings(b.source)], (
                f"markdown cell {number}: different headings"
            )
            assert mermaid_count(a.source) == mermaid_count(b.source), (
                f"markdown cell {number}: different diagrams"
            )


def test_notebook_headings_are_unique():
    """Heading ids come from their text: a repeated heading would give two equal ids."""
    for path in sources():
        texts = [
            text
            for cell in read_source(path).cells
            if cell.cell_type == "markdown"
            for _, text in headings(cell.source)
        ]
        repeated = {t for t in texts if texts.count(t) > 1}
        assert not repeated, f"{path.name}: repeated headings {sorted(repeated)}"
