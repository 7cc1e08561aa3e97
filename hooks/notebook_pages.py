"""Notebook pages that work in both languages.

Why this hook exists (each fix is silent when it is missing, so tests/docs check the built HTML):

1. mkdocs-static-i18n re-creates every ``File`` after mkdocs-jupyter has wrapped the notebooks
   (ultrabug/mkdocs-static-i18n#198), so a notebook is copied as raw JSON, drops out of the nav,
   and ``mkdocs build --strict`` stays green. Here every ``.ipynb`` counts as a documentation page
   for MkDocs itself, whoever creates its ``File``.
2. mkdocs-jupyter slugifies headings to ASCII: Cyrillic headings get empty ids and the page's
   table of contents links nowhere (and its TOC, made from a separate Markdown pass, drops inline
   code from a heading's id). Here headings get Unicode ids, and the TOC is read from the ids the
   page really has. Their permalink is material's ``headerlink``: styled like every other page's,
   and left out of the search index (nbconvert's "¶" was indexed as text).
3. nbconvert's template loads MathJax from an empty URL: removed. The markdown cells' TeX is
   typeset at build time by hooks/formulas.py, with the chapters' renderer.
4. Every notebook page gets "Open in Colab" (built from the one ``repo_url``) and a download link
   for the notebook of the page's own language.
5. nbconvert gives every figure the alt text "No description has been provided for this image".
   Here each figure says what it shows, in the page's language: the title its cell gives it
   (``title="..."`` or ``suptitle("...")``), and for ``plot_attention_heads`` what kind of plot it
   is; a figure without a title is described by the markdown cell before it (its first sentence).
   nbconvert reads alt text only from output metadata, which matplotlib's inline backend never
   writes.
6. nbconvert puts every figure into the page as a base64 ``data:`` URL, so the page's HTML carries
   all its figures before a line of it can be shown, and base64 hardly compresses (notebook 05's
   HTML weighed 103 KB with gzip, about 80 KB of it its two figures; 23 KB without them). Here
   each figure is written next to the page as a file named by its content, loaded lazily, and
   given its width and height so that nothing moves when it arrives.
7. Speed (half of a site build went here; the output is the same):
   - nbconvert validates the notebook after every preprocessor with ``relax_add_props=True``, and
     nbformat 5.10 compiles a new fastjsonschema validator for every such call (its cache is
     bypassed when the properties are relaxed): about 720 compilations, 35 s of a 95 s build. Here
     the relaxed validator is compiled once per notebook format version.
   - mkdocs-jupyter converts every notebook a second time, to Markdown, only for its table of
     contents and title (20 s). Fix 2 reads the table of contents from the HTML anyway, so here
     the title is read from the notebook's markdown cells alone, the same Markdown pass
     mkdocs-jupyter makes, without nbconvert.
8. nbconvert writes every code cell twice: highlighted, and again as plain text in a hidden
   ``clipboard-copy-txt`` element that the cell's copy button copies. The page carries its code
   twice and so does the site's search index, which every first visit loads (234 KB of a 453 KB
   first visit with gzip once chapter 14 came). Here the hidden copy goes and the button copies
   the highlighted code itself (its ``textContent`` is the same text).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from html import escape
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import markdown
import mkdocs_jupyter.convert
import mkdocs_jupyter.plugin
import nbformat
import nbformat.validator
from markdown.extensions.toc import slugify_unicode
from mkdocs.structure.files import File
from mkdocs.structure.toc import get_toc

# 1. Notebooks are documentation pages -------------------------------------------------------
_is_markdown_page = File.is_documentation_page


def _is_documentation_page(self: File) -> bool:
    return self.src_uri.endswith(".ipynb") or _is_markdown_page(self)


File.is_documentation_page = _is_documentation_page


# 2. One Unicode slugify for notebook heading ids and their table of contents -------------------
def _slugify(value: str) -> str:
    return slugify_unicode(value, "-")


def _heading_with_id(html: str, anchor_link_text: str = "¶") -> str:
    """A notebook heading with a Unicode id (nbconvert would percent-encode it)."""
    try:
        heading = ElementTree.fromstring(html)
    except ElementTree.ParseError:
        return html
    slug = _slugify("".join(heading.itertext()))
    heading.set("id", slug)
    link = ElementTree.SubElement(heading, "a", {"class": "headerlink", "href": f"#{slug}"})
    link.text = anchor_link_text
    return ElementTree.tostring(heading, encoding="unicode")


mkdocs_jupyter.convert.add_anchor_lower_id = _heading_with_id


_HEADING = re.compile(r'<h([1-6]) id="([^"]+)">(.*?)<a class="headerlink"', re.S)
_TAG = re.compile(r"<[^>]+>")


def _toc_tokens(html: str) -> list[dict]:
    """The table of contents of a rendered notebook, nested by heading level."""
    root: list[dict] = []
    stack: list[dict] = []
    for level, slug, inner in _HEADING.findall(html):
        token = {"level": int(level), "id": slug, "name": _TAG.sub("", inner).strip(), "children": []}
        while stack and stack[-1]["level"] >= token["level"]:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return root


# 7. Speed: one relaxed validator per notebook format, no second conversion for the title --------
_get_validator = nbformat.validator.get_validator
_relaxed_validators: dict[tuple, object] = {}


def _get_validator_once(version=None, version_minor=None, relax_add_props=False, name=None):
    if not relax_add_props:
        return _get_validator(version, version_minor, relax_add_props, name)
    key = (version, version_minor, name)
    if key not in _relaxed_validators:
        _relaxed_validators[key] = _get_validator(version, version_minor, True, name)
    return _relaxed_validators[key]


nbformat.validator.get_validator = _get_validator_once


def _toc_tokens_and_title(path: str, toc_depth: int) -> tuple[list[dict], str | None]:
    """The title mkdocs-jupyter would find (the first level-1 heading of the markdown cells); the
    table of contents is left empty because ``on_page_content`` reads it from the page."""
    notebook = nbformat.read(path, as_version=4)
    text = "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    md = markdown.Markdown(extensions=["toc"])
    md.convert(text)
    title = next((token["name"] for token in md.toc_tokens if token["level"] == 1), None)
    return [], title


mkdocs_jupyter.plugin._get_nb_toc_tokens = _toc_tokens_and_title


# 8. Each code cell once: the copy button copies the highlighted code --------------------------
_CODE_TWICE = re.compile(
    r'(<div class="highlight-ipynb[^"]*"><pre)(>.*?</pre>\s*</div>)\s*'
    r'<div class="clipboard-copy-txt" id="([^"]+)">.*?</div>',
    re.S,
)


def code_once(html: str) -> str:
    """The cells' code without its hidden plain-text copy; the ``<pre>`` takes that copy's id."""
    return _CODE_TWICE.sub(lambda m: f'{m.group(1)} id="{m.group(3)}"{m.group(2)}', html)


# 4. Open in Colab and download links ----------------------------------------------------------
LINK_TEXT = {
    "ru": ("Открыть в Colab", "Скачать блокнот (.ipynb)"),
    "en": ("Open in Colab", "Download the notebook (.ipynb)"),
}
NOTEBOOK_LANGUAGE = re.compile(r"\.(ru|en)\.ipynb$")


def colab_url(repo_url: str, repo_path: str) -> str:
    """The Colab address of ``repo_path`` (relative to the repository root) on branch main."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)/?", repo_url or "")
    if match is None:
        raise ValueError(f"repo_url must be https://github.com/OWNER/REPO, got {repo_url!r}")
    owner, repo = match.groups()
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/{repo_path}"


