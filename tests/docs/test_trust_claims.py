"""The "tested against PyTorch" claim on the landing page, the README and the package docstring
says how many shapes are tested and in which dtypes: those numbers must be what the tests run."""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest

import simple_llm

from .helpers import DOCS, ROOT


def interop_tests():
    spec = importlib.util.spec_from_file_location("interop_for_claims", ROOT / "tests" / "test_interop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dtypes_of(test_name: str) -> set[str]:
    """Dtype names in the ``@pytest.mark.parametrize("dtype", [...])`` of one test function."""
    tree = ast.parse((ROOT / "tests" / "test_interop.py").read_text(encoding="utf-8"))
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == test_name)
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.literal_eval(decorator.args[0]) == "dtype":
            return {element.attr for element in decorator.args[1].elts}
    return set()


TEXTS = {
    "index.ru.md": (DOCS / "index.ru.md").read_text(encoding="utf-8"),
    "index.en.md": (DOCS / "index.en.md").read_text(encoding="utf-8"),
    "README.md": (ROOT / "README.md").read_text(encoding="utf-8"),
    "simple_llm docstring": simple_llm.__doc__,
}


@pytest.mark.parametrize("name", TEXTS)
def test_quoted_shape_count_and_dtypes_are_what_the_tests_run(name):
    text = TEXTS[name]
    shapes = len(interop_tests().sweep())
    quoted = re.findall(r"(\d+) (?:shapes|форм\w*)", text)
    assert quoted == [str(shapes)] * len(quoted) and quoted, f"{name} quotes {quoted}, the tests run {shapes}"
    assert dtypes_of("test_equals_torch_mha_and_sdpa") == {"float32", "float64"}
    assert "float32" in text and "float64" in text
    assert not re.search(r"proven|доказан", text, flags=re.IGNORECASE), f"{name} still claims a proof"
