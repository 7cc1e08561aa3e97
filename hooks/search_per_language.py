"""One search index per language.

Why this hook exists: mkdocs-static-i18n builds the languages one after the other into one site
and, at the end, writes one ``search/search_index.json`` holding every language's pages, so an
English query returns Russian pages and the other way round. Here that index is split: the
default language's pages stay at ``search/``, every other language's go to ``<locale>/search/``
with their locations made relative to that language's root, and that language's pages load it
(material fetches the index from ``__config.base``, set here to the language's root).

It also makes a query find other forms of its words (see ``on_post_page``), and in the offline
copy (material's ``offline`` plugin, which inlines the index into ``search/search_index.js`` for
pages opened from files) writes that script for every language's own index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority


@event_priority(-110)  # after mkdocs-static-i18n (-100) has written the index of all languages
def on_post_build(config):
    i18n = config.plugins["i18n"]
    others = [lang for lang in i18n.build_languages if lang != i18n.default_language]
    root_index = Path(config.site_dir) / "search" / "search_index.json"
    index = json.loads(root_index.read_text(encoding="utf-8"))
    docs = index["docs"]

    offline = _offline(config)

    def write(path: Path, entries: list, langs: list) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**index, "config": {**index["config"], "lang": langs}, "docs": entries}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        path.write_text(text, encoding="utf-8")
        if offline:
            path.with_suffix(".js").write_text(f"var __index = {text}", encoding="utf-8")

    for language in others:
        prefix = f"{language}/"
        entries = [
            {**d, "location": d["location"][len(prefix) :]} for d in docs if d["location"].startswith(prefix)
        ]
        write(Path(config.site_dir) / language / "search" / "search_index.json", entries, [language])
    own = [d for d in docs if not d["location"].startswith(tuple(f"{lang}/" for lang in others))]
    write(root_index, own, index["config"]["lang"])


_BASE = re.compile(r'"base": "([^"]*)"')
_WORKER = re.compile(r'"search": "([^"]*/workers/)(search\.[0-9a-f]+\.min\.js)"')


def _offline(config) -> bool:
    return "material/offline" in config.plugins and config.plugins["material/offline"].config.enabled


def on_post_page(output, page, config):
    # material's worker, wrapped so that a query word also matches its stem
    # (docs/assets/javascripts/workers/stemming.js says why).
    output = _WORKER.sub(
        lambda m: f'"search": "{m.group(1)}stemming.js?worker={m.group(2)}"', output, count=1
    )
    return _with_base(output, config)


def _with_base(output: str, config) -> str:
    i18n = config.plugins["i18n"]
    language = i18n.current_language
    if language == i18n.default_language:
        return output
    return _BASE.sub(lambda m: f'"base": "{m.group(1)}/{language}/"', output, count=1)
