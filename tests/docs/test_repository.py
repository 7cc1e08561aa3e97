"""One place names the repository: mkdocs.yml's ``repo_url``. Every other link to the project's
repository, its Colab notebooks or its Pages site agrees with it, and ``make set-repo REPO=owner/name``
moves them all at once (scripts/set_repo.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The original project, which simple_llm.transformer keeps compatible: named on purpose, not ours.
ORIGINAL = "pese-git/simple-llm"
FORK = "acme/attn-book"  # the name the set-repo test gives its copy
NAME = r"[A-Za-z0-9._-]+"
COLAB = re.compile(rf"colab\.research\.google\.com/github/({NAME})/({NAME})", re.I)
PIP_GIT = re.compile(rf"git\+https://github\.com/({NAME})/({NAME})", re.I)
GITHUB = re.compile(rf"(?<![\w.-])github\.com/({NAME})/({NAME})", re.I)
PAGES = re.compile(rf"https?://({NAME})\.github\.io/({NAME})", re.I)

sys.path.insert(0, str(ROOT / "scripts"))
from set_repo import configured  # noqa: E402


def listed_files(root: Path) -> list[Path]:
    """The checkout's files as git sees them (tracked, or untracked and not ignored)."""
    out = subprocess.run(
        ["git", "-c", "safe.directory=*", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [root / p for p in sorted(set(out.split("\0"))) if p and (root / p).is_file()]


def texts(root: Path):
    for path in listed_files(root):
        if "vendor" in path.relative_to(root).parts:  # third-party code (mermaid, KaTeX)
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def foreign_names(root: Path) -> list[str]:
    """Every place that names a GitHub repository of the project other than the configured one."""
    owner, name = (part.lower() for part in configured(root))
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    ours = f"{owner}/{name}"
    found = []
    for path, text in texts(root):
        where = path.relative_to(root)
        for pattern in (COLAB, PIP_GIT):  # a Colab notebook or an install URL is always the project's
            for o, r in pattern.findall(text):
                if f"{o}/{r.removesuffix('.git')}".lower() != ours:
                    found.append(f"{where}: {pattern.pattern.split('(')[0]}{o}/{r}")
        for pattern in (GITHUB, PAGES):
            for o, r in pattern.findall(text):
                repo = f"{o}/{r.removesuffix('.git')}".lower()
                if repo in (ours, ORIGINAL):
                    continue
                if o.lower() == owner or r.lower() in (name, project.lower()):
                    found.append(f"{where}: {o}/{r}")
    return found


def test_no_file_names_another_repository_of_the_project():
    assert foreign_names(ROOT) == []


def test_the_package_metadata_names_the_configured_repository_and_site():
    owner, name = configured(ROOT)
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Repository"] == f"https://github.com/{owner}/{name}"
    assert urls["Issues"] == f"https://github.com/{owner}/{name}/issues"
    assert urls["Homepage"] == urls["Documentation"] == f"https://{owner}.github.io/{name}/"
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(rf"^repo_name: {re.escape(owner)}/{re.escape(name)}$", mkdocs, re.M)


def test_the_check_finds_a_stray_name(tmp_path):
    """The check above can fail: another owner's Colab link or install URL is found, the original
    project is not."""
    owner, name = configured(ROOT)
    for config in ("mkdocs.yml", "pyproject.toml"):
        shutil.copy2(ROOT / config, tmp_path)
    (tmp_path / "page.md").write_text(
        f"[Colab](https://colab.research.google.com/github/{owner}-fork/{name}/blob/main/x.ipynb)\n"
        f"pip install git+https://github.com/someone/{name}\n"
        f"The original: https://github.com/{ORIGINAL}\n",
        encoding="utf-8",
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    found = " ".join(foreign_names(tmp_path))
    assert f"{owner}-fork/{name}" in found and f"someone/{name}" in found, found
    assert ORIGINAL not in found and "mkdocs.yml" not in found and "pyproject.toml" not in found, found


def copy_of_the_checkout(tmp_path: Path) -> Path:
    """The working tree as it is (uncommitted changes included) in a new git repository."""
    copy = tmp_path / "checkout"
    for path in listed_files(ROOT):
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    subprocess.run([*git, "add", "-A"], cwd=copy, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=copy, check=True)
    return copy


def set_repo(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        ["make", "--no-print-directory", "set-repo", *args, f"PYTHON={sys.executable}"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=env,
    )


def changed(copy: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    "value", [None, "", "acme", "acme/attn book", "acme/attn-book/x", "-acme/x", "acme/.."]
)
def test_set_repo_refuses_a_value_that_is_not_owner_slash_name(tmp_path, value):
    copy = tmp_path / "c"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "Makefile", copy)
    shutil.copy2(ROOT / "mkdocs.yml", copy)
    shutil.copy2(ROOT / "scripts" / "set_repo.py", copy / "scripts")
    before = (copy / "mkdocs.yml").read_bytes()
    result = set_repo(copy, *([] if value is None else [f"REPO={value}"]))
    assert result.returncode == 2, result
    assert "REPO" in result.stderr and "OWNER/NAME" in result.stderr, result.stderr
    assert (copy / "mkdocs.yml").read_bytes() == before


def test_set_repo_renames_every_link_and_the_link_checks_still_agree(tmp_path):
    old_owner, old_name = configured(ROOT)
    copy = copy_of_the_checkout(tmp_path)
    result = set_repo(copy, f"REPO={FORK}")
    assert result.returncode == 0, result.stderr
    assert configured(copy) == tuple(FORK.split("/"))
    assert foreign_names(copy) == []
    old = re.compile(rf"{re.escape(old_owner)}(/|\.github\.io/){re.escape(old_name)}(?![\w.-])", re.I)
    left = [
        str(p.relative_to(copy))
        for p in listed_files(copy)
        if old.search(p.read_bytes().decode("utf-8", "replace"))
    ]
    assert left == [], f"the old name {old_owner}/{old_name} is left in {left}"
    renamed = changed(copy)
    assert (
        "mkdocs.yml" in renamed
        and "README.md" in renamed
        and ".ipynb" in renamed
        and "pyproject.toml" in renamed
    )
    for notebook in sorted((copy / "docs" / "notebooks").glob("*.ipynb")):  # still JSON, with the new name
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        assert f"git+https://github.com/{FORK}" in first, notebook.name
    # a second run changes nothing
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "renamed"],
        cwd=copy,
        check=True,
    )
    again = set_repo(copy, f"REPO={FORK}")
    assert again.returncode == 0 and changed(copy) == "", again.stdout
    # the checks that hold the links to repo_url, run in the renamed copy
    checks = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/docs/test_links.py",
            "tests/docs/test_notebook_sources.py",
            "tests/docs/test_site.py",
            # every install cell and the README; one notebook pair executed-equals-source; site_url
            "-k",
            "repo_url or readme or installs or (matches_its_source and 01_) or pages_address_of_the_repository",
        ],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    assert checks.returncode == 0, checks.stdout[-3000:]
