"""The README's test command in a fresh clone, timed: the budget is 8 minutes on 2 cores.

Clones the committed HEAD into a temporary folder and runs ``CI=true bash .ci/run`` there, as CI
does (set-up included: a new .venv from requirements.txt, then ``make test``). It appends a row
to docs/assets/benchmark/fresh-clone.md (the benchmark page includes it) with the commit, the
wall time, the CPU time the whole machine used meanwhile, the exit status and the load average
just before. The machine's CPU comes from /proc/stat: it counts Chromium's processes, which the
per-half CPU that ``scripts/run_tests.py`` prints does not see (they are not its children's
children when they end). On a shared machine the wall time moves with the other load; the CPU
time moves much less.

    python scripts/time_fresh_clone.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "assets" / "benchmark" / "fresh-clone.md"
# No words in the rows: the table is on the pages of both languages (their text says what changed).
HEADER = (
    "| commit | date | wall, min | machine CPU, min | exit | load average before |\n"
    "|---|---|---:|---:|---:|---:|\n"
)


def machine_cpu_seconds() -> float:
    """User, nice and system time of all cores since boot (/proc/stat's first line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return sum(int(value) for value in fields[1:4]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        load = os.getloadavg()[0]
        cpu, began = machine_cpu_seconds(), time.monotonic()
        run = subprocess.run(["bash", ".ci/run"], cwd=clone, env={**os.environ, "CI": "true"})
        wall, cpu = time.monotonic() - began, machine_cpu_seconds() - cpu
    row = (
        f"| `{commit}` | {date.today().isoformat()} | {wall / 60:.1f} | {cpu / 60:.1f} | "
        f"{run.returncode} | {load:.1f} |\n"
    )
    text = TABLE.read_text(encoding="utf-8") if TABLE.exists() else HEADER
    TABLE.write_text(text + row, encoding="utf-8")
    print(
        f"fresh clone of {commit}: {wall / 60:.1f} min, machine CPU {cpu / 60:.1f} min, exit {run.returncode}"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
