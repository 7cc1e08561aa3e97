"""What the docs checks share: where things are, and how pages and notebooks are read."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SOURCES = ROOT / "notebooks"
NOTEBOOKS = DOCS / "notebooks"
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/([^/\s\"')]+)/([^/\s\"')]+)/blob/main/([^\s\"')#?]+)"
)


class _Loader(yaml.SafeLoader):
    """mkdocs.yml has python tags (slugify, fence format): keep them as plain values."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _env(loader, node):
    """``!ENV [NAME, default]`` as MkDocs reads it: the variable when it is set, else the default."""
    import os

    names = (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else [loader.construct_scalar(node)]
    )
    *variables, default = names if len(names) > 1 else [*names, None]
    return next((os.environ[v] for v in variables if v in os.environ), default)


_Loader.add_constructor("!ENV", _env)


def mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)


def repo_url() -> str:
    return mkdocs_config()["repo_url"].rstrip("/")


def language_of(path: Path) -> str:
    return path.suffixes[-2].lstrip(".")


def twin(path: Path, language: str) -> Path:
    """The same page or notebook in ``language``: ``a.ru.md`` -> ``a.en.md``."""
    return path.with_name(path.name.replace(f".{language_of(path)}.", f".{language}.", 1))


def url_path(src: Path) -> str:
    """The site path of the page built from ``src`` under docs/: ``en/chapters/x/`` ('' for home).

    Directory URLs; the default language at the root, the other one under its own folder.
    """
    relative = src.relative_to(DOCS)
    name = relative.name.split(".")[0]
    folder = relative.parent if name == "index" else relative.parent / name
    parts = [] if language_of(src) == DEFAULT_LANGUAGE else [language_of(src)]
    return "".join(f"{part}/" for part in [*parts, *folder.parts])


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if len(p.suffixes) >= 2 and p.suffixes[-2] in (".ru", ".en"))


def sources() -> list[Path]:
    return sorted(SOURCES.glob("*.py"))


def strip_fenced(markdown: str) -> str:
    """Markdown without fenced code blocks (a ``#`` there is no heading)."""
    return re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)


HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
ANCHOR = re.compile(r"\{\s*#([\w-]+)\s*\}$")


def headings(markdown: str) -> list[tuple[int, str]]:
    """(level, text) of every heading outside code fences."""
    return [(len(m.group(1)), m.group(2)) for m in HEADING.finditer(strip_fenced(markdown))]


def mermaid_count(markdown: str) -> int:
    return len(re.findall(r"^\s*```mermaid\s*$", markdown, flags=re.M))


def includes(markdown: str) -> list[str]:
    """Code included from the source (snippets) or rendered from docstrings (mkdocstrings)."""
    return re.findall(r"^\s*(--8<--.*|:::.*)$", markdown, flags=re.M)


STRING_TOKENS = {tokenize.STRING} | {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


def code_without_words(source: str) -> list[tuple[int, str]]:
    """The tokens of ``source`` with comments dropped and string literals blanked: what a
    translation may not change. A comma before a closing bracket is dropped too: the formatter
    adds one when a translated string makes the line longer (its "magic trailing comma")."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
    kept = []
    for token in tokens:
        if token.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if token.type in STRING_TOKENS:
            kept.append((token.type, "<str>"))
        else:
            kept.append((token.type, token.string))
    return [
        token
        for token, following in zip(kept, kept[1:] + [(None, "")])
        if not (token[1] == "," and following[1] in ")]}")
    ]


def read_source(path: Path):
    return jupytext.read(path, fmt="py:percent")


def read_notebook(path: Path):
    return nbformat.read(path, as_version=4)


def russian(count: int, one: str, few: str, many: str) -> str:
    """The noun's form after a Russian numeral: 1 формула, 2 формулы, 5 формул, 11 формул."""
    if count % 10 == 1 and count % 100 != 11:
        return one
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return few
    return many
