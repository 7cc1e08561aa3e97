"""The offline copy of the site (both languages), made from the built site, and its zip (``make offline``).

The site is built with directory URLs (``chapters/03-multi-head/``, a folder holding
``index.html``); opened from the file system such a link shows a folder listing. The copy is the
built site with every relative link to a folder made to name its ``index.html``, in the pages and
in the search indexes; each search index is also inlined into ``search_index.js``, and every page
loads the vendored iframe-worker shim, so that material's search runs without a server (what its
``offline`` plugin does). Nothing is built a second time: ``make test`` converts the site it has
built anyway (a second ``mkdocs build`` took as long as the first). The zip holds one folder,
``simple-llm/``: unpack it and open ``simple-llm/index.html``.

    python scripts/build_offline.py --site site                  # -> site/simple-llm-offline.zip
    python scripts/build_offline.py --zip out/copy.zip --keep build/offline   # builds the site first
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT / "site" / "simple-llm-offline.zip"
FOLDER = "simple-llm"


_LINK = re.compile(r'(\s(?:href|src)=")([^"]*)(")')
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|/|#)")
SHIM = "assets/vendor/iframe-worker/shim.js"


def file_url(url: str) -> str:
    """A relative link to a folder (``../04-masks/#x``, ``./``, ``../..``) made to name its ``index.html``.

    >>> [file_url(u) for u in ["../04-masks/#x", "./", "../..", "a.png", "#top", "https://x.org/"]]
    ['../04-masks/index.html#x', './index.html', '../../index.html', 'a.png', '#top', 'https://x.org/']
    """
    if _EXTERNAL.match(url):
        return url
    path, rest = re.match(r"([^?#]*)(.*)", url, flags=re.S).groups()
    if not path:
        return url
    if path.endswith("/"):
        path += "index.html"
    elif path.split("/")[-1] in (".", ".."):
        path += "/index.html"
    return path + rest


def convert(site: Path, target: Path) -> None:
    """Copy the built ``site`` (directory URLs) into ``target`` as the offline copy."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(site, target, ignore=shutil.ignore_patterns("*.zip"))
    if not (target / SHIM).is_file():
        raise SystemExit(f"{site} has no {SHIM}: is it a build of this site?")
    for page in target.rglob("*.html"):
        depth = len(page.relative_to(target).parts) - 1
        html = _LINK.sub(
            lambda m: m.group(1) + file_url(m.group(2)) + m.group(3), page.read_text(encoding="utf-8")
        )
        shim = f'<script src="{"../" * depth}{SHIM}"></script>'
        html = html.replace("</head>", shim + "</head>", 1)
        page.write_text(html, encoding="utf-8")
    for index in target.rglob("search/search_index.json"):
        data = json.loads(index.read_text(encoding="utf-8"))
        for doc in data["docs"]:
            location = doc["location"]  # relative to the language's root; "" and "#x" are the home page
            doc["location"] = "index.html" + location if location[:1] in ("", "#") else file_url(location)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        index.write_text(text, encoding="utf-8")
        index.with_suffix(".js").write_text(f"var __index = {text}", encoding="utf-8")


def build(site_dir: Path) -> None:
    """``mkdocs build --strict`` of the site (directory URLs) into ``site_dir``."""
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
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
    parser.add_argument("--site", type=Path, help="a built site to convert (default: build one first)")
    parser.add_argument(
        "--keep", type=Path, help="write the copy into this folder and keep it (default: a temporary one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        site = args.site
        if site is None:
            site = Path(temporary) / "site"
            build(site)
        copy = args.keep or Path(temporary) / FOLDER
        convert(site, copy)
        count = write_zip(copy, args.zip)
    print(f"{args.zip}: {count} files, {args.zip.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
