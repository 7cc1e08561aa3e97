"""Pages that make no request outside the site and load mermaid only where it is used.

Why this hook exists:

1. With ``repo_url`` set, material's header asks api.github.com for the repository's stars and
   forks on every page (``data-md-component="source"``): a request outside the site that fails
   offline. The link to the repository stays; only that lookup goes.
2. mkdocs-static-i18n points the ``<link rel="alternate" hreflang>`` tags of a page at the same
   page in the other languages; material then fetches ``sitemap.xml`` under each of those
   addresses (it expects language roots) and gets two 404s per page. The language switcher in the
   header does not use these tags, so they are dropped.
3. The vendored mermaid (3.6 MB) is needed only on pages with a diagram: other pages do not load it.
"""

from __future__ import annotations

import re

_SOURCE_LOOKUP = re.compile(r'\sdata-md-component="source"')
_ALTERNATE = re.compile(r'[ \t]*<link rel="alternate" href="[^"]*" hreflang="[^"]*">\s*\n?')
_MERMAID_SCRIPT = re.compile(
    r'[ \t]*<script src="[^"]*assets/vendor/mermaid/mermaid\.min\.js"></script>\s*\n?'
)


def on_post_page(output, page, config):
    output = _SOURCE_LOOKUP.sub("", output)
    output = _ALTERNATE.sub("", output)
    if 'class="mermaid"' not in output:
        output = _MERMAID_SCRIPT.sub("", output)
    return output
