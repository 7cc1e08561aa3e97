"""Light notebook pages: nbconvert's CSS is shared, not inlined in every page.

Why this hook exists:

1. nbconvert's template (through mkdocs-jupyter) inlines about 590 KB of CSS (JupyterLab's theme,
   the Pygments colours, the mermaid rules) as ``<style>`` blocks into every notebook page, so a
   reader downloads it again with each notebook and a page weighs ~650 KB before its figures.
   Here the ``<style>`` blocks that every notebook page of a language has in common move into ONE
   stylesheet, ``assets/stylesheets/jupyter.<hash>.css`` (named by its content, so a cached copy is
   never stale), written once into the site; each page links it at the place of its first block,
   so the cascade order does not change. A block that differs between pages stays inline.
   The file is written in ``on_post_build``, so ``mkdocs serve`` (which builds into a temporary
   folder) gets it too. A block is only moved when its CSS is self-contained (no open comment,
   bracket or string at its end): concatenated, it cannot swallow the next block's rules. A block
   that ends inside a rule's selector (mkdocs-jupyter prints one list of CSS with Python's
   ``repr``, which makes one invalid rule that the browser drops at the end of its ``<style>``) is
   closed with ``{}`` in the file, which drops it the same way.
2. The same template adds a module script that imports mermaid from cdnjs.cloudflare.com whenever
   a markdown cell has a mermaid diagram: a request outside the site (it fails offline, with an
   error in the console) for diagrams that material already renders with the vendored mermaid.
   It is removed.

tests/browser check both in a real browser: every page's own HTML (minus its ``data:`` images)
is under 250 KB, notebook cells keep their computed styles, and no page requests another host.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mkdocs.utils import get_relative_url

SHARED_DIR = "assets/stylesheets"
_STYLE = re.compile(r"[ \t]*<style(?P<attrs>[^>]*)>(?P<css>.*?)</style>[ \t]*\n?", re.S)
_ARTICLE = re.compile(r"<article\b.*</article>", re.S)
# nbconvert's JupyterLab mermaid loader (share/templates/lab/mermaid.html.j2): imports from a CDN.
_MERMAID_CDN = re.compile(
    r'<script type="module">(?:(?!</script>).)*?import\("https://cdnjs\.cloudflare\.com/ajax/libs/mermaid/'
    r".*?</script>\s*",
    re.S,
)

_pages: list[Path] = []  # this build pass's notebook pages (i18n runs one pass per language)


def _css_end_state(css: str) -> str | None:
    """How a stylesheet ends: "clean", "prelude" (inside a rule's selector), or None when it ends
    inside a comment or a bracket (it would swallow what follows it)."""
    depth, pending, i, n = 0, False, 0, len(css)
    while i < n:
        char = css[i]
        if css.startswith("/*", i):
            end = css.find("*/", i + 2)
            if end < 0:
                return None
            i = end + 2
            continue
        if char == "\\":
            i += 2
            pending = pending or depth == 0
            continue
        if char in "\"'":
            j = i + 1
            while j < n and css[j] not in (char, "\n"):
                j += 2 if css[j] == "\\" else 1
            i = j + 1
            pending = pending or depth == 0
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth < 0:
                return None
            if depth == 0 and char == "}":
                pending = False
        elif depth == 0 and char == ";":
            pending = False
        elif depth == 0 and not char.isspace():
            pending = True
        i += 1
    if depth:
        return None
    return "prelude" if pending else "clean"


def _blocks(html: str) -> list[re.Match]:
    """The shareable ``<style>`` blocks of a notebook page's article (no media-specific ones)."""
    article = _ARTICLE.search(html)
    if article is None:
        return []
    return [
        m
        for m in _STYLE.finditer(html, article.start(), article.end())
        if "media=" not in m.group("attrs") and _css_end_state(m.group("css")) is not None
    ]


def on_pre_build(config):
    _pages.clear()


def on_post_page(output, page, config):
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    _pages.append(Path(page.file.abs_dest_path))
    return _MERMAID_CDN.sub("", output)


def on_post_build(config):
    pages = {path: path.read_text(encoding="utf-8") for path in _pages if path.is_file()}
    _pages.clear()
    if not pages:
        return
    per_page = {path: [m.group("css") for m in _blocks(html)] for path, html in pages.items()}
    common = set.intersection(*(set(blocks) for blocks in per_page.values()))
    first = next(iter(per_page.values()))
    shared = list(dict.fromkeys(css for css in first if css in common))
    if not shared:
        return
    parts = ['@charset "UTF-8";']
    for css in shared:
        parts.append(css.strip())
        if _css_end_state(css) == "prelude":
            parts.append("{}")  # ends the dangling rule here, as the end of its <style> did
    text = "\n".join(parts) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    uri = f"{SHARED_DIR}/jupyter.{digest}.css"
    target = Path(config.site_dir) / uri
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    site = Path(config.site_dir)
    for path, html in pages.items():
        page_uri = path.relative_to(site).as_posix()
        href = get_relative_url(uri, page_uri)
        link = f'<link rel="stylesheet" href="{href}">\n'
        out, last, linked = [], 0, False
        for m in _blocks(html):
            if m.group("css") not in common:
                continue
            out.append(html[last : m.start()])
            if not linked:
                out.append(link)
                linked = True
            last = m.end()
        out.append(html[last:])
        path.write_text("".join(out), encoding="utf-8")
