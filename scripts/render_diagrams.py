"""Draw every mermaid diagram of the site to SVG, ahead of time (``make diagrams``).

The mermaid text in docs/**/*.md and in the notebooks' markdown cells stays the source. Each
diagram is drawn by the vendored mermaid (docs/assets/vendor/mermaid/) in headless Chromium and
written to docs/assets/diagrams/<hash of the source>.as-written.svg; a left-to-right chain also gets
<hash>.narrow.svg, laid out top to bottom, for narrow screens (hooks/diagrams.py chooses).
Drawings of sources that are gone are deleted. The colours are CSS variables of the theme, so one
drawing serves the light and the dark palette.

    python scripts/render_diagrams.py           # draw what is missing, delete what is stale
    python scripts/render_diagrams.py --check   # exit 1 if a drawing is missing or stale
    python scripts/render_diagrams.py --force   # draw everything again
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hooks.diagrams import STORE, drawing_path, narrow_source, normalize  # noqa: E402
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

MERMAID = ROOT / "docs" / "assets" / "vendor" / "mermaid" / "mermaid.min.js"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```mermaid[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)

# The site's text font (material with ``font: false``): mermaid measures the labels with it.
FONT_FAMILY = "-apple-system, BlinkMacSystemFont, Helvetica, Arial, sans-serif"
# Colours from material's mermaid variables, which both palettes define: the drawing follows the
# reader's palette. Text is SVG text (no HTML labels), so the page's CSS cannot reflow it.
THEME_CSS = """
.node rect, .node circle, .node ellipse, .node polygon, .node path {
  fill: var(--md-mermaid-node-bg-color); stroke: var(--md-mermaid-node-fg-color); }
.label, .label text, .nodeLabel, text { fill: var(--md-mermaid-label-fg-color); font-family: var(--md-mermaid-font-family); }
.edgePath .path, .flowchart-link { stroke: var(--md-mermaid-edge-color); }
marker, .marker, .arrowheadPath { fill: var(--md-mermaid-edge-color) !important; stroke: var(--md-mermaid-edge-color) !important; }
.edgeLabel rect, .labelBkg { fill: var(--md-mermaid-label-bg-color); background: none; }
.edgeLabel text, .edgeLabel tspan { fill: var(--md-mermaid-edge-color); }
.cluster rect { fill: var(--md-default-fg-color--lightest); stroke: var(--md-default-fg-color--lighter); }
.cluster text, .cluster-label text { fill: var(--md-mermaid-label-fg-color); }
"""


def sources() -> list[str]:
    """Every mermaid source of the site: pages and notebook markdown cells, in a stable order."""
    found: list[str] = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        found += [m.group("body") for m in _FENCE.finditer(path.read_text(encoding="utf-8"))]
    for path in sorted((ROOT / "docs" / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                found += [m.group("body") for m in _FENCE.finditer(text)]
    return list(dict.fromkeys(normalize(textwrap.dedent(s)) for s in found))


def wanted() -> dict[Path, str]:
    """Each drawing that should exist, and the source it is drawn from."""
    files = {}
    for source in sources():
        files[drawing_path(source, "as-written")] = source
        narrow = narrow_source(source)
        if narrow is not None:
            files[drawing_path(source, "narrow")] = narrow
    return files


def draw_in(page, items: list[tuple[str, str]]) -> list[str]:
    """SVGs of ``(id, source)`` pairs, drawn by the vendored mermaid in a Playwright ``page``."""
    page.set_content(f'<html><body style="font-family:{FONT_FAMILY}"></body></html>')
    page.add_script_tag(path=str(MERMAID))
    return page.evaluate(
        """async ([items, css, font]) => {
          mermaid.initialize({
            startOnLoad: false, theme: "base", themeCSS: css, fontFamily: font,
            htmlLabels: false, flowchart: { htmlLabels: false, useMaxWidth: false },
            securityLevel: "strict", deterministicIds: true,
          });
          const out = [];
          for (const [id, text] of items) out.push((await mermaid.render(id, text)).svg);
          return out;
        }""",
        [items, THEME_CSS, FONT_FAMILY],
    )


def draw(items: list[tuple[str, str]]) -> list[str]:
    """SVGs of ``(id, source)`` pairs, drawn in Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return draw_in(browser.new_page(), items)
        finally:
            browser.close()


def drawing_id(path: Path) -> str:
    """The id a drawing's SVG carries: ``d<hash>-<variant>``."""
    name, variant = path.name.split(".")[:2]
    return f"d{name}-{variant}"


def tidy(svg: str) -> str:
    """The SVG without the fixed size mermaid gives it (the page sizes it) and with one trailing newline."""
    for attribute in ("width", "height", "style"):
        svg = re.sub(rf'^<svg([^>]*?)\s{attribute}="[^"]*"', r"<svg\1", svg, count=1)
    return svg.strip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing or stale drawings")
    parser.add_argument("--force", action="store_true", help="draw every diagram again")
    args = parser.parse_args()
    files = wanted()
    stale = sorted(p for p in STORE.glob("*.svg") if p not in files)
    missing = sorted(p for p in files if args.force or not p.is_file())
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}")
        for path in missing:
            print(f"missing: {path.relative_to(ROOT)}")
        return 1 if stale or missing else 0
    STORE.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink()
    if missing:
        for path, svg in zip(missing, draw([(drawing_id(p), files[p]) for p in missing])):
            path.write_text(tidy(svg), encoding="utf-8")
    print(f"{len(files)} drawings: {len(missing)} drawn, {len(stale)} deleted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
