"""``python -m simple_llm.practice my_attention.py [--lang en]``: grade the functions a file defines.

The file is imported as a module; each function it defines under a task's name (``attention``,
``multi_head_attention``, ``causal_mask``, ``rope``, ``tiled_attention``) is graded and its report
printed. The exit status is 0 only if at least one was found and every one graded passed; 1 when
a function fails; 2 when the file cannot be read or imported, or defines none of the names.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simple_llm.practice._report import LANGUAGES, Report
from simple_llm.practice.graders import (
    check_attention,
    check_causal_mask,
    check_multi_head_attention,
    check_rope,
    check_tiled_attention,
)

GRADERS: dict[str, Callable[..., Report]] = {
    "attention": check_attention,
    "multi_head_attention": check_multi_head_attention,
    "causal_mask": check_causal_mask,
    "rope": check_rope,
    "tiled_attention": check_tiled_attention,
}

_NONE_FOUND = (
    "в {path} нет ни одной функции с именем из списка: {names}",
    "{path} defines none of the functions: {names}",
)
_IMPORT_FAILED = ("не удалось импортировать {path}:", "could not import {path}:")
_NOT_A_FILE = ("нет такого файла: {path}", "no such file: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Grade the functions of the file named in ``argv``; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m simple_llm.practice",
        description="Grade your attention code: " + ", ".join(GRADERS) + ".",
    )
    parser.add_argument("path", type=Path, help="a Python file that defines some of the functions")
    parser.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0], help="language of the reports")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one call may take (default 10)")
    args = parser.parse_args(argv)
    i = LANGUAGES.index(args.lang)
    if not args.path.is_file():
        print(_NOT_A_FILE[i].format(path=args.path), file=sys.stderr)
        return 2
    module = _load(args.path)
    if isinstance(module, str):
        print(_IMPORT_FAILED[i].format(path=args.path), file=sys.stderr)
        print(module, file=sys.stderr)
        return 2
    found = {name: getattr(module, name) for name in GRADERS if callable(getattr(module, name, None))}
    if not found:
        print(_NONE_FOUND[i].format(path=args.path, names=", ".join(GRADERS)), file=sys.stderr)
        return 2
    passed = True
    for name, fn in found.items():
        report = GRADERS[name](fn, lang=args.lang, timeout_s=args.timeout)
        print(report)
        passed &= report.passed
    return 0 if passed else 1


def _load(path: Path) -> Any:
    """The module from ``path``, or the last lines of the traceback when importing it fails."""
    spec = importlib.util.spec_from_file_location(f"_practice_{path.stem}", path)
    if spec is None or spec.loader is None:
        return f"not a Python file: {path}"
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException:  # the reader's file may raise anything, SystemExit included
        return "".join(traceback.format_exc(limit=-1)).rstrip()
    return module


if __name__ == "__main__":
    sys.exit(main())
