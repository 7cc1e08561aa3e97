"""``mkdocs build --strict`` in the background, for the tests (conftest.py starts the builds the
collected tests need as soon as collection ends; the fixtures wait for them). The offline copy is
not built again: it is converted from the site once that build has ended (scripts/build_offline.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.build_offline import FOLDER, convert

ROOT = Path(__file__).resolve().parents[1]


class Build:
    """One ``mkdocs build --strict`` running in the background into ``site``."""

    def __init__(self, site: Path, env: dict[str, str]):
        self.site = site
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed by stop)
        command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )

    def result(self) -> Path:
        """The built site, once the build has ended; fails on an error or a warning."""
        code = self.process.wait()
        self.log.seek(0)
        log = self.log.read()
        assert code == 0, f"mkdocs build --strict failed (exit {code}):\n{log}"
        warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
        assert not warnings, "mkdocs build printed warnings:\n" + "\n".join(warnings)
        return self.site

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


class OfflineCopy:
    """The offline copy, converted from the site build when first asked for."""

    def __init__(self, site: Build, target: Path):
        self.source, self.target, self.done = site, target, False

    def result(self) -> Path:
        if not self.done:
            convert(self.source.result(), self.target)
            self.done = True
        return self.target

    def stop(self) -> None:
        pass


_builds: dict[str, Build | OfflineCopy] = {}
_build_root = tempfile.TemporaryDirectory(prefix="simple-llm-builds-")  # removed at exit


def start_build(kind: str) -> Build | OfflineCopy:
    """The build of ``kind`` ("site", or "offline": the site's, converted), started now unless it runs."""
    if kind not in _builds:
        if kind == "site":
            _builds[kind] = Build(Path(_build_root.name, "site"), {"NO_MKDOCS_2_WARNING": "1"})
        else:
            site = start_build("site")
            assert isinstance(site, Build)
            _builds[kind] = OfflineCopy(site, Path(_build_root.name, "offline", FOLDER))
    return _builds[kind]


def stop_builds() -> None:
    """Stops the builds still running (a session that ends early) and closes their logs."""
    for build in _builds.values():
        build.stop()
    _builds.clear()
