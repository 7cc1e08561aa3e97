"""Light notebook pages: nbconvert's CSS is shared, not inlined in every page, and holds only the
rules the notebook pages use.

Why this hook exists (mkdocs-jupyter has no option for either):

1. nbconvert's template (through mkdocs-jupyter) inlines about 590 KB of CSS (JupyterLab's whole
   theme, the Pygments colours, the mermaid rules) as ``<style>`` blocks into every notebook page:
   render-blocking, downloaded again with each notebook, and most of it styles JupyterLab's own
   interface (toolbars, dialogs, file browser), which a page never shows. Here the ``<style>``
   blocks that every notebook page of a language has in common are parsed with tinycss2 and
   written, pruned, into ONE stylesheet, ``assets/stylesheets/jupyter.<hash>.css`` (named by its
   content, so a cached copy is never stale); each page links it at the place of its first block,
   so the cascade order does not change. A block that differs between pages stays inline.
   Pruning keeps a rule when each class its selector names appears in some notebook page (a
   selector whose classes are absent can match nothing on these static pages), every at-rule
   with what it still holds, and the custom properties that kept declarations use (transitively).
   One kind of rule is dropped although it matches: JupyterLab's ``::selection`` colour. With a
   ``::selection`` rule in a stylesheet Chromium works out the selection style of every element
   at each style recalculation: put back into notebook 05, the rule makes its style work 1.4
   times as long on a slowed phone (``scripts/style_cost.py --add``, which prints the command's
   numbers; docs/benchmark.*.md). Selected text keeps the browser's own colour.
   What tinycss2 cannot parse is dropped, as the browser drops it (mkdocs-jupyter prints one list
   of CSS with Python's ``repr``, which makes one invalid rule at the end of its block).
   The file is written in ``on_post_build``, so ``mkdocs serve`` gets it too.
2. Pygments wraps every token of the code cells in a ``<span class="…">``, also the tokens no
   stylesheet colours (names, ``n``, are a third of them): on notebook 05 that was 2,100 spans,
   most of the page's elements, and every one costs style work on each recalculation (a phone
   pays for it at load). A span whose class no rule of the page's stylesheets (the shared one
   above, the site's ``extra_css``, the blocks left inline) names looks exactly like its text, so
   it is replaced by its text. nbconvert's highlighting has no option for this (mkdocs-jupyter
   passes none through), hence a regular expression over Pygments' flat, regular output, inside
   the notebooks' ``<div class="highlight-ipynb">`` blocks only. tests/browser checks in Chromium
   that a span of each class removed would look like its text.
3. The same template adds a module script that imports mermaid from cdnjs.cloudflare.com whenever
   a markdown cell has a mermaid diagram: a request outside the site; the diagrams are drawn ahead
   of time (hooks/diagrams.py). It is removed.

tests/browser check both in a real browser: every page's own HTML
is under budget, notebook cells keep their computed styles, and no page requests another host.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import tinycss2
from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url

try:  # a module of the repository (tests, scripts, `python -m mkdocs` from its root)
    from hooks.palette_css import split_selectors
except ModuleNotFoundError:  # as mkdocs loads a hook: with the hooks' folder on sys.path
    from palette_css import split_selectors

SHARED_DIR = "assets/stylesheets"
_STYLE = re.compile(r"[ \t]*<style(?P<attrs>[^>]*)>(?P<css>.*?)</style>[ \t]*\n?", re.S)
_ARTICLE = re.compile(r"<article\b.*</article>", re.S)
_CLASS_ATTR = re.compile(r'\bclass="([^"]*)"')
# nbconvert's JupyterLab mermaid loader (share/templates/lab/mermaid.html.j2): imports from a CDN.
_MERMAID_CDN = re.compile(
    r'<script type="module">(?:(?!</script>).)*?import\("https://cdnjs\.cloudflare\.com/ajax/libs/mermaid/'
    r".*?</script>\s*",
    re.S,
)

# A code block of a notebook cell (its <pre> carries the id of the cell's copy button,
# hooks/notebook_pages.py), and a Pygments token span inside it (flat: text only).
_CODE_BLOCK = re.compile(r'(<div class="highlight-ipynb[^"]*">\s*<pre(?: id="[^"]*")?>)(.*?)(</pre>)', re.S)
_TOKEN_SPAN = re.compile(r'<span(?: class="([\w -]*)")?>([^<]*)</span>')
_CLASS_NAME = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")

_pages: list[Path] = []  # this build pass's notebook pages (i18n runs one pass per language)


def _blocks(html: str) -> list[re.Match]:
    """The shareable ``<style>`` blocks of a notebook page's article (no media-specific ones)."""
    article = _ARTICLE.search(html)
    if article is None:
        return []
    return [
        m for m in _STYLE.finditer(html, article.start(), article.end()) if "media=" not in m.group("attrs")
    ]


# Pruning -----------------------------------------------------------------------------------------
def _classes(selector: list) -> set[str]:
    """The classes a selector requires (outside functions such as ``:not()``)."""
    found, previous = set(), None
    for token in selector:
        if (
            token.type == "ident"
            and previous is not None
            and previous.type == "literal"
            and previous.value == "."
        ):
            found.add(token.value)
        previous = token
    return found


