"""Every package name a page or a notebook cites in backticks exists in the package.

A page that goes on describing a function after it was renamed (chapter 2 described
`causal_mask` long after the package had `combine_masks`) goes stale silently: the includes still
build and the prose still reads well. Here every backticked span in the prose of
the pages and in the markdown cells of the notebook sources that reads as code (``name``,
``name(…)``, ``obj.attr``, ``simple_llm.name``, ``from simple_llm.x import Name``) is checked:

- a span that starts with ``simple_llm`` must resolve, module by module and attribute by
  attribute, in the installed package;
- in any other span every dotted part must be a name someone defines: the package (a module, a
  class, a function, an attribute, a parameter, or a name its strings and docstrings document,
  such as the original project's state-dict keys it maps), the code of the chapter's own notebook
  (its variables, the attributes and keyword arguments it uses), Python, or PyTorch. Spans that
  start with ``torch``, ``nn`` or ``F`` are PyTorch's and are left to PyTorch.

So a variable shown in the notebook (`mha`, `T_k`), a parameter (`emb_size`) or a PyTorch name
(`torch.softmax`, `dropout_p`) passes, and a package name that exists nowhere fails.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import keyword
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from .helpers import DOCS, ROOT, SOURCES, pages, read_source, sources, strip_fenced

PACKAGE = ROOT / "simple_llm"
SPAN = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*)(?:\(.*\))?")
FROM_IMPORT = re.compile(r"from\s+(simple_llm(?:\.[A-Za-z_]\w*)*)\s+import\s+([A-Za-z_]\w*)")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FILE_NAME = re.compile(r"\.(css|js|py|md|ipynb|html|json|tsv|yml|toml|txt)$")
COMMIT = re.compile(r"(?=[0-9a-f]*\d)[0-9a-f]{7,40}")  # a git commit, as the benchmark page names one
PYTORCH_HEADS = {"torch", "nn", "F"}
# Words in backticks that are neither Python nor a name of this package, each with its reason.
NOT_CODE = {
    "NaN": "a value as PyTorch prints it",
    "lighthouse": "the command-line tool the benchmark page runs",
    "computeMedianRun": "Lighthouse's own JavaScript function, named on the benchmark page",
    "defer": "the HTML attribute of a script tag, named on the benchmark page",
}


def _names_in(tree: ast.AST) -> set[str]:
    """Every name ``tree`` binds, reads, calls with, or passes as a keyword."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.update(IDENTIFIER.findall(node.asname or node.name))
    return found


def _documented_in(tree: ast.AST) -> set[str]:
    """Names the package's strings spell out: ``double-backticked`` names in docstrings, and the
    identifier parts of strings without spaces (state-dict keys such as ``"_layer1."``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            for quoted in re.findall(r"``([^`]+)``", text):
                found.update(IDENTIFIER.findall(quoted))
            if not re.search(r"\s", text):
                found.update(IDENTIFIER.findall(text))
    return found


@cache
def package_names() -> frozenset[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= _names_in(tree) | _documented_in(tree)
        found.update(path.relative_to(ROOT).with_suffix("").parts)  # simple_llm, transformer, gpt, ...
    return frozenset(found - {"__init__"})


def _signature_names(obj) -> set[str]:
    try:
        return set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: read the first docstring line
        first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
        return set(re.findall(r"(\w+)\s*=", first[0])) if first else set()


@cache
def outside_names() -> frozenset[str]:
    """Python's and PyTorch's names, with the parameters of PyTorch's functions and modules."""
    found = set(dir(builtins)) | set(keyword.kwlist) | set(sys.stdlib_module_names)
    for namespace in (torch, nn, F, torch.Tensor, nn.Module):
        found |= set(dir(namespace))
    for namespace in (nn, F):
        for name in dir(namespace):
            obj = getattr(namespace, name)
            if callable(obj):
                found |= _signature_names(obj)
                if inspect.isclass(obj):
                    found |= _signature_names(obj.__init__)
    return frozenset(found)


def _notebook_code_names(path: Path) -> set[str]:
    found = set()
    for cell in read_source(path).cells:
        if cell.cell_type == "code":
            lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            found |= _names_in(ast.parse("\n".join(lines)))
    return found


def _chapter_notebooks(page: Path) -> list[Path]:
    """The notebook sources of a chapter page (``02-one-head.ru.md`` -> ``02_*.ru.py``)."""
    number = re.match(r"(\d+)-", page.name)
    if page.parent != DOCS / "chapters" or not number:
        return []
    return sorted(SOURCES.glob(f"{number.group(1)}_*.{page.suffixes[-2].lstrip('.')}.py"))


def _resolves(dotted: str) -> bool:
    """``simple_llm.a.b``: import the longest module prefix, then look up the attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def _unknown_citations(prose: str, local: set[str]) -> list[str]:
    known = package_names() | outside_names() | local | set(NOT_CODE)
    unknown = []
    for span in SPAN.findall(prose):
        span = span.strip()
        imported = FROM_IMPORT.fullmatch(span)
        if imported:
            if not _resolves(f"{imported.group(1)}.{imported.group(2)}"):
                unknown.append(span)
            continue
        match = DOTTED.fullmatch(span)
        if not match or FILE_NAME.search(match.group(1)) or COMMIT.fullmatch(span):
            continue
        parts = match.group(1).split(".")
        if parts[0] == "simple_llm":
            if not _resolves(match.group(1)):
                unknown.append(span)
        elif parts[0] not in PYTORCH_HEADS and any(part not in known for part in parts):
            unknown.append(span)
    return sorted(set(unknown))


def _documents():
    for page in pages():
        local = set().union(*(_notebook_code_names(p) for p in _chapter_notebooks(page)))
        yield pytest.param(page, local, id=str(page.relative_to(DOCS)))
    for source in sources():
        yield pytest.param(source, _notebook_code_names(source), id=source.name)


@pytest.mark.parametrize("path, local", _documents())
def test_cited_names_exist(path, local):
    if path.suffix == ".py":
        prose = "\n".join(c.source for c in read_source(path).cells if c.cell_type == "markdown")
    else:
        prose = path.read_text(encoding="utf-8")
    unknown = _unknown_citations(strip_fenced(prose), local)
    assert not unknown, (
        f"{path.name} cites names that the package, the chapter's notebook, Python and PyTorch "
        f"do not define: {unknown}"
    )


@pytest.mark.parametrize(
    "prose, flagged",
    [
        ("`lower_triangle_mask` builds the causal mask", ["lower_triangle_mask"]),
        ("`simple_llm.causal_mask(T)`", ["simple_llm.causal_mask(T)"]),
        ("`from simple_llm.transformer import Attention`", ["from simple_llm.transformer import Attention"]),
        ("`simple_llm.masks.combine_masks`, `combine_masks(mask, B, T, H, device)`", []),
        ("`torch.softmax`, `F.scaled_dot_product_attention(q, k, v)`, `dropout_p`, `emb_size`", []),
        ("`mha.qkv.weight`, `from simple_llm.transformer import MultiHeadAttention`, `palette.css`", []),
        ("measured at commit `a0aa9a3`; `decade` is a word", ["decade"]),
    ],
)
def test_the_check_tells_a_missing_name_from_a_real_one(prose, flagged):
    assert _unknown_citations(prose, local={"mha"}) == flagged
