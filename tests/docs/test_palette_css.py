"""hooks/palette_css.py: material's palette.css without the rule that restyles every element."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError

from hooks.palette_css import on_post_build, without

MATERIAL_LIKE = (
    '@charset "UTF-8";[data-md-color-switching] *,[data-md-color-switching] :after{transition-duration:0s!important}'
    "[data-md-color-scheme=slate]{--md-x:1}@media screen{[data-md-color-switching] a,b{c:d}}"
    "/*# sourceMappingURL=palette.min.css.map*/"
)


def test_without_drops_only_the_selectors_that_name_the_fragment():
    css = ":is(a, b) p, .x ::selection{color:red}@media (x){.y ::selection{a:b}.z{c:d}}"
    assert without(css, "::selection") == ":is(a, b) p{color:red}@media (x){.z{c:d}}"


def test_without_keeps_what_it_does_not_name():
    kept = without(MATERIAL_LIKE, "data-md-color-switching")
    assert kept == '@charset "UTF-8";[data-md-color-scheme=slate]{--md-x:1}@media screen{b{c:d}}'


def site_with(tmp_path, *names: str) -> SimpleNamespace:
    folder = tmp_path / "assets" / "stylesheets"
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(MATERIAL_LIKE, encoding="utf-8")
    return SimpleNamespace(site_dir=str(tmp_path))


def test_the_built_palette_css_loses_the_switching_rule(tmp_path):
    config = site_with(tmp_path, "palette.0123abcd.min.css")
    on_post_build(config)
    text = (tmp_path / "assets/stylesheets/palette.0123abcd.min.css").read_text(encoding="utf-8")
    assert "data-md-color-switching" not in text and "[data-md-color-scheme=slate]{--md-x:1}" in text
    on_post_build(config)  # a second pass (mkdocs serve) leaves it as it is
    assert (tmp_path / "assets/stylesheets/palette.0123abcd.min.css").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("names", [(), ("palette.aa.min.css", "palette.bb.min.css")])
def test_no_or_two_palette_stylesheets_is_an_error_naming_them(tmp_path, names):
    with pytest.raises(PluginError, match="palette") as error:
        on_post_build(site_with(tmp_path, *names))
    for name in names:
        assert name in str(error.value)
