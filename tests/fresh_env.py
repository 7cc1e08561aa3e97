"""A fresh virtual environment for the tests of what a reader installs (test_distribution.py,
test_colab.py): no simple_llm in it, and this environment's packages (torch, ipykernel, nbval,
pip) reachable through one .pth line, so nothing is downloaded."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path


def fresh_environment(folder: Path) -> Path:
    """Create ``folder/venv`` and return its Python."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "test_environment.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return python
