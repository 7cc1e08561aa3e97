"""Point every link that names the project's GitHub repository at another one (after forking).

    python scripts/set_repo.py OWNER/NAME        (make set-repo REPO=OWNER/NAME)

The repository now named is the one of ``repo_url`` in mkdocs.yml. Every text file of the checkout
(git's files, tracked or not ignored; the whole tree where git is missing) that names it gets the
new name: ``repo_url`` and ``repo_name``, the Pages address (``site_url``, ``[project.urls]``), the
README's Colab table and install line, the notebooks' install cells (sources and executed
notebooks: only the name changes, so the notebooks stay their sources executed). Standard library
only: it runs before anything is installed. A value that is not ``OWNER/NAME`` changes nothing and
exits with 2; a second run with the same name changes nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"  # GitHub's rule for user names
NAME = r"[A-Za-z0-9._-]{1,100}"
REPO_URL = re.compile(rf"^repo_url:\s*https://github\.com/({OWNER})/({NAME}?)/?\s*$", re.M)
TEXT_SUFFIXES = {".md", ".py", ".ipynb", ".yml", ".yaml", ".toml", ".txt", ".cfg", ".html", ".tsv", ""}
SKIP_DIRS = {".git", ".venv", "node_modules", "site", "build", "artifacts", "__pycache__", "vendor"}


def usage(message: str) -> int:
    print(f"set-repo: {message}", file=sys.stderr)
    print(
        "usage: make set-repo REPO=OWNER/NAME   (the GitHub repository, e.g. REPO=acme/attn-book)",
        file=sys.stderr,
    )
    return 2


def configured(root: Path) -> tuple[str, str]:
    """The repository that mkdocs.yml's repo_url names now: (owner, name)."""
    match = REPO_URL.search((root / "mkdocs.yml").read_text(encoding="utf-8"))
    if not match:
        raise SystemExit(usage("mkdocs.yml has no repo_url of the form https://github.com/OWNER/NAME"))
    return match.group(1), match.group(2).removesuffix(".git")


def files(root: Path) -> list[Path]:
    """The checkout's text files: git's view (tracked, or untracked and not ignored) when it has one."""
    listed = subprocess.run(
        ["git", "-c", "safe.directory=*", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
    )
    if listed.returncode == 0:
        paths = [root / p for p in sorted(set(listed.stdout.decode().split("\0"))) if p]
    else:  # not a git checkout (an unpacked archive): the tree without what builds and installs put there
        paths = [p for p in sorted(root.rglob("*")) if not SKIP_DIRS & set(p.relative_to(root).parts)]
    return [p for p in paths if p.is_file() and not p.is_symlink() and p.suffix in TEXT_SUFFIXES]


def replacements(old: tuple[str, str], new: tuple[str, str]) -> list[tuple[re.Pattern[str], str]]:
    (old_owner, old_name), (new_owner, new_name) = old, new
    end = r"(?![A-Za-z0-9._-])"  # a whole name: simple-llm, not simple-llm-offline
    tail = rf"{re.escape(old_owner)}/{re.escape(old_name)}{end}"
    return [
        # github.com/OWNER/NAME (repo_url, install URLs, [project.urls]); Colab's github/OWNER/NAME
        (re.compile(rf"(?<=github\.com/){tail}", re.I), f"{new_owner}/{new_name}"),
        (re.compile(rf"(?<=colab\.research\.google\.com/github/){tail}", re.I), f"{new_owner}/{new_name}"),
        # the Pages address, https://OWNER.github.io/NAME/ (host names ignore case; the owner as given,
        # as tests/docs/test_site.py derives it from repo_url)
        (
            re.compile(rf"https://{re.escape(old_owner)}\.github\.io/{re.escape(old_name)}{end}", re.I),
            f"https://{new_owner}.github.io/{new_name}",
        ),
        (re.compile(rf"^(repo_name:\s*){tail}", re.M), rf"\g<1>{new_owner}/{new_name}"),
    ]


def set_repo(root: Path, repo: str) -> list[Path]:
    """Rewrite the checkout at ``root`` to name ``repo``; returns the files that changed."""
    if not re.fullmatch(rf"{OWNER}/{NAME}", repo) or repo.split("/")[1] in (".", ".."):
        raise SystemExit(usage(f"REPO must be OWNER/NAME as on GitHub, got {repo!r}"))
    new = tuple(repo.split("/"))
    old = configured(root)
    rules = replacements(old, new)  # type: ignore[arg-type]
    changed: dict[Path, str] = {}
    for path in files(root):
        try:
            text = path.read_bytes().decode("utf-8")  # as it is: no newline translation
        except UnicodeDecodeError:
            continue
        rewritten = text
        for pattern, replacement in rules:
            rewritten = pattern.sub(replacement, rewritten)
        if rewritten != text:
            changed[path] = rewritten
    for path, text in changed.items():  # everything was read and checked before anything is written
        path.write_bytes(text.encode("utf-8"))
    return sorted(changed)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        return usage("no REPO given")
    old = "/".join(configured(ROOT))
    changed = set_repo(ROOT, argv[0].strip())
    for path in changed:
        print(f"  {path.relative_to(ROOT)}")
    print(f"set-repo: {old} -> {argv[0].strip()}: {len(changed)} files changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
