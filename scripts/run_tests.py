"""Every check, on both cores (``make test`` runs this after the lint).

One pytest runs everything one test at a time, and most of the time only one core works: the
notebook kernels compute while pytest waits for them, the browser renders while the checks wait.
So the test paths of ``pyproject.toml`` are split in two halves of about equal time, run by two
pytest processes at once:

- the package, its tests and the notebooks (nbval): ``simple_llm``, ``tests/test_*.py``,
  ``docs/notebooks``;
- the site: ``tests/docs`` and ``tests/browser``, which build it (in the background, conftest.py).

The package half computes with one thread (``OMP_NUM_THREADS=1`` unless it is set): with two
cores shared by two processes, PyTorch's second thread only waits its turn, spinning, and takes
the core from the site half. The notebooks' outputs do not depend on the thread count (they are
rounded; nbval compares them). The first half prints as it runs; the second half's report is
printed when it ends, and the last line gives each half's time and the CPU time it used (with
the notebook kernels, the site build and Chromium it waited for). The exit status is the first
non-zero one of the two (0 when both pass).
Extra arguments go to both pytests, e.g. ``python scripts/run_tests.py -x``. ``python -m pytest``
alone still runs everything in one process.

``--beside COMMAND`` (first) runs a shell command beside the two halves: ``make test`` runs its
lint there (ruff, mypy, the workflow linters: about 15 s of one core that used to wait in front
of the tests, 13 of them mypy's first run). A failing command still stops everything within
seconds: the halves are interrupted, its output is printed and its exit status is returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE_PATHS = ["tests/docs", "tests/browser"]


def halves() -> tuple[list[str], list[str]]:
    """The package half and the site half of the configured test paths."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    testpaths = config["tool"]["pytest"]["ini_options"]["testpaths"]
    package: list[str] = []
    for path in testpaths:
        if path == "tests":  # the package's own tests; the site's folders go to the other half
            package += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py"))
            kept = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
            unknown = kept - {Path(s).name for s in SITE_PATHS}
            if unknown:
                sys.exit(f"tests/ has folders neither half runs: {sorted(unknown)} (scripts/run_tests.py)")
        else:
            package.append(path)
    if "tests" not in testpaths:
        sys.exit(f"pyproject.toml's testpaths {testpaths} lack 'tests' (scripts/run_tests.py)")
    return package, SITE_PATHS


def wait_measured(process: subprocess.Popen) -> tuple[int, float, float]:
    """Wait for ``process``; its exit code, wall seconds since ``process.started`` and the CPU
    seconds (user + system) it and the children it waited for used."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.monotonic() - process.started, usage.ru_utime + usage.ru_stime


def still_running(process: subprocess.Popen) -> bool:
    """Whether ``process`` runs, without reaping it if it has ended (``poll()`` would, and
    ``wait_measured`` could then no longer read its CPU time)."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def start(command: list[str], **options) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, **options)
    process.started = time.monotonic()  # type: ignore[attr-defined]
    return process


def stop_when_failing(beside: subprocess.Popen, halves: list[subprocess.Popen]) -> threading.Thread:
    """A thread that waits for ``beside`` and interrupts the ``halves`` if it fails (SIGINT: pytest
    stops as after Ctrl-C, its notebook kernels and browser with it)."""

    def watch() -> None:
        if beside.wait() != 0:
            for half in halves:
                if still_running(half):
                    half.send_signal(signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def main(extra: list[str], beside: str | None = None) -> int:
    package, site = halves()
    command = [sys.executable, "-m", "pytest"]
    begin = time.monotonic()
    with (
        tempfile.TemporaryFile(mode="w+", encoding="utf-8") as site_log,
        tempfile.TemporaryFile(mode="w+", encoding="utf-8") as beside_log,
    ):
        beside_run = (
            start(["bash", "-c", beside], stdout=beside_log, stderr=subprocess.STDOUT) if beside else None
        )
        site_run = start([*command, *extra, *site], stdout=site_log, stderr=subprocess.STDOUT)
        try:
            one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **os.environ}
            package_run = start([*command, *extra, *package], env=one_thread)
            if beside_run is not None:
                stop_when_failing(beside_run, [site_run, package_run])
            package_code, package_wall, package_cpu = wait_measured(package_run)
        except KeyboardInterrupt:
            site_run.terminate()
            raise
        finally:
            if still_running(site_run):
                print("\n--- the package half has ended; waiting for the site half ---", flush=True)
        site_code, site_wall, site_cpu = wait_measured(site_run)
        site_log.seek(0)
        print(f"\n--- the site half: {' '.join(site)} ---\n{site_log.read()}", flush=True)
        beside_code = 0
        if beside_run is not None:
            beside_code = beside_run.wait()
            beside_log.seek(0)
            print(
                f"\n--- beside the tests: {beside} (exit {beside_code}) ---\n{beside_log.read()}", flush=True
            )
    minutes = (time.monotonic() - begin) / 60
    print(
        f"package half: exit {package_code}, {package_wall / 60:.1f} min, CPU {package_cpu / 60:.1f} min; "
        f"site half: exit {site_code}, {site_wall / 60:.1f} min, CPU {site_cpu / 60:.1f} min; "
        f"{minutes:.1f} min in all"
    )
    if beside_code:
        print(f"*** {beside} failed (exit {beside_code}): the tests were stopped ***", flush=True)
    return beside_code or package_code or site_code


def arguments(argv: list[str]) -> tuple[list[str], str | None]:
    """The pytest arguments and the ``--beside`` command of ``argv``."""
    if argv[:1] == ["--beside"]:
        if len(argv) < 2:
            sys.exit("--beside needs a command (scripts/run_tests.py)")
        return argv[2:], argv[1]
    return argv, None


if __name__ == "__main__":
    raise SystemExit(main(*arguments(sys.argv[1:])))
