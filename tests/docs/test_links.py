"""One repository address (``repo_url`` in mkdocs.yml): every install command, Colab link and
download link is built from it or must agree with it.

Here: the address itself and the README's install line. Elsewhere: the notebooks' install cell
(tests/docs/test_notebook_sources.py); every Colab link in the README, on the pages and in the built
site, and each notebook page's Colab button and download link (tests/docs/test_site.py).
"""

from __future__ import annotations

import re

from .helpers import ROOT, repo_url

PIP_GIT = re.compile(r"git\+(https://github\.com/[^\s\"')`]+)")


def install_addresses(text: str) -> list[str]:
    return [address.removesuffix(".git").rstrip("/") for address in PIP_GIT.findall(text)]


def test_repo_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo_url()), repo_url()


def test_readme_installs_from_repo_url():
    addresses = install_addresses((ROOT / "README.md").read_text(encoding="utf-8"))
    assert addresses and set(addresses) == {repo_url()}, addresses
