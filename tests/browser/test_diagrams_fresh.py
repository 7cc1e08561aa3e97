"""The committed drawings are what the vendored mermaid draws from today's sources: each is drawn
again here, in the same Chromium, and its text and shape count are compared (not its coordinates,
which follow the fonts of the machine)."""

from __future__ import annotations

import re

from scripts.render_diagrams import draw_in, drawing_id, tidy, wanted

_TEXT = re.compile(r"<text\b[^>]*>(.*?)</text>", re.S)
_TAG = re.compile(r"<[^>]+>")
_SHAPE = re.compile(r'<g class="node\b')


def fingerprint(svg: str) -> tuple[list[str], int]:
    texts = [" ".join(_TAG.sub(" ", t).split()) for t in _TEXT.findall(svg)]
    return texts, len(_SHAPE.findall(svg))


def test_drawings_match_their_sources_drawn_again(browser):
    files = wanted()
    page = browser.new_page()
    try:
        fresh = draw_in(page, [(drawing_id(path), source) for path, source in files.items()])
    finally:
        page.close()
    stale = [
        path.name
        for path, svg in zip(files, fresh)
        if fingerprint(tidy(svg)) != fingerprint(path.read_text(encoding="utf-8"))
    ]
    assert not stale, f"drawings that differ from their source drawn again (run `make diagrams`): {stale}"
