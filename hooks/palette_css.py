"""Material's palette switch, without restyling every element twice on each page load.

Why this hook exists (material has no option for it): material's palette.css turns transitions
off with ``[data-md-color-switching] *`` (and its ``:before``, ``:after``), and material's palette
script sets ``data-md-color-switching`` on ``<body>`` as every page loads (it applies the
palette) and removes it a frame later. A selector that keys every element on an attribute of
``<body>`` makes each of those two changes restyle every element of the page: on notebook 05, on
a phone with the CPU slowed 4×, the rule makes the style work of a load 1.7 times as long
(``scripts/style_cost.py SITE notebooks/05_seeing_heads/ --drop data-md-color-switching``:
1,080 → 640 ms, median of 6), most of it inside the long task that runs material's bundle.

Here that rule is taken out of the built palette.css with tinycss2 (the file keeps its name: its
text still depends on material's version only), in ``on_post_build``, so ``mkdocs serve`` gets
it too. What the rule was for is kept, for the moment it is needed: when the reader switches
the palette, docs/assets/javascripts/palette.js marks ``<html>`` with ``data-palette-switching``
for two frames, and extra.css turns transitions off under that mark, so that colours change at
once and do not fade element by element. tests/browser check both in Chromium.
"""

from __future__ import annotations

from pathlib import Path

import tinycss2
from mkdocs.exceptions import PluginError

PALETTE_CSS = "assets/stylesheets/palette.*.min.css"
SWITCHING = "data-md-color-switching"


def split_selectors(prelude: list) -> list[list]:
    """A rule's prelude split at its top-level commas."""
    parts: list[list] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def without(css: str, fragment: str) -> str:
    """``css`` without the selectors that contain ``fragment`` (a rule left with none goes), also
    inside ``@media`` and ``@supports``; comments go, the rest is serialized as it was."""

    def keep(rules):
        out = []
        for rule in rules:
            if rule.type == "qualified-rule":
                selectors = (tinycss2.serialize(s).strip() for s in split_selectors(rule.prelude))
                kept = [text for text in selectors if fragment not in text]
                if kept:
                    out.append(f"{','.join(kept)}{{{tinycss2.serialize(rule.content)}}}")
            elif (
                rule.type == "at-rule"
                and rule.content is not None
                and rule.lower_at_keyword in ("media", "supports")
            ):
                inner = keep(tinycss2.parse_rule_list(rule.content, True, True))
                out.append(f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}{{{''.join(inner)}}}")
            else:
                out.append(tinycss2.serialize([rule]))
        return out

    return "".join(keep(tinycss2.parse_stylesheet(css, True, True)))


def on_post_build(config):
    found = sorted(Path(config.site_dir).glob(PALETTE_CSS))
    if len(found) != 1:
        raise PluginError(
            f"hooks/palette_css.py: expected one {PALETTE_CSS} in {config.site_dir}, found {[p.name for p in found]}"
        )
    path = found[0]
    css = path.read_text(encoding="utf-8")
    if SWITCHING not in css:
        return  # already rewritten (mkdocs serve rebuilds into the same folder)
    path.write_text(without(css, SWITCHING), encoding="utf-8")
