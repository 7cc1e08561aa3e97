"""scripts/build_offline.py: the offline copy converted from a built site (directory URLs)."""

from __future__ import annotations

import json

import pytest

from scripts.build_offline import SHIM, convert, file_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("../04-masks/", "../04-masks/index.html"),
        ("../04-masks/#causal-mask", "../04-masks/index.html#causal-mask"),
        ("./", "./index.html"),
        ("..", "../index.html"),
        ("../..", "../../index.html"),
        ("en/chapters/03-multi-head/?h=x", "en/chapters/03-multi-head/index.html?h=x"),
        ("../../assets/stylesheets/extra.css", "../../assets/stylesheets/extra.css"),
        ("figure-1.png", "figure-1.png"),
        ("#top", "#top"),
        ("https://example.org/a/", "https://example.org/a/"),
        ("//cdn.example.org/a/", "//cdn.example.org/a/"),
        ("mailto:a@b.c", "mailto:a@b.c"),
        ("data:image/png;base64,AAAA", "data:image/png;base64,AAAA"),
    ],
)
def test_file_url_names_the_index_of_a_folder_and_leaves_the_rest(url, expected):
    assert file_url(url) == expected


def test_convert_rewrites_pages_and_search_index_and_loads_the_shim(tmp_path):
    site = tmp_path / "site"
    (site / "chapters" / "one").mkdir(parents=True)
    (site / "assets" / "vendor" / "iframe-worker").mkdir(parents=True)
    (site / SHIM).write_text("// shim")
    (site / "index.html").write_text('<html><head></head><body><a href="chapters/one/#x">1</a></body></html>')
    (site / "chapters" / "one" / "index.html").write_text(
        '<html><head><link rel="stylesheet" href="../../assets/a.css"></head>'
        '<body><a href="../..">home</a><img src="fig.png"></body></html>'
    )
    (site / "search").mkdir()
    docs = [{"location": "", "title": "home"}, {"location": "#intro", "title": "intro"}]
    docs += [{"location": "chapters/one/", "title": "one"}, {"location": "chapters/one/#x", "title": "x"}]
    (site / "search" / "search_index.json").write_text(json.dumps({"config": {}, "docs": docs}))
    (site / "old.zip").write_text("not copied")
    copy = tmp_path / "copy"
    convert(site, copy)
    assert not (copy / "old.zip").exists()
    home = (copy / "index.html").read_text()
    assert 'href="chapters/one/index.html#x"' in home
    assert f'<script src="{SHIM}"></script></head>' in home
    page = (copy / "chapters" / "one" / "index.html").read_text()
    assert (
        'href="../../index.html"' in page and 'src="fig.png"' in page and 'href="../../assets/a.css"' in page
    )
    assert f'<script src="../../{SHIM}"></script></head>' in page
    script = (copy / "search" / "search_index.js").read_text()
    assert script.startswith("var __index = ")
    index = json.loads(script.removeprefix("var __index = "))
    assert [d["location"] for d in index["docs"]] == [
        "index.html",
        "index.html#intro",
        "chapters/one/index.html",
        "chapters/one/index.html#x",
    ]
    assert json.loads((copy / "search" / "search_index.json").read_text()) == index