def on_page_content(html, page, config, files):
    src = page.file.src_uri
    if not src.endswith(".ipynb"):
        return html
    match = NOTEBOOK_LANGUAGE.search(src)
    if match is None:
        raise ValueError(f"notebook {src} must be named NAME.ru.ipynb or NAME.en.ipynb")
    page.toc = get_toc(_toc_tokens(html))
    html = code_once(html)
    open_text, download_text = LINK_TEXT[match.group(1)]
    repo_path = f"{PurePosixPath(config['docs_dir']).name}/{src}"
    name = PurePosixPath(src).name
    links = (
        '<p class="notebook-links">'
        f'<a class="md-button md-button--primary" data-colab href="{colab_url(config["repo_url"], repo_path)}">'
        f"{open_text}</a> "
        f'<a class="md-button" data-download href="{name}" download>{download_text}</a>'
        "</p>"
    )
    html = MATHJAX.sub("", html)
    # mkdocs-jupyter's copy button holds a hidden "Copied!": material's search skips what is marked.
    html = html.replace(
        '<span class="notice" hidden="">', '<span class="notice" hidden="" data-search-exclude="">'
    )
    alts = iter(figure_alts(Path(page.file.abs_src_path), match.group(1)))
    html = _NO_ALT.sub(lambda m: f'alt="{escape(next(alts, ""), quote=True)}"', html)
    folder = Path(config["site_dir"]) / PurePosixPath(page.file.dest_uri).parent
    return links + figures_as_files(html, folder)


