"""Notebook pages that work in both languages.

Why this hook exists (each fix is silent when it is missing, so tests/docs check the built HTML):

1. mkdocs-static-i18n re-creates every ``File`` after mkdocs-jupyter has wrapped the notebooks
   (ultrabug/mkdocs-static-i18n#198), so a notebook is copied as raw JSON, drops out of the nav,
   and ``mkdocs build --strict`` stays green. Here every ``.ipynb`` counts as a documentation page
   for MkDocs itself, whoever creates its ``File``.
2. mkdocs-jupyter slugifies headings to ASCII: Cyrillic headings get empty ids and the page's
   table of contents links nowhere (and its TOC, made from a separate Markdown pass, drops inline
   code from a heading's id). Here headings get Unicode ids, and the TOC is read from the ids the
   page really has.
3. nbconvert's template loads MathJax from an empty URL: removed (formulas are Unicode).
4. Every notebook page gets "Open in Colab" (built from the one ``repo_url``) and a download link
   for the notebook of the page's own language.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from xml.etree import ElementTree

import mkdocs_jupyter.convert
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
    link = ElementTree.SubElement(heading, "a", {"class": "anchor-link", "href": f"#{slug}"})
    link.text = anchor_link_text
    return ElementTree.tostring(heading, encoding="unicode")


mkdocs_jupyter.convert.add_anchor_lower_id = _heading_with_id


_HEADING = re.compile(r'<h([1-6]) id="([^"]+)">(.*?)<a class="anchor-link"', re.S)
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
    return links + MATHJAX.sub("", html)


# nbconvert's template loads MathJax from an empty URL (the pages use no LaTeX: formulas are
# written in Unicode and code), which would be a request that fails.
MATHJAX = re.compile(r'<script src="">\s*</script>|<script type="text/x-mathjax-config">.*?</script>', re.S)
