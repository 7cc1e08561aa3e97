"""The package as readers install it: the sdist and the wheel built from the working tree, the wheel
installed into a fresh environment where nothing else provides ``simple_llm``, and used from a folder
outside the checkout. Every other test imports the checkout (an editable install), which hides a
module or a package file the wheel lacks.

torch and the other dependencies come from this test's own environment (a ``.pth`` line adds its
site-packages; the editable install there is not loaded, since Python reads ``.pth`` files only in
site directories); nothing is downloaded. No build tool, no wheel: the test fails, it never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import torch
from fresh_env import fresh_environment

import simple_llm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simple_llm"
OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(command: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env})


def package_files(root: Path) -> set[str]:
    """Every file of the package under ``root`` (modules and package data), without caches."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, built from a copy of the working tree (the wheel from the sdist)."""
    tmp = tmp_path_factory.mktemp("dist")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "simple_llm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp / "out"
    result = run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)], tmp, **OFFLINE
    )
    if result.returncode != 0:
        pytest.fail(
            f"the sdist and wheel could not be built:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "tmp": tmp}


@pytest.fixture(scope="module")
def installed(built) -> Path:
    """A fresh environment with the wheel installed (--no-deps), and torch from this environment."""
    python = fresh_environment(built["tmp"])
    venv = python.parent.parent
    result = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(built["wheel"])],
        built["tmp"],
        **OFFLINE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def in_fresh_environment(venv: Path, script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` with the fresh environment's Python, isolated (-I: no PYTHONPATH, no user site,
    not the current folder), from ``cwd``, a folder outside the checkout."""
    return run([str(venv / "bin" / "python"), "-I", "-c", textwrap.dedent(script)], cwd)


def test_twine_accepts_the_sdist_and_the_wheel(built):
    result = run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built["sdist"]), str(built["wheel"])],
        built["tmp"],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_installed_package_has_every_module_and_file_of_the_checkout(installed, built):
    away = built["tmp"] / "elsewhere"
    away.mkdir(exist_ok=True)
    result = in_fresh_environment(
        installed,
        """
        import importlib, json, pkgutil, sys
        from pathlib import Path
        import simple_llm
        modules = sorted(m.name for m in pkgutil.walk_packages(simple_llm.__path__, "simple_llm."))
        for name in modules:
            importlib.import_module(name)
        root = Path(simple_llm.__file__).parent
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
        loaded = sorted({m.__file__ for n, m in sys.modules.items() if n.startswith("simple_llm") and getattr(m, "__file__", None)})
        print(json.dumps({"file": simple_llm.__file__, "version": simple_llm.__version__,
                          "modules": modules, "files": files, "loaded": loaded}))
        """,
        away,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["file"]).is_relative_to(installed), f"simple_llm came from {found['file']}"
    assert all(Path(f).is_relative_to(installed) for f in found["loaded"]), found["loaded"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert found["version"] == version
    assert set(found["files"]) == package_files(PACKAGE), "the wheel's files differ from simple_llm/'s"
    expected = {
        ".".join(("simple_llm", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    } - {"simple_llm"}
    assert expected <= set(found["modules"]), sorted(expected - set(found["modules"]))
    assert "simple_llm.transformer.gpt" in found["modules"]


def test_the_installed_package_runs_the_readme_the_view_and_original_checkpoints(installed, built):
    """From a folder outside the checkout: every public name and the original project's import
    paths, the README's examples, an attention view equal to the checkout's (its CSS and JS are
    package files), and the original project's state_dicts loading with the same outputs."""
    away = built["tmp"] / "elsewhere"
    away.mkdir(exist_ok=True)
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(2, 4, 4), dim=-1)  # (H, T, T)
    torch.save(weights, away / "weights.pt")
    expected_html = simple_llm.attention_view(weights, ["a", "b", "c", "d"], lang="en").html
    examples = readme_examples()
    assert examples, "the README has no Python example"
    result = in_fresh_environment(
        installed,
        f"""
        import importlib.util, sys
        import torch
        import simple_llm
        for name in simple_llm.__all__:
            getattr(simple_llm, name)
        from simple_llm.transformer import GPT, Decoder, FeedForward, HeadAttention, MultiHeadAttention
        from simple_llm.transformer.multi_head_attention import MultiHeadAttention as Original
        assert Original is simple_llm.MultiHeadAttention and GPT is simple_llm.GPT
        for example in {examples!r}:
            exec(compile(example, "README.md", "exec"), {{}})
        view = simple_llm.attention_view(torch.load("weights.pt"), ["a", "b", "c", "d"], lang="en")
        open("view.html", "w", encoding="utf-8").write(view.html)
        spec = importlib.util.spec_from_file_location("original_project", {str(ROOT / "tests" / "test_original_project.py")!r})
        original = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(original)
        assert original.MultiHeadAttention.__module__.startswith("simple_llm")
        for case in original.CASES:
            original.test_original_state_dict_loads_and_gives_the_same_output(case, torch.float64)
        print("checkpoints:", len(original.CASES))
        """,
        away,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    checkpoints = re.search(r"checkpoints: (\d+)", result.stdout)
    assert checkpoints and int(checkpoints.group(1)) >= 5, result.stdout
    assert (away / "view.html").read_text(encoding="utf-8") == expected_html