# 6. Figures as files beside the page ------------------------------------------------------------
_DATA_IMAGE = re.compile(
    r'<img\b(?P<before>[^>]*?)\ssrc="data:image/(?P<type>[a-z+]+);base64,(?P<data>[^"]*)"(?P<after>[^>]*?)\s*/?>'
)
IMAGE_SUFFIX = {"png": "png", "jpeg": "jpg", "gif": "gif", "webp": "webp", "svg+xml": "svg"}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError(f"not a PNG: it starts with {data[:16]!r}")
    return struct.unpack(">II", data[16:24])


def figures_as_files(html: str, folder: Path) -> str:
    """``html`` with each ``data:`` image written into ``folder`` and linked by its file name
    (``figure-<sha256 prefix>.<suffix>``), loaded lazily, PNGs with their width and height."""

    def to_file(match: re.Match) -> str:
        kind = match.group("type")
        if kind not in IMAGE_SUFFIX:
            raise ValueError(
                f"a notebook figure of type image/{kind}: expected one of {sorted(IMAGE_SUFFIX)}"
            )
        data = base64.b64decode(match.group("data"), validate=False)
        name = f"figure-{hashlib.sha256(data).hexdigest()[:16]}.{IMAGE_SUFFIX[kind]}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        attributes = match.group("before") + match.group("after")
        if kind == "png" and not re.search(r"\s(width|height)=", attributes):
            width, height = png_size(data)
            attributes += f' width="{width}" height="{height}"'
        return f'<img{attributes} src="{name}" loading="lazy" decoding="async">'

    return _DATA_IMAGE.sub(to_file, html)


# 5. Alt text of the figures --------------------------------------------------------------------
_NO_ALT = re.compile(r'alt="No description has been provided for this image"')
_TITLE = re.compile(r"""(?:\bsuptitle\(|\btitle=)\s*(?P<q>["'])(?P<title>.+?)(?P=q)""")
HEATMAPS = {
    "ru": "Тепловые карты весов внимания, по одной на голову (строки — запросы, столбцы — ключи)",
    "en": "Heatmaps of attention weights, one per head (rows are queries, columns are keys)",
}


def _first_sentence(markdown: str) -> str:
    text = re.sub(r"[`*_#>\[\]]|\(\S+?\)", "", markdown)
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).strip()


def figure_alts(notebook: Path, language: str) -> list[str]:
    """The alt text of each figure of ``notebook``, in the order nbconvert writes them."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    alts, caption = [], ""
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            caption = _first_sentence(source)
            continue
        if cell["cell_type"] != "code":
            continue
        figures = sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
        title = _TITLE.search(source)
        alt = title.group("title") if title else caption
        if "plot_attention_heads" in source:
            alt = f"{alt}. {HEATMAPS[language]}" if alt else HEATMAPS[language]
        alts += [alt] * figures
    return alts


# nbconvert's template loads MathJax from an empty URL, which would be a request that fails; the
# formulas are typeset when the site is built (hooks/formulas.py), so no math script is needed.
MATHJAX = re.compile(r'<script src="">\s*</script>|<script type="text/x-mathjax-config">.*?</script>', re.S)
