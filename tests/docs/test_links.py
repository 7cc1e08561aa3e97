"""One repository address (``repo_url`` in mkdocs.yml): every install command, Colab link and
download link is built from it or must agree with it.

Here the sources: the notebooks' install cell, the README's install line and Colab table, and the
Colab links written on the pages. The links the site adds to every notebook page (the Colab
button and the download link) are checked in the built site by tests/docs/test_site.py.
"""

from __future__ import annotations

import re

import pytest

from .helpers import COLAB, DOCS, NOTEBOOKS, ROOT, read_notebook, read_source, repo_url, sources

PIP_GIT = re.compile(r"git\+(https://github\.com/[^\s\"')`]+)")


def install_addresses(text: str) -> list[str]:
    return [address.removesuffix(".git").rstrip("/") for address in PIP_GIT.findall(text)]


def test_repo_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo_url()), repo_url()


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_notebook_installs_the_package_from_repo_url(path):
    """The first code cell installs simple_llm from the repository (in Colab), in the source and in
    the executed notebook the site and Colab show."""
    notebook = NOTEBOOKS / path.with_suffix(".ipynb").name
    for cells in (read_source(path).cells, read_notebook(notebook).cells):
        first_code = next(cell for cell in cells if cell.cell_type == "code")
        assert install_addresses(first_code.source) == [repo_url()], (
            f"{path.name}: the first code cell must `pip install git+{repo_url()}`, it has:\n{first_code.source}"
        )


def test_readme_installs_from_repo_url():
    addresses = install_addresses((ROOT / "README.md").read_text(encoding="utf-8"))
    assert addresses and set(addresses) == {repo_url()}, addresses


def written_colab_links() -> list[tuple[str, re.Match]]:
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    texts |= {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md")}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = read_notebook(path).cells
        texts[str(path.relative_to(ROOT))] = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return [(name, match) for name, text in texts.items() for match in COLAB.finditer(text)]


def test_written_colab_links_open_this_repository_and_existing_notebooks():
    links = written_colab_links()
    assert links, "no Colab link in the README or on the pages"
    wrong = []
    for name, match in links:
        owner, repo, path = match.groups()
        if f"https://github.com/{owner}/{repo}" != repo_url():
            wrong.append(f"{name}: {match.group(0)} is not in {repo_url()}")
        elif not (ROOT / path).is_file():
            wrong.append(f"{name}: {match.group(0)} opens {path}, which does not exist")
    assert not wrong, "\n".join(wrong)
