"""Diagrams drawn ahead of time: the mermaid text in the pages stays the source, the site shows SVG.

Why this hook exists: material draws mermaid in the browser with the whole mermaid bundle (3.6 MB,
about 1 MB with gzip, most of a page's first visit) and then shrinks a left-to-right chain to the
width of a phone until its text is 4-6 px. Here every diagram is drawn once by our vendored
mermaid in headless Chromium (``scripts/render_diagrams.py``, ``make diagrams``), the SVG is
committed under ``docs/assets/diagrams/`` named by the hash of its source, and this hook puts it in
place of the ``<pre class="mermaid">`` that pymdownx.superfences (pages) and nbconvert (notebook
cells) write; a left-to-right chain also gets a top-to-bottom drawing that narrow screens show.
There is no plugin option for this: superfences' custom format functions cannot be named from
mkdocs.yml without making hooks/ an installed package, and nbconvert writes notebook cells itself.

A diagram without its drawing stops the build (``mkdocs build --strict`` fails), so a changed
source cannot ship with a stale picture; tests/docs/test_diagrams.py checks that the drawings are
those of the sources and tests/browser measures their text on a phone and a desktop.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
from pathlib import Path

from mkdocs.exceptions import PluginError

STORE = Path(__file__).resolve().parents[1] / "docs" / "assets" / "diagrams"
FONT_PX = 16  # mermaid's font size in the drawings (CSS px at scale 1)
# The widths the text column has (measured in Chromium: 1280x800 desktop, 390x844 phone) and the
# smallest text each may show.
DESKTOP_COLUMN_PX, DESKTOP_MIN_TEXT_PX = 680, 12
PHONE_COLUMN_PX, PHONE_MIN_TEXT_PX = 350, 10
# Screens narrower than this (CSS px) are "narrow" and get the top-to-bottom drawing.
NARROW_BELOW_PX = 760

_DIRECTION = re.compile(r"^(\s*(?:flowchart|graph)\s+)(LR|RL)\b", re.M)
_PRE = re.compile(r'<pre class="mermaid">(?:<code>)?(?P<source>.*?)(?:</code>)?</pre>', re.S)
_VIEWBOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"')


def normalize(source: str) -> str:
    """The source as it is hashed: dedented, stripped, one final newline."""
    return textwrap.dedent(source).strip() + "\n"


def key(source: str) -> str:
    return hashlib.sha256(normalize(source).encode("utf-8")).hexdigest()[:16]


def narrow_source(source: str) -> str | None:
    """The same diagram laid out top to bottom, or None when it already is."""
    text = normalize(source)
    if not _DIRECTION.search(text):
        return None
    return _DIRECTION.sub(lambda m: m.group(1) + "TB", text, count=1)


def drawing_path(source: str, variant: str) -> Path:
    return STORE / f"{key(source)}.{variant}.svg"


def svg_size(svg: str) -> tuple[float, float]:
    match = _VIEWBOX.search(svg)
    if match is None:
        raise ValueError("a stored diagram has no viewBox")
    return float(match.group(3)), float(match.group(4))


def _fits(width: float, column: float, min_text: float) -> bool:
    return min(1.0, column / width) * FONT_PX >= min_text


def _sized(svg: str, min_text: float) -> str:
    """The SVG at its natural size, never scaled below ``min_text`` px text (it scrolls then)."""
    width, height = svg_size(svg)
    min_width = min(width, width * min_text / FONT_PX)
    return svg.replace(
        "<svg ",
        f'<svg width="{width:.0f}" height="{height:.0f}" style="min-width:{min_width:.0f}px" ',
        1,
    )


def figure_html(source: str) -> str:
    """The drawings of one diagram, as the page shows them."""
    wide_path = drawing_path(source, "as-written")
    if not wide_path.is_file():
        raise PluginError(
            f"diagram {key(source)} has no drawing ({wide_path.name}): run `make diagrams`.\n{source}"
        )
    wide = wide_path.read_text(encoding="utf-8")
    narrow = wide
    if narrow_source(source) is not None:
        narrow_path = drawing_path(source, "narrow")
        if not narrow_path.is_file():
            raise PluginError(f"diagram {key(source)} has no narrow drawing: run `make diagrams`")
        narrow = narrow_path.read_text(encoding="utf-8")
    wide_width, _ = svg_size(wide)
    # Turned top to bottom, a chain of wide groups can come out wider still: keep the narrower.
    narrow = min((wide, narrow), key=lambda svg: svg_size(svg)[0])
    # Each screen: as written when its text stays readable in the column, else the narrower one.
    desktop = wide if _fits(wide_width, DESKTOP_COLUMN_PX, DESKTOP_MIN_TEXT_PX) else narrow
    phone = wide if _fits(wide_width, PHONE_COLUMN_PX, PHONE_MIN_TEXT_PX) else narrow
    if desktop is phone:
        body = f'<div class="diagram__drawing">{_sized(desktop, PHONE_MIN_TEXT_PX)}</div>'
    else:
        body = (
            f'<div class="diagram__drawing diagram__drawing--wide">{_sized(desktop, DESKTOP_MIN_TEXT_PX)}</div>'
            f'<div class="diagram__drawing diagram__drawing--narrow">{_sized(phone, PHONE_MIN_TEXT_PX)}</div>'
        )
    return f'<figure class="diagram" data-diagram="{key(source)}">{body}</figure>'


def sources_in(html_text: str) -> list[str]:
    """The mermaid sources of a rendered page, as the hook reads them."""
    return [html.unescape(m.group("source")) for m in _PRE.finditer(html_text)]


def on_page_content(html_text, page, config, files):
    html_text = _PRE.sub(lambda m: figure_html(html.unescape(m.group("source"))), html_text)
    # nbconvert wraps a notebook's diagram in <div class="jp-Mermaid">, which its CSS hides until
    # JupyterLab has drawn it: the drawing is there now.
    return html_text.replace('<div class="jp-Mermaid">', '<div class="jp-Mermaid jp-RenderedMermaid">')
