"""What the typeset formulas weigh in a built site: the numbers the benchmark page's section on
formulas quotes, measured from the files Pages would send (gzip level 6, as
scripts/serve_like_pages.py sends them). tests/docs/test_formula_cost_claims.py checks that the
page says what this measures.

    python scripts/formula_cost.py SITE_DIR [--page chapters/12-tiled-attention/]

- formulas and pages: every typeset formula (one ``span.katex`` each) on every page of both
  languages, and how many pages have one;
- the stylesheet: katex.min.css as sent;
- one page (chapter 12 in Russian by default): its formulas, its HTML as sent, and the same page
  with every formula put back as the TeX it was typeset from (``$...$`` / ``$$...$$``, the text of
  its MathML twin's annotation), as bytes and as elements. Both are serialized the same way (lxml),
  so the difference is the formulas' markup and nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lxml.etree
import lxml.html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.serve_like_pages import compress, transfer_bytes  # noqa: E402

STYLESHEET = Path("assets/vendor/katex/katex.min.css")
PAGE = "chapters/12-tiled-attention/"
FORMULA = 'class="katex"'


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("index.html") if "assets" not in p.relative_to(site).parts)


def as_tex(tree) -> int:
    """Replaces every formula of ``tree`` with its TeX, in place; returns how many there were."""
    count = 0
    for katex in tree.xpath('//span[@class="katex"]'):
        tex = katex.xpath('string(.//annotation[@encoding="application/x-tex"])')
        display = katex.getparent() is not None and katex.getparent().get("class") == "katex-display"
        outer = katex
        if display:
            outer = katex.getparent()
            if outer.getparent() is not None and outer.getparent().get("class") == "math-display":
                outer = outer.getparent()
        text = f"$${tex}$$" if display else f"${tex}$"
        parent = outer.getparent()
        previous = outer.getprevious()
        tail = outer.tail or ""
        if previous is not None:
            previous.tail = (previous.tail or "") + text + tail
        else:
            parent.text = (parent.text or "") + text + tail
        parent.remove(outer)
        count += 1
    return count


def elements(tree) -> int:
    return sum(1 for _ in tree.iter(lxml.etree.Element))


def measure(site: Path, page: str = PAGE) -> dict:
    texts = {p: p.read_text(encoding="utf-8") for p in pages(site)}
    with_formulas = {p: t.count(FORMULA) for p, t in texts.items() if FORMULA in t}
    path = site / page / "index.html"
    tree = lxml.html.fromstring(path.read_bytes())
    typeset = lxml.html.tostring(tree, encoding="utf-8")
    typeset_elements = elements(tree)
    count = as_tex(tree)
    tex = lxml.html.tostring(tree, encoding="utf-8")
    return {
        "formulas": sum(with_formulas.values()),
        "pages": len(with_formulas),
        "stylesheet_kb": transfer_bytes(site / STYLESHEET) / 1024,
        "page_formulas": count,
        "page_kb": transfer_bytes(path) / 1024,
        "page_markup_kb": (len(compress(typeset)) - len(compress(tex))) / 1024,
        "page_elements": typeset_elements,
        "page_elements_as_tex": elements(tree),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--page", default=PAGE)
    args = parser.parse_args()
    if not (args.site / args.page / "index.html").is_file():
        parser.error(f"{args.site} has no page {args.page}")
    m = measure(args.site, args.page)
    print(f"{m['formulas']} formulas on {m['pages']} pages; katex.min.css {m['stylesheet_kb']:.1f} KB sent")
    print(
        f"{args.page}: {m['page_formulas']} formulas, {m['page_kb']:.1f} KB sent, "
        f"{m['page_markup_kb']:.1f} KB more than with the TeX as text; "
        f"{m['page_elements']} elements against {m['page_elements_as_tex']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
