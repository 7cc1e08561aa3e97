"""What the browser checks share: the site's pages, the local server, one visit of a page, colours."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 (re-exported to the tests)
from scripts.serve_like_pages import PagesServer, transfer_bytes  # noqa: F401 (re-exported to the tests)
from tests.docs.helpers import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    NOTEBOOKS,
    ROOT,
    mkdocs_config,
    pages,
    url_path,
)

ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOCAL_HOST = "127.0.0.1"
VIEWPORT = {"width": 1280, "height": 900}
# The screens a reader meets the site on: a desktop and a 390x844 phone.
DEVICES = {
    "desktop": {"viewport": VIEWPORT},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}
# A page's own HTML, uncompressed. Figures are files beside it (hooks/notebook_pages.py), CSS and
# scripts are files: what is left is text, code and typeset formulas. A formula typeset at build time
# (KaTeX's HTML and its MathML twin, hooks/formulas.py) costs 2-5 KB where its TeX cost a few dozen
# bytes, and the API page documents every public name: 350 KB leaves room for those, while an
# inlined figure or stylesheet (hundreds of KB) still fails.
HTML_BUDGET = 350 * 1024
# A first visit (cold cache), everything the page loads, as Pages sends it (gzip).
FIRST_VISIT_BUDGET = 600 * 1024
PROSE_FIRST_VISIT_BUDGET = 400 * 1024  # a page without a notebook and without formulas
FORMULA_PAGE_BUDGET = 450 * 1024  # a page without a notebook, with formulas (KaTeX's stylesheet and fonts)


def first_visit_budget(row: dict) -> int:
    """The budget of a first visit to a page, from what its weight row says it is."""
    if row["notebook"]:
        return FIRST_VISIT_BUDGET
    return FORMULA_PAGE_BUDGET if row["formulas"] else PROSE_FIRST_VISIT_BUDGET


# Smallest text, in CSS px: diagrams, and figure labels (their smallest font at the shown scale).
MIN_DIAGRAM_TEXT_PX = {"desktop": 12, "phone": 10}
MIN_FIGURE_TEXT_PX = {"desktop": 11, "phone": 8}


# The browser ----------------------------------------------------------------------------------
READY_TIMEOUT_MS = 20_000

# Page weights, one row per page, printed at the end of the run and written to artifacts/.
WEIGHTS: dict[str, dict] = {}


def chromium_problem() -> str | None:
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        return (
            f"\n\n*** NO BROWSER: Chromium is not at {CHROMIUM}. ***\n"
            "The browser checks of the site need it: `apt-get install -y chromium` (Debian), or set\n"
            "SIMPLE_LLM_CHROMIUM to a Chromium binary. Do not run `playwright install`.\n"
        )
    return None


# The pages ------------------------------------------------------------------------------------
def source_pages() -> list[Path]:
    return pages() + sorted(NOTEBOOKS.glob("*.ipynb"))


def page_paths() -> list[str]:
    """Every page of both languages, from docs/ (tests check the built site has exactly these)."""
    return sorted(url_path(src) for src in source_pages())


def built_page_paths(site: Path) -> list[str]:
    """Every page of the built site: each index.html but assets' and the 404 page."""
    found = []
    for html in site.rglob("index.html"):
        relative = html.relative_to(site)
        if relative.parts[0] == "assets" or (len(relative.parts) > 1 and relative.parts[1] == "assets"):
            continue
        found.append("".join(f"{p}/" for p in relative.parent.parts))
    return sorted(found)


def language_of_path(path: str) -> str:
    first = path.split("/")[0]
    return first if first in LANGUAGES and first != DEFAULT_LANGUAGE else DEFAULT_LANGUAGE


def twin_path(path: str, language: str) -> str:
    """The same page in ``language``."""
    own = language_of_path(path)
    bare = path if own == DEFAULT_LANGUAGE else path[len(own) + 1 :]
    return bare if language == DEFAULT_LANGUAGE else f"{language}/{bare}"


# The local server -----------------------------------------------------------------------------
def site_prefix() -> str:
    """The path the site is served under: the path of its ``site_url`` (``/simple-llm/``)."""
    path = urlsplit(mkdocs_config().get("site_url") or "/").path or "/"
    return path if path.endswith("/") else path + "/"


class SiteServer(PagesServer):
    """The built site served as GitHub Pages serves it (scripts/serve_like_pages.py): under the
    site's path, gzip, ``404.html`` for a missing address. ``url(path)`` and ``path_of(url)`` take
    and give paths relative to the site root."""

    def __init__(self, root: Path):
        # Nothing is kept by the browser (Pages sends max-age=600): every visit is a first visit,
        # in a new tab or in one reused (tests/browser/conftest.py), and asks for every file.
        super().__init__(root, site_prefix(), cache_control="no-store")

    def file_of(self, url: str) -> Path | None:
        """The file of the site that answers ``url`` (None outside the site or when missing)."""
        try:
            path = self.path_of(url)
        except ValueError:
            return None
        target = self.httpd.RequestHandlerClass.root / unquote(path)
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-extension", "file"):
        return True
    return parts.hostname == LOCAL_HOST