def _costly(selector: list) -> bool:
    """A selector for the selection highlight (``::selection``, ``::-moz-selection``)."""
    return any(
        token.type == "ident"
        and token.lower_value in ("selection", "-moz-selection")
        and previous.type == "literal"
        and previous.value == ":"
        for previous, token in zip(selector, selector[1:])
    )


def _prune_rules(rules: list, used: set[str]) -> list[tuple]:
    """The rules that can match the pages: ``("rule", selectors, rule)``, ``("at", at-rule, its
    kept rules)`` for a conditional at-rule that still holds some, ``("raw", at-rule)`` for others."""
    kept: list[tuple] = []
    for rule in rules:
        if rule.type == "qualified-rule":
            selectors = [s for s in split_selectors(rule.prelude) if _classes(s) <= used and not _costly(s)]
            if selectors:
                kept.append(("rule", ",".join(tinycss2.serialize(s).strip() for s in selectors), rule))
        elif rule.type == "at-rule":
            name = rule.lower_at_keyword
            if name == "charset":
                continue
            if name in ("media", "supports", "layer", "container") and rule.content is not None:
                inner = _prune_rules(tinycss2.parse_rule_list(rule.content, True, True), used)
                if inner:
                    kept.append(("at", rule, inner))
            else:
                kept.append(("raw", rule))
    return kept


_VAR = re.compile(r"var\(\s*(--[\w-]+)")


def _declarations(rule) -> list:
    return [d for d in tinycss2.parse_blocks_contents(rule.content, True, True) if d.type == "declaration"]


def _walk(kept: list[tuple]):
    for item in kept:
        if item[0] == "at":
            yield from _walk(item[2])
        elif item[0] == "rule":
            yield item[2]


def _serialize(kept: list[tuple], wanted_vars: set[str]) -> list[str]:
    out = []
    for item in kept:
        if item[0] == "at":
            body = "".join(_serialize(item[2], wanted_vars))
            if body:
                out.append(f"@{item[1].at_keyword}{tinycss2.serialize(item[1].prelude)}{{{body}}}")
        elif item[0] == "rule":
            declarations = [
                f"{d.name}:{tinycss2.serialize(d.value).strip()}{'!important' if d.important else ''}"
                for d in _declarations(item[2])
                if not d.name.startswith("--") or d.name in wanted_vars
            ]
            if declarations:
                out.append(f"{item[1]}{{{';'.join(declarations)}}}")
        else:
            out.append(tinycss2.serialize([item[1]]))
    return out


def prune(css: str, used: set[str]) -> str:
    """The part of ``css`` that can style pages whose elements carry only the classes ``used``."""
    kept = _prune_rules(tinycss2.parse_stylesheet(css, True, True), used)
    declared: dict[str, list[str]] = {}
    wanted: set[str] = set()
    for rule in _walk(kept):
        for d in _declarations(rule):
            value = tinycss2.serialize(d.value)
            if d.name.startswith("--"):
                declared.setdefault(d.name, []).append(value)
            else:
                wanted.update(_VAR.findall(value))
    todo = list(wanted)
    while todo:  # custom properties used by the custom properties in use
        for value in declared.get(todo.pop(), []):
            for name in _VAR.findall(value):
                if name not in wanted:
                    wanted.add(name)
                    todo.append(name)
    return "\n".join(_serialize(kept, wanted))


# Token spans -----------------------------------------------------------------------------------
def named_classes(*stylesheets: str) -> set[str]:
    """Every class a selector of these stylesheets names (more than match: a safe superset)."""
    return {name for css in stylesheets for name in _CLASS_NAME.findall(css)}


def unwrap_unstyled_tokens(html: str, styled: set[str]) -> str:
    """``html`` with the token spans of its notebook code blocks whose classes are all outside
    ``styled`` replaced by their text (the text stays escaped as it was)."""

    def block(match: re.Match) -> str:
        def token(span: re.Match) -> str:
            classes = (span.group(1) or "").split()
            return span.group(0) if any(c in styled for c in classes) else span.group(2)

        return match.group(1) + _TOKEN_SPAN.sub(token, match.group(2)) + match.group(3)

    return _CODE_BLOCK.sub(block, html)


# The hooks -----------------------------------------------------------------------------------
def on_pre_build(config):
    _pages.clear()


def on_post_page(output, page, config):
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    _pages.append(Path(page.file.abs_dest_path))
    return _MERMAID_CDN.sub("", output)


def _stylesheet(config, uri: str) -> str:
    """An ``extra_css`` stylesheet's text (as built, or from docs/ when a plugin writes it later)."""
    for folder in (config.site_dir, config.docs_dir):
        path = Path(folder, uri)
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise PluginError(f"hooks/notebook_css.py: extra_css {uri!r} is neither in the site nor in docs/")


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
    used = {name for html in pages.values() for attr in _CLASS_ATTR.findall(html) for name in attr.split()}
    text = '@charset "UTF-8";\n' + prune("\n".join(shared), used) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    uri = f"{SHARED_DIR}/jupyter.{digest}.css"
    target = Path(config.site_dir) / uri
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    site = Path(config.site_dir)
    extra = [_stylesheet(config, str(entry)) for entry in config.extra_css]
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
        html = "".join(out)
        inline = [m.group("css") for m in _STYLE.finditer(html)]
        html = unwrap_unstyled_tokens(html, named_classes(text, *extra, *inline))
        path.write_text(html, encoding="utf-8")
