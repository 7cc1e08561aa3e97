"""The executed notebooks are the build product of notebooks/*.py and hold nothing volatile."""

from __future__ import annotations

import difflib
import re

import pytest

from .helpers import NOTEBOOKS, ROOT, SOURCES, read_notebook, read_source, repo_url, sources

SOURCE_FILES = sources()


def _cells(nb):
    return [f"--- {cell.cell_type}\n{cell.source.strip()}" for cell in nb.cells]


@pytest.mark.parametrize("source", SOURCE_FILES, ids=lambda p: p.name)
def test_notebook_matches_its_source(source):
    notebook = NOTEBOOKS / f"{source.stem}.ipynb"
    assert notebook.is_file(), f"{source.name} was never built: run `make notebooks`"
    expected, stored = _cells(read_source(source)), _cells(read_notebook(notebook))
    diff = "\n".join(
        difflib.unified_diff(
            expected, stored, str(source.relative_to(ROOT)), str(notebook.relative_to(ROOT)), lineterm=""
        )
    )
    assert not diff, f"the notebook is stale, run `make notebooks`:\n{diff}"


def test_every_notebook_has_a_source():
    orphans = [p.name for p in NOTEBOOKS.glob("*.ipynb") if not (SOURCES / f"{p.stem}.py").is_file()]
    assert not orphans, f"notebooks without a source in notebooks/: {orphans}"


VOLATILE = {
    "an absolute path": re.compile(r"(/work/|/home/|/root/|/tmp/|/usr/|/opt/|[A-Z]:\\\\)"),
    "a memory address": re.compile(r"0x[0-9a-fA-F]{6,}"),
    "a user name": re.compile(r"\b(root|runner)@"),
}


@pytest.mark.parametrize("source", SOURCE_FILES, ids=lambda p: p.name)
def test_stored_outputs_are_executed_and_quiet(source):
    nb = read_notebook(NOTEBOOKS / f"{source.stem}.ipynb")
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, f"noisy metadata: {sorted(nb.metadata)}"
    for number, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, f"cell {number} stores timings"
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {number} was never executed"
        for output in cell.outputs:
            assert output.output_type != "error", f"cell {number} stores an error: {output.get('ename')}"
            text = output.get("text", "") + "".join(
                value for key, value in output.get("data", {}).items() if key.startswith("text/")
            )
            for what, pattern in VOLATILE.items():
                assert not pattern.search(text), (
                    f"cell {number} output holds {what}: {pattern.search(text).group(0)!r}"
                )


@pytest.mark.parametrize("source", SOURCE_FILES, ids=lambda p: p.name)
def test_first_code_cell_installs_simple_llm_from_this_repository(source):
    code = [cell.source for cell in read_source(source).cells if cell.cell_type == "code"]
    assert code, f"{source.name} has no code"
    first = code[0]
    assert 'find_spec("simple_llm")' in first, (
        "the first code cell must check whether simple_llm is installed"
    )
    assert f"git+{repo_url()}" in first, f"the install cell must install from repo_url ({repo_url()})"
