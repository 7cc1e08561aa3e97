"""The diagrams' drawings (docs/assets/diagrams/) are those of the mermaid sources in the pages
and notebooks: one per source (and a top-to-bottom one per left-to-right chain), none left over.
tests/browser/test_diagrams_fresh.py draws them again and compares their text."""

from __future__ import annotations

import re

from hooks.diagrams import STORE, key, narrow_source, svg_size
from scripts.render_diagrams import sources, wanted


def test_every_diagram_source_has_its_drawings_and_no_drawing_is_stale():
    files = wanted()
    assert files, "no mermaid diagram found in docs/"
    stored = set(STORE.glob("*.svg"))
    missing = sorted(p.name for p in files if p not in stored)
    stale = sorted(p.name for p in stored if p not in files)
    assert not missing, f"diagrams without a drawing (run `make diagrams`): {missing}"
    assert not stale, f"drawings of sources that are gone (run `make diagrams`): {stale}"


def test_each_drawing_is_named_and_drawn_for_its_source():
    for path in wanted():
        svg = path.read_text(encoding="utf-8")
        variant = path.name.split(".")[1]
        name = path.stem.split(".")[0]
        assert re.match(rf'<svg id="d{name}-{variant}"', svg), f"{path.name} was drawn for another source"
        width, height = svg_size(svg)
        assert width > 0 and height > 0
        assert "<text" in svg, f"{path.name} has no text: labels must stay SVG text"


def test_left_to_right_chains_get_a_top_to_bottom_drawing():
    chains = [s for s in sources() if re.search(r"^\s*(flowchart|graph)\s+(LR|RL)\b", s, re.M)]
    assert chains, "no left-to-right diagram to check"
    for source in chains:
        narrow = narrow_source(source)
        assert narrow is not None and re.search(r"^\s*(flowchart|graph)\s+TB\b", narrow, re.M)
        assert (STORE / f"{key(source)}.narrow.svg").is_file()
