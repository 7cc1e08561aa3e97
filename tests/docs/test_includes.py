"""Code on the pages is included from the real source, and the README's example runs."""

from __future__ import annotations

import re

import pytest

from .helpers import DOCS, ROOT, pages

SNIPPET = re.compile(r'^\s*--8<--\s+"([^":]+)(?::([\w-]+))?"\s*$', re.M)


def _snippets():
    return sorted(
        {m.groups() for page in pages() for m in SNIPPET.finditer(page.read_text(encoding="utf-8"))}
    )


@pytest.mark.parametrize("path, section", _snippets(), ids=lambda v: str(v))
def test_every_included_section_exists(path, section):
    source = ROOT / path
    assert source.is_file(), f"included file {path} does not exist"
    if section is not None:
        text = source.read_text(encoding="utf-8")
        for edge in ("start", "end"):
            assert f"--8<-- [{edge}:{section}]" in text, f"{path} has no [{edge}:{section}] marker"


def test_pages_paste_no_package_code():
    """A ```python block on a page is either an include or not a copy of package code."""
    package = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "simple_llm").glob("*.py"))
    for page in pages():
        for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            lines = [
                line.strip()
                for line in block.splitlines()
                if line.strip() and not line.strip().startswith(("--8<--", "#"))
            ]
            pasted = [line for line in lines if len(line) > 25 and line in package]
            assert not pasted, (
                f"{page.relative_to(DOCS)} pastes package code instead of including it: {pasted[:2]}"
            )


@pytest.mark.parametrize("number", range(2))
def test_readme_python_examples_run(number):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2, "the README has one Python example per language"
    exec(compile(blocks[number], f"README.md example {number + 1}", "exec"), {})
