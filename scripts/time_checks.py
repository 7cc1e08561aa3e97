"""Where the test command's time goes: CPU and wall time of its pieces, measured one after the other.

Each piece runs as a child process (the notebooks under nbval, the site build, the quick pytest
selection of ``make check``, a first mypy run); its CPU time is the user + system time of it and
of every process it waited for (``resource.RUSAGE_CHILDREN``), which other processes on the
machine do not change, unlike the wall time. The load average before and after each piece is
recorded with it. Writes ``docs/assets/benchmark/test-time.md`` (included by the benchmark page)
and ``test-time.json``.

    python scripts/time_checks.py                          # every piece, every notebook
    python scripts/time_checks.py --notebooks 13_induction_heads.en 11_gqa.en
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.build_offline import convert  # noqa: E402

OUT = ROOT / "docs" / "assets" / "benchmark"
QUICK = "not browser and not notebooks and not site"


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, command: list[str], env: dict[str, str] | None = None) -> dict:
    load = os.getloadavg()[0]
    cpu, start = cpu_of_children(), time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    row = {
        "piece": name,
        "cpu_s": round(cpu_of_children() - cpu, 1),
        "wall_s": round(time.monotonic() - start, 1),
        "load": [round(load, 1), round(os.getloadavg()[0], 1)],
        "exit": done.returncode,
    }
    print(row, flush=True)
    if done.returncode:
        print((done.stdout + done.stderr)[-3000:], flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", help="notebook stems (default: every one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    names = args.notebooks
    if names is None:
        names = sorted(p.stem for p in (ROOT / "docs" / "notebooks").glob("*.ipynb"))
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        site = Path(temporary) / "site"
        rows.append(
            measure(
                "mkdocs build --strict (the site)",
                [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                {"NO_MKDOCS_2_WARNING": "1"},
            )
        )
        rows.append(
            measure(
                "mkdocs build --strict of the offline copy (how it was made before)",
                [
                    sys.executable,
                    "-m",
                    "mkdocs",
                    "build",
                    "--strict",
                    "--site-dir",
                    str(Path(temporary) / "old"),
                ],
                {"NO_MKDOCS_2_WARNING": "1", "OFFLINE": "true", "DIRECTORY_URLS": "false"},
            )
        )
        load = os.getloadavg()[0]
        self_cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        convert(site, Path(temporary) / "offline")
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - self_cpu.ru_utime - self_cpu.ru_stime
        rows.append(
            {
                "piece": "the offline copy, converted from the built site",
                "cpu_s": round(cpu, 1),
                "wall_s": round(time.monotonic() - start, 1),
                "load": [round(load, 1), round(os.getloadavg()[0], 1)],
                "exit": 0,
            }
        )
        print(rows[-1], flush=True)
        rows.append(
            measure(
                "mypy, first run (make lint)",
                [sys.executable, "-m", "mypy", "--cache-dir", str(Path(temporary) / "mypy")],
            )
        )
    rows.append(
        measure(
            f'make check\'s pytest -m "{QUICK}"',
            [sys.executable, "-m", "pytest", "-q", "-m", QUICK],
            one_thread,
        )
    )
    for name in names:
        path = f"docs/notebooks/{name}.ipynb"
        rows.append(
            measure(f"notebook {name} (nbval)", [sys.executable, "-m", "pytest", "-q", path], one_thread)
        )
    machine = {
        "cores": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
        "python": sys.version.split()[0],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "test-time.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    lines = [
        "| piece | CPU, s | wall, s | load average before → after | exit |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['piece']} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['load'][0]} → {r['load'][1]} | {r['exit']} |"
        for r in rows
    ]
    lines += [
        "",
        f"{machine['cores']} cores, Python {machine['python']}, {machine['date']}; scripts/time_checks.py.",
    ]
    (args.out / "test-time.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
