"""The contributor's tooling agrees with itself: one pin per tool, one way to get the browser, and
CI that deploys only what passed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    found = [re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.split("#")[0].strip()) for line in lines]
    return {m.group(1).lower(): m.group(2) for m in found if m}


def workflows() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(WORKFLOWS.glob("*.yml"))}


def test_every_requirement_is_pinned_once():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("-")]
    unpinned = [line for line in requirements if "==" not in line]
    assert not unpinned, f"requirements.txt: not pinned with ==: {unpinned}"
    names = [line.split("==")[0].lower() for line in requirements]
    assert len(names) == len(set(names)), "a package is pinned twice in requirements.txt"


def test_pre_commit_runs_the_pinned_ruff():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    (ruff,) = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == f"v{pins()['ruff']}", "the pre-commit ruff differs from requirements.txt's"
    assert {hook["id"] for hook in ruff["hooks"]} == {"ruff-check", "ruff-format"}


def test_playwright_is_pinned_only_in_requirements_and_never_downloads_a_browser():
    assert "playwright" in pins()
    places = [ROOT / "Makefile", *WORKFLOWS.glob("*.yml"), *(ROOT / "scripts").glob("*")]
    for path in places:
        text = "\n".join(line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines())
        assert not re.search(r"playwright\s+install", text), f"{path.name} downloads a browser"
        assert not re.search(r"playwright==", text), f"{path.name} pins playwright a second time"


def test_ci_tests_every_week_and_deploys_only_after_the_tests():
    (name, ci), *others = workflows().items()
    assert not others, f"one workflow, not {sorted(workflows())}"
    triggers = ci.get("on", ci.get(True))  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers), triggers
    jobs = ci["jobs"]
    assert "make test" in " ".join(step.get("run", "") for step in jobs["test"]["steps"])
    assert {"3.11", "3.12"} <= set(jobs["test"]["strategy"]["matrix"]["python"])
    assert jobs["deploy"]["needs"] in ("test", ["test"]), "the deploy does not wait for the tests"
    assert "refs/heads/main" in jobs["deploy"]["if"]
    build = " ".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    assert "SITE_URL=" in build and "make site" in build and "make offline" in build


def test_missing_browser_stops_make_test_loudly():
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_chromium.sh")],
        env={"PATH": "/usr/bin:/bin", "SIMPLE_LLM_CHROMIUM": "/nonexistent/chromium"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "/nonexistent/chromium" in result.stderr and "apt-get install -y chromium" in result.stderr


def test_the_two_halves_of_make_test_run_every_test_file_once():
    """scripts/run_tests.py splits the checks in two pytest processes: together they must run
    every test file and notebook, and no file twice."""
    from scripts.run_tests import halves

    package, site = halves()
    roots = [ROOT / path for path in package + site]
    files = [
        *(ROOT / "tests").rglob("test_*.py"),
        *(ROOT / "docs" / "notebooks").glob("*.ipynb"),
        *(p for p in (ROOT / "simple_llm").rglob("*.py") if "__pycache__" not in p.parts),
    ]
    assert files, "no test file found"
    for path in files:
        runs = [root for root in roots if path == root or root in path.parents]
        assert len(runs) == 1, f"{path.relative_to(ROOT)} is run by {len(runs)} halves: {runs}"
    assert set(package).isdisjoint(site), f"a path is in both halves: {set(package) & set(site)}"


def test_run_tests_measures_a_half_that_ended_first():
    """The site half may end before the package half: checking whether it still runs must not reap
    it, or measuring it afterwards fails (os.wait4: no child process) and make test with it."""
    import sys
    import time

    from scripts.run_tests import start, still_running, wait_measured

    first = start([sys.executable, "-c", "pass"])
    time.sleep(0.5)
    second = start([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert still_running(second)
    assert not still_running(first)
    code, wall, cpu = wait_measured(first)
    assert code == 0 and wall > 0.4 and cpu >= 0
    assert wait_measured(second)[0] == 0
    failing = start([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_measured(failing)[0] == 3


def test_a_failing_command_beside_the_tests_stops_them():
    """make test runs the lint beside the two halves (scripts/run_tests.py --beside): when it fails,
    the halves are interrupted at once instead of running their minutes for nothing; when it
    passes, they run on."""
    import sys
    import time

    from scripts.run_tests import arguments, start, still_running, stop_when_failing

    assert arguments(["--beside", "make lint", "-x"]) == (["-x"], "make lint")
    assert arguments(["-x"]) == (["-x"], None)
    sleeper = "import time; time.sleep(30)"
    half = start([sys.executable, "-c", sleeper])
    passing = start([sys.executable, "-c", "pass"])
    stop_when_failing(passing, [half]).join(timeout=10)
    time.sleep(0.3)
    assert still_running(half), "a passing command beside the tests stopped them"
    began = time.monotonic()
    failing = start([sys.executable, "-c", "raise SystemExit(2)"])
    stop_when_failing(failing, [half]).join(timeout=10)
    assert half.wait(timeout=10) != 0 and time.monotonic() - began < 10
    assert failing.returncode == 2
