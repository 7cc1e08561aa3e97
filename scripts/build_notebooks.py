"""Regenerate every executed notebook from its jupytext source.

    python scripts/build_notebooks.py            # all of notebooks/*.py
    python scripts/build_notebooks.py 03_multi_head.ru   # some of them

Each ``notebooks/NAME.py`` (py:percent) becomes ``docs/notebooks/NAME.ipynb``, executed with
outputs kept, no timings and quiet metadata, so that the diff of a change shows only what the
reader sees. The same settings are what nbval re-executes in CI (tests compare the two).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
TARGETS = ROOT / "docs" / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def target_of(source: Path) -> Path:
    return TARGETS / (source.stem + ".ipynb")


def merged_streams(outputs: list) -> list:
    """Consecutive prints to one stream as one output: how the kernel happened to flush them
    (it varies with the machine's load) must not show up in the stored notebook."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def build(source: Path) -> Path:
    nb = jupytext.read(source)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    TARGETS.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(TARGETS)}},
    )
    client.execute()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"  # stable ids: a rebuild changes only what the reader sees
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = merged_streams(cell.outputs)
    target = target_of(source)
    nbformat.write(nb, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="notebook stems such as 03_multi_head.ru (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="notebooks executed at once")
    args = parser.parse_args(argv)
    if args.names:
        sources = [SOURCES / f"{name.removesuffix('.py')}.py" for name in args.names]
        missing = [str(s) for s in sources if not s.is_file()]
        if missing:
            parser.error(f"no such notebook source: {', '.join(missing)}")
    else:
        sources = sorted(SOURCES.glob("*.py"))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for target in pool.map(build, sources):
            print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
