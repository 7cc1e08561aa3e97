"""A notebook as a reader's Colab runs it: its own first cell installs the package for real
(``pip install git+…``), in a fresh environment outside the checkout, and the rest of the notebook
must give its stored outputs (nbval, as for every notebook).

The install cell's address is pointed at a local ``git+file://`` repository holding the working
tree's package files (uncommitted changes included: a new commit in a temporary repository), so pip
clones, builds and installs it as it would from GitHub, not in editable mode. torch and the other
dependencies come from this test's environment (a ``.pth`` line; the editable install there is not
loaded); pip gets no index and builds without isolation, so nothing is downloaded.

The test command runs notebook 01 in the default language (the English one has the same code
cells, tests/docs/test_parity.py); CI's weekly run sets
``SIMPLE_LLM_COLAB_NOTEBOOKS=all`` to run every notebook this way (or name some:
``SIMPLE_LLM_COLAB_NOTEBOOKS=04_masks.en,04_masks.ru``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_env import fresh_environment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
DEFAULT = ["01_attention.ru"]  # its code cells are the English one's too (tests/docs/test_parity.py)
OFFLINE_PIP = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this variable inverted: "0" builds without isolation
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}

sys.path.insert(0, str(ROOT / "scripts"))
from set_repo import configured  # noqa: E402


def chosen() -> list[str]:
    """The notebooks to run: ``SIMPLE_LLM_COLAB_NOTEBOOKS`` is ``all`` or names such as
    ``04_masks.en,04_masks.ru``; unset, notebook 01 in the default language."""
    every = sorted(p.name.removesuffix(".ipynb") for p in NOTEBOOKS.glob("*.ipynb"))
    value = os.environ.get("SIMPLE_LLM_COLAB_NOTEBOOKS", "").strip()
    if not value:
        return DEFAULT
    if value == "all":
        return every
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(every))
    if unknown:
        raise ValueError(
            f"SIMPLE_LLM_COLAB_NOTEBOOKS={value!r} names no notebook {unknown}: expected 'all' or "
            f"names of docs/notebooks/*.ipynb without .ipynb, such as {every[0]!r}"
        )
    return names


@pytest.fixture(scope="module")
def package_repository(tmp_path_factory) -> Path:
    """A git repository whose one commit is the working tree's package (what pip builds)."""
    repo = tmp_path_factory.mktemp("colab") / "simple-llm"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(
        ROOT / "simple_llm", repo / "simple_llm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    git = [
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the working tree"]):
        subprocess.run([*git, *command], cwd=repo, check=True)
    return repo


@pytest.mark.parametrize("name", chosen())
def test_notebook_runs_from_its_own_install_cell(name, package_repository, tmp_path):
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    source = "".join(first["source"])
    owner, repo = configured(ROOT)
    address = f"git+https://github.com/{owner}/{repo}"
    assert re.search(rf"{re.escape(address)}(?![\w.-])", source), (
        f"the install cell does not install {address}"
    )
    local = f"git+{package_repository.as_uri()}"
    first["source"] = source.replace(address, local)

    work = tmp_path / "colab"  # the notebook alone, as Colab opens it: no checkout around it
    work.mkdir()
    (work / f"{name}.ipynb").write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")
    (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    python = fresh_environment(tmp_path)
    check = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('simple_llm'))"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "None", f"simple_llm is importable before the install cell: {check.stdout}"

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")}
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(work / "pytest.ini"),
            "--rootdir",
            str(work),
            "--nbval",
            "--nbval-current-env",  # the kernel is this fresh environment's Python
            "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"),
            "--nbval-cell-timeout",
            "300",
            f"{name}.ipynb",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        env={**env, **OFFLINE_PIP},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    installed = subprocess.run(
        [str(python), "-c", "import simple_llm; print(simple_llm.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert Path(installed.stdout.strip()).is_relative_to(tmp_path / "venv"), installed