# One visit of a page --------------------------------------------------------------------------
# Material renders mermaid into a closed shadow root: open them all so the checks can look inside.
OPEN_SHADOW_ROOTS = """
(() => {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    return attach.call(this, Object.assign({}, init, { mode: "open" }));
  };
})();
"""

# Everything that is done when the page is ready: images decoded (diagrams are drawn ahead of time),
# but the notebooks' lazy figures, which load when they come near the view (INSPECT scrolls to each).
READY = """
() => [...document.images].every(i => i.complete || i.loading === "lazy")
"""

# What a visit records, in one round trip.
INSPECT = r"""
async () => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {               // any CSS colour -> [r, g, b, a 0..1]
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "rgba(0,0,0,0)";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, bottom) => {       // top composited over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {          // the opaque colour behind an element
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = [255, 255, 255, 1];
    if (layers.length && layers[layers.length - 1][3] >= 1) colour = layers.pop();
    while (layers.length) colour = over(layers.pop(), colour);
    return colour;
  };
  const textColour = (el) => {
    const style = getComputedStyle(el);
    const isSvgText = el instanceof SVGElement && !(el instanceof SVGForeignObjectElement);
    return rgba(isSvgText ? style.fill : style.color);
  };
  const nav = performance.getEntriesByType("navigation")[0];
  const article = document.querySelector("article.md-content__inner") || document.querySelector("article");
  const page = background(document.body);

  const diagrams = [...document.querySelectorAll("figure.diagram")].map(figure => {
    const shown = [...figure.querySelectorAll("svg")].filter(svg => svg.getBoundingClientRect().width > 0);
    const svg = shown[0];
    if (!svg) return { svg: false, shown: 0, text: "", labels: [] };
    const labels = [];
    for (const el of svg.querySelectorAll("text, tspan")) {
      const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join("").trim();
      if (!own) continue;
      const style = getComputedStyle(el);
      const ctm = el.getScreenCTM();
      labels.push({ text: own, px: parseFloat(style.fontSize) * (ctm ? Math.hypot(ctm.a, ctm.b) : 1),
                    colour: over(textColour(el), page),
                    visible: style.visibility !== "hidden" && style.display !== "none" && Number(style.opacity) > 0 });
    }
    const box = svg.getBoundingClientRect();
    return { svg: true, shown: shown.length, text: svg.textContent.trim(), labels, width: box.width, height: box.height };
  });

  // The resolution a PNG was saved at (its pHYs chunk), to know the size of its text when shown.
  // Figures are files beside the page (hooks/notebook_pages.py): the bytes come from the cache.
  const pngDpi = async (img) => {
    let bytes;
    try {
      bytes = new Uint8Array(await (await fetch(img.currentSrc || img.src)).arrayBuffer());
    } catch (e) { return null; }
    const text = String.fromCharCode(...bytes.subarray(0, 4000));
    const at = text.indexOf("pHYs");
    if (at < 0) return null;
    const ppu = [0, 1, 2, 3].reduce((v, i) => v * 256 + bytes[at + 4 + i], 0);
    return bytes[at + 12] === 1 ? ppu * 0.0254 : null;
  };

  const images = [];
  for (const img of (article ? article.querySelectorAll("img") : [])) {
    img.scrollIntoView({ block: "center" });  // a lazy figure loads once it is near the view
    try { await img.decode(); } catch (e) {}
    const box = img.getBoundingClientRect();
    const style = getComputedStyle(img);
    const container = img.closest(".jp-OutputArea-output, p, figure, div") || article;
    let transparentShare = null;
    if (img.naturalWidth > 0) {
      const c = document.createElement("canvas");
      const w = c.width = Math.min(img.naturalWidth, 200), h = c.height = Math.min(img.naturalHeight, 200);
      const cx = c.getContext("2d");
      try {
        cx.drawImage(img, 0, 0, w, h);
        const d = cx.getImageData(0, 0, w, h).data;
        let clear = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] < 250) clear++;
        transparentShare = clear / (w * h);
      } catch (e) {}
    }
    images.push({
      src: img.getAttribute("src").slice(0, 40), notebook: !!img.closest(".jp-OutputArea-output"),
      alt: img.getAttribute("alt"), dpi: img.closest(".jp-OutputArea-output") ? await pngDpi(img) : null, fullSize: img.dataset.fullSize === "1",
      naturalWidth: img.naturalWidth, width: box.width, height: box.height,
      inView: box.bottom > 0 && box.top < innerHeight,
      overflow: box.right - (article ? article.getBoundingClientRect().right : innerWidth),
      opacity: Number(style.opacity), visibility: style.visibility, filter: style.filter,
      transparentShare, behind: background(container),
    });
  }
  scrollTo(0, 0);

  const toc = [...document.querySelectorAll('nav.md-nav--secondary a[href^="#"]')].map(a => {
    const id = decodeURIComponent(a.getAttribute("href").slice(1));
    return { href: a.getAttribute("href"), found: id !== "" && document.getElementById(id) !== null };
  });

  const sample = (selector) => {
    const el = document.querySelector(selector);
    if (!el) return null;
    return { colour: over(textColour(el), background(el)), background: background(el) };
  };
  const styled = {};
  const snapshot = (selector) => {
    const el = document.querySelector(selector);
    if (!el) return null;
    const s = getComputedStyle(el);
    const keep = {};
    for (const p of ["background-color", "border-top-width", "border-top-style", "border-top-color",
                     "border-left-width", "border-radius", "color", "font-family", "font-size",
                     "font-weight", "font-style", "padding-top", "padding-left", "margin-top",
                     "display", "overflow-x", "white-space", "line-height"]) keep[p] = s.getPropertyValue(p);
    return keep;
  };
  for (const selector of [".jupyter-wrapper", ".jp-Cell", ".jp-InputArea", ".jp-InputArea-editor",
                          ".jp-InputPrompt", ".jp-OutputArea-output", ".jp-OutputArea-output pre",
                          ".highlight-ipynb", ".highlight-ipynb .k", ".highlight-ipynb .c1",
                          ".jp-RenderedHTMLCommon h2", ".jp-MarkdownCell"]) {
    styled[selector] = snapshot(selector);
  }

  return {
    url: location.href,
    scheme: document.body.getAttribute("data-md-color-scheme"),
    title: document.title,
    notebook: !!document.querySelector(".jupyter-wrapper"),
    loadMs: nav.loadEventEnd,
    htmlBytes: nav.decodedBodySize,
    resources: performance.getEntriesByType("resource").map(r => ({
      name: r.name, type: r.initiatorType, bytes: r.decodedBodySize })),
    pageBackground: page,
    pendingMermaid: document.querySelectorAll("pre.mermaid, div.mermaid").length,
    sideways: document.documentElement.scrollWidth - innerWidth,
    stylesheets: [...document.styleSheets].filter(s => { try { return s.cssRules.length > 0; } catch (e) { return false; } }).length,
    lang: document.documentElement.lang,
    diagrams, images, toc,
    switcher: [...document.querySelectorAll(".md-select a[hreflang]")].map(a => ({ lang: a.getAttribute("hreflang"), href: a.href })),
    colab: [...document.querySelectorAll("a[data-colab]")].map(a => a.href),
    code: sample(".jp-InputArea-editor .highlight-ipynb pre, .jp-InputArea-editor pre"),
    output: sample(".jp-OutputArea-output pre"),
    prose: sample("article p"),
    link: sample("article p a:not(.md-button)"),
    linkDecoration: (() => { const a = document.querySelector("article p a:not(.md-button)");
                             return a ? getComputedStyle(a).textDecorationLine : null; })(),
    comment: sample(".highlight-ipynb .c1, .highlight .c1, .highlight .c"),
    footer: sample(".md-copyright"),
    button: sample("article .md-button:not(.md-button--primary)"),
    styled,
  };
}
"""


