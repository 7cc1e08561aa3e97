"""Formulas typeset when the site is built: TeX in the sources, finished markup in the pages.

Why this hook exists: pages and notebooks write formulas in TeX (``$...$`` inline, ``$$...$$`` on
lines of their own). pymdownx.arithmatex (generic mode) keeps a page's TeX away from Markdown and
leaves it as ``\\(...\\)`` / ``\\[...\\]`` in ``arithmatex`` elements; nbconvert leaves a notebook's
markdown cells' ``$...$`` as plain text. Neither typesets anything: that is left to a script in the
reader's browser (MathJax or KaTeX, usually from a CDN). Here every formula is typeset once, at
build time, by the vendored KaTeX (docs/assets/vendor/katex, README.txt there) run in QuickJS, with
KaTeX's ``htmlAndMathml`` output: the HTML that is seen, and a MathML twin that screen readers
read. No math script runs in the browser and nothing comes from elsewhere: a page with formulas
gets the vendored katex.min.css (and through it the woff2 fonts its formulas use, served by the
site); a page without formulas, such as the home page, gets neither.

Why KaTeX, and why QuickJS (measured on this machine, 210 formulas, scripts not kept):
MathML alone with the system's fonts does not stretch parentheses around a fraction in Chromium
(the issue's screenshots), so the renderer is KaTeX, whose output reads like a textbook. Of the
JavaScript engines on PyPI, ``quickjs`` (a 6.4 MB wheel, cp311 and cp312) loads KaTeX in 0.05 s
and typesets the 210 formulas in 0.29 s; ``mini-racer`` (V8, 82 MB installed) takes 0.16 s and
0.17 s. The difference on the whole build is well under a second, so the small one wins; both give
the same markup (the same KaTeX). Node is not needed, so the README's commands stay enough.

The fonts are served cut to the characters the site's formulas show (fontTools, after the build;
no hinting, which phones ignore): a page's fonts weigh about half as much (Main-Regular 26 to
11 KB), which keeps a chapter with formulas within the site's 400 KB first visit.

A formula KaTeX cannot typeset (or typesets only by bending LaTeX's rules: ``strict: "error"``,
e.g. Cyrillic outside ``\\text{}``) stops the build with the page and the TeX named.
A wide display formula scrolls inside its own box on a phone (extra.css); that box is focusable
so that it can be scrolled from the keyboard. tests/docs/test_math.py and tests/browser/
test_math_in_browser.py check the result.
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
import time
from pathlib import Path, PurePosixPath

import quickjs
from fontTools import subset
from fontTools.ttLib import TTFont
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.utils import get_relative_url

VENDOR = Path(__file__).resolve().parents[1] / "docs" / "assets" / "vendor" / "katex"
STYLESHEET = "assets/vendor/katex/katex.min.css"
log = logging.getLogger("mkdocs.hooks.formulas")
OPTIONS = {"output": "htmlAndMathml", "throwOnError": True, "strict": "error", "trust": False}


class Renderer:
    """KaTeX in a QuickJS context, loaded once per build."""

    def __init__(self) -> None:
        start = time.process_time()
        self._context = quickjs.Context()
        self._context.eval((VENDOR / "katex.min.js").read_text(encoding="utf-8"))
        self._render = self._context.eval(
            "(function (tex, options) { return katex.renderToString(tex, JSON.parse(options)); })"
        )
        self.count = 0
        self.characters: set[str] = set()  # every character the formulas show
        self.seconds = time.process_time() - start  # CPU seconds: loading KaTeX, then typesetting

    def __call__(self, tex: str, display: bool) -> str:
        if not isinstance(tex, str):
            raise TypeError(f"tex must be a str, got {type(tex).__name__}")
        options = json.dumps({**OPTIONS, "displayMode": bool(display)})
        start = time.process_time()
        try:
            markup = self._render(tex, options)
        except quickjs.JSException as error:
            raise ValueError(f"KaTeX cannot typeset {tex!r}: {error}") from None
        finally:
            self.seconds += time.process_time() - start
        self.count += 1
        glyphs = markup[markup.find('<span class="katex-html"') :]
        self.characters.update(html.unescape(_ANY_TAG.sub("", glyphs)))
        # material's search indexes a formula once, as it is seen: the MathML twin is left out
        # (marking the glyphs' span instead would not hold: material's parser drops the mark at
        # the first nested </span>, and the MathML has no span inside).
        return markup.replace(
            '<span class="katex-mathml">', '<span class="katex-mathml" data-search-exclude>', 1
        )


_ANY_TAG = re.compile(r"<[^>]+>")
_renderer: Renderer | None = None


def renderer() -> Renderer:
    global _renderer
    if _renderer is None:
        _renderer = Renderer()
    return _renderer


_STRUT = re.compile(r'class="katex-strut" style="height:([\d.]+)em;(?:vertical-align:(-?[\d.]+)em;)?"')
KATEX_EM = 1.21  # katex.min.css: .katex { font-size: 1.21em }
KATEX_LINE = 1.2  # and its line-height


def formula_height_em(markup: str) -> float:
    """The height of a display formula's line, in ems of the text around it, from KaTeX's struts
    (each part's height above and below the baseline)."""
    parts = [(float(h), -float(v or 0)) for h, v in _STRUT.findall(markup)]
    above = max((h - d for h, d in parts), default=0.0)
    below = max((d for _, d in parts), default=0.0)
    return max(above + below, KATEX_LINE) * KATEX_EM


def display_box(markup: str) -> str:
    """A display formula in a box of its own that scrolls sideways when it is wider than the page.

    Its style and layout are skipped while it is off screen (``content-visibility: auto``): a
    chapter's display formulas hold a third of its elements. The box keeps the formula's height
    meanwhile, so nothing moves when it is drawn and links land where they should."""
    height = formula_height_em(markup)  # the content box: the padding comes on top
    return (
        f'<div class="math-display" tabindex="0" style="contain-intrinsic-block-size:auto {height:.2f}em">'
        f"{markup}</div>"
    )


# Pages: what pymdownx.arithmatex (generic mode) leaves -------------------------------------------
_ARITHMATEX = re.compile(
    r'<span class="arithmatex">\\\((?P<inline>.*?)\\\)</span>'
    r'|<div class="arithmatex">\s*\\\[(?P<display>.*?)\\\]\s*</div>',
    re.S,
)


def render_page(text: str, render) -> str:
    def replace(match: re.Match) -> str:
        if match.group("display") is not None:
            return display_box(render(html.unescape(match.group("display")).strip(), True))
        return render(html.unescape(match.group("inline")).strip(), False)

    return _ARITHMATEX.sub(replace, text)


# Notebooks: the markdown cells' $...$ and $$...$$, as nbconvert leaves them -----------------------
_MARKDOWN_CELL = re.compile(
    r'(<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput"[^>]*>)(.*?)'
    r'(?=<div class="jp-Cell |\Z)',
    re.S,
)
# Code and pre stay as written: a $ there is the code's.
_TAG_OR_CODE = re.compile(r"<(code|pre|svg|script|style)\b.*?</\1>|<[^>]+>", re.S)
_DISPLAY_PARAGRAPH = re.compile(r"<p>\s*\$\$(?P<tex>.+?)\$\$\s*</p>", re.S)
_DISPLAY = re.compile(r"\$\$(?P<tex>.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?P<tex>[^$\s](?:[^$]*?[^$\s\\])?)\$(?!\d)", re.S)


def _render_text(text: str, render) -> str:
    """Display and inline formulas in a run of text (no tags in it)."""
    text = _DISPLAY.sub(lambda m: display_box(render(html.unescape(m.group("tex")).strip(), True)), text)
    return _INLINE.sub(lambda m: render(html.unescape(m.group("tex")), False), text)


def render_markdown_html(fragment: str, render) -> str:
    """The formulas of a notebook markdown cell's HTML, outside code, pre and tags."""
    fragment = _DISPLAY_PARAGRAPH.sub(
        lambda m: display_box(render(html.unescape(m.group("tex")).strip(), True)), fragment
    )
    out, position = [], 0
    for match in _TAG_OR_CODE.finditer(fragment):
        out.append(_render_text(fragment[position : match.start()], render))
        out.append(match.group(0))
        position = match.end()
    out.append(_render_text(fragment[position:], render))
    return "".join(out)


def render_notebook(text: str, render) -> str:
    return _MARKDOWN_CELL.sub(lambda m: m.group(1) + render_markdown_html(m.group(2), render), text)


# MkDocs events ------------------------------------------------------------------------------------
_with_math: set[str] = set()


_reported = 0
_subsets: dict[frozenset[str], dict[str, bytes]] = {}  # the cut fonts, by the characters they keep
logging.getLogger("fontTools").setLevel(logging.ERROR)  # it warns of KaTeX's font timestamps


def subset_font(data: bytes, characters: str) -> bytes:
    """A woff2 font cut to ``characters`` (what it lacks of them is ignored), without hinting."""
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.hinting = False
    options.name_IDs = [1, 2]
    font = TTFont(io.BytesIO(data))
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    out = io.BytesIO()
    font.flavor = "woff2"
    font.save(out)
    return out.getvalue()


def write_font_subsets(site_dir: Path, characters: frozenset[str]) -> None:
    """Each served KaTeX font, cut to the characters the site's formulas show (cut once for a
    set of characters: both languages' builds, and mkdocs serve's rebuilds, write the same)."""
    if characters not in _subsets:
        text = "".join(sorted(characters))
        _subsets[characters] = {
            source.name: subset_font(source.read_bytes(), text)
            for source in sorted((VENDOR / "fonts").glob("*.woff2"))
        }
    folder = site_dir / PurePosixPath(STYLESHEET).parent / "fonts"
    for name, data in _subsets[characters].items():
        (folder / name).write_bytes(data)


@event_priority(-200)  # after mkdocs-static-i18n (-100), which builds the other language inside its own
def on_post_build(config):
    """What the formulas cost, both languages together (the benchmark page quotes it)."""
    global _reported
    if _renderer is None:
        return
    start = time.process_time()
    write_font_subsets(Path(config["site_dir"]), frozenset(_renderer.characters))
    _renderer.seconds += time.process_time() - start
    if _renderer.count != _reported:
        _reported = _renderer.count
        log.info(
            f"formulas: {_renderer.count} typeset on {len(_with_math)} pages, KaTeX's fonts cut to their "
            f"{len(_renderer.characters)} characters, in {_renderer.seconds:.2f} s of CPU"
        )


def on_page_content(html_text, page, config, files):
    render = renderer()
    before = render.count

    def named(tex: str, display: bool) -> str:
        try:
            return render(tex, display)
        except ValueError as error:
            raise PluginError(f"{page.file.src_uri}: {error}") from None

    if page.file.src_uri.endswith(".ipynb"):
        html_text = render_notebook(html_text, named)
    else:
        html_text = render_page(html_text, named)
    if render.count > before:
        _with_math.add(page.file.dest_uri)
    else:  # mkdocs serve: a page that no longer has formulas
        _with_math.discard(page.file.dest_uri)
    return html_text


_EXTRA_CSS = re.compile(r'<link rel="stylesheet" href="[^"]*assets/stylesheets/extra\.css[^"]*">')


def on_post_page(output, page, config):
    """KaTeX's stylesheet (and so its fonts) only on the pages that have formulas."""
    if page.file.dest_uri not in _with_math:
        return output
    link = f'<link rel="stylesheet" href="{get_relative_url(STYLESHEET, page.url)}">'
    extra = _EXTRA_CSS.search(output)
    if extra:  # before extra.css, which adjusts it
        return output[: extra.start()] + link + output[extra.start() :]
    return output.replace("</head>", link + "</head>", 1)
