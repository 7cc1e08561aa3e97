"""One search index per language.

Why this hook exists: mkdocs-static-i18n builds the languages one after the other into one site,
and the search plugin writes ``search/search_index.json`` at each pass, so the last language's
index overwrites the first's (or, with ``reconfigure_search``, one index mixes both languages and
an English query returns Russian pages). Here each language keeps its own index: the default
language's at ``search/``, every other language's at ``<locale>/search/`` with its locations made
relative to that language's root, and that language's pages load it (material fetches the index
from ``__config.base``).

It also makes a query find other forms of its words (see ``on_post_page``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority

_indexes: dict[str, str] = {}


def _language(config) -> tuple[str, bool]:
    i18n = config.plugins["i18n"]
    default = i18n.default_language
    return i18n.current_language, i18n.current_language == default


@event_priority(-50)  # after the search plugin wrote this pass's index, before i18n's next pass
def on_post_build(config):
    language, is_default = _language(config)
    root_index = Path(config.site_dir) / "search" / "search_index.json"
    data = root_index.read_text(encoding="utf-8")
    if is_default:
        _indexes[language] = data
        return
    index = json.loads(data)
    prefix = f"{language}/"
    index["docs"] = [
        {**doc, "location": doc["location"][len(prefix):]}
        for doc in index["docs"]
        if doc["location"].startswith(prefix)
    ]
    index["config"]["lang"] = [language]
    target = Path(config.site_dir) / language / "search" / "search_index.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    default_data = next(iter(_indexes.values()), None)
    if default_data is not None:  # the default language's pass ran first: put its index back
        root_index.write_text(default_data, encoding="utf-8")


_BASE = re.compile(r'"base": "([^"]*)"')
_WORKER = re.compile(r'"search": "([^"]*/workers/)(search\.[0-9a-f]+\.min\.js)"')


def on_post_page(output, page, config):
    # material's worker, wrapped so that a query word also matches its stem
    # (docs/assets/javascripts/workers/stemming.js says why).
    output = _WORKER.sub(lambda m: f'"search": "{m.group(1)}stemming.js?worker={m.group(2)}"', output, count=1)
    language, is_default = _language(config)
    if is_default:
        return output
    return _BASE.sub(lambda m: f'"base": "{m.group(1)}/{language}/"', output, count=1)