@dataclass
class Visit:
    """What one page showed and did in the browser."""

    path: str
    scheme: str
    device: str = "desktop"
    status: int | None = None
    info: dict = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    not_ready: str | None = None
    loaded: int = 0  # how many of ``requests`` the page made before the checks looked at it
    inspected: int = 0  # ... before FORMULAS drew every formula (a phone visit of a formula page)
    formulas: dict | None = None  # what FORMULAS found (a phone visit of a page with formulas)


# What a formula page shows, once its fonts are in.
FORMULAS = r"""
async () => {
  // A formula inside a closed <details> (chapter 8's answers) is not drawn until the reader opens
  // it: open them all, as a reader would, so that their fonts are asked for too.
  for (const details of document.querySelectorAll("details")) details.open = true;
  // What holds a formula and is off screen is not drawn (content-visibility: auto, extra.css), so
  // neither are its glyphs: every formula is drawn here at once, as scrolling would draw it, then
  // the fonts are awaited.
  const drawn = document.createElement("style");
  drawn.textContent = "* { content-visibility: visible !important; }";
  document.head.append(drawn);
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  await document.fonts.ready;
  const family = (f) => f.replace(/["']/g, "").trim();
  const faces = [...document.fonts].filter(f => family(f.family).startsWith("KaTeX"))
    .map(f => ({ family: family(f.family), status: f.status }));
  const used = new Set();
  for (const el of document.querySelectorAll(".katex-html *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    used.add(family(getComputedStyle(el).fontFamily.split(",")[0]));
  }
  const boxes = [...document.querySelectorAll(".math-display")].map(box => {
    const style = getComputedStyle(box), rect = box.getBoundingClientRect();
    return { scrollWidth: box.scrollWidth, clientWidth: box.clientWidth, overflowX: style.overflowX,
             right: rect.right, focusable: box.tabIndex >= 0 };
  });
  return { faces, used: [...used], boxes, sideways: document.documentElement.scrollWidth - innerWidth,
           width: innerWidth };
}
"""


# Colours --------------------------------------------------------------------------------------
def luminance(rgb) -> float:
    def channel(value):
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    """WCAG contrast ratio of two opaque colours (1..21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
