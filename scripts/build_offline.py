"""Build the offline copy of the site (both languages) and zip it (``make offline``).

Material's ``offline`` plugin (enabled by OFFLINE=true in mkdocs.yml) inlines the search index
into a script and runs search without a server; DIRECTORY_URLS=false makes every link name its
``.html`` file, so a copy opened from the file system navigates (directory URLs would open folder
listings). The zip holds one folder, ``simple-llm/``: unpack it and open ``simple-llm/index.html``.

    python scripts/build_offline.py                       # -> site/simple-llm-offline.zip
    python scripts/build_offline.py --zip out/copy.zip --keep build/offline
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT / "site" / "simple-llm-offline.zip"
FOLDER = "simple-llm"


def offline_env() -> dict[str, str]:
    """The environment that makes ``mkdocs build`` build the offline copy (mkdocs.yml reads it)."""
    return {"OFFLINE": "true", "DIRECTORY_URLS": "false"}


def build(site_dir: Path) -> None:
    env = {**os.environ, **offline_env(), "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        check=True,
    )


def write_zip(site_dir: Path, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(site_dir.rglob("*")):
            if path.is_file() and not path.name.endswith((".map", ".gz")):
                archive.write(path, f"{FOLDER}/{path.relative_to(site_dir).as_posix()}")
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--zip", type=Path, default=ZIP, help=f"the zip to write (default {ZIP.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--keep", type=Path, help="build into this folder and keep it (default: a temporary one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        site_dir = args.keep or Path(temporary) / FOLDER
        build(site_dir)
        count = write_zip(site_dir, args.zip)
    print(f"{args.zip}: {count} files, {args.zip.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
