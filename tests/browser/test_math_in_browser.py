"""Typeset formulas in Chromium (hooks/formulas.py): the fonts a formula asks for load from the site,
a display fraction stands tall with parentheses that grow with it, and on a 390-px phone a wide
display formula scrolls inside its own box instead of widening the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hooks.formulas import VENDOR
from tests.docs.helpers import DOCS

from .browsing import (
    DEFAULT_LANGUAGE,
    FORMULA_PAGE_BUDGET,
    Visit,
    built_page_paths,
    is_local,
    language_of_path,
    transfer_bytes,
)

# A first visit (cold cache) to a page with formulas, everything it loads, as Pages sends it (gzip).


def formula_paths(site: Path) -> list[str]:
    """The default language's pages with typeset formulas (the other language has the same TeX,
    tests/docs/test_math_twins.py)."""
    return [
        path
        for path in built_page_paths(site)
        if language_of_path(path) == DEFAULT_LANGUAGE
        and 'class="katex"' in (site / path / "index.html").read_text(encoding="utf-8")
    ]


# Heights in CSS px of each display fraction inside \left( ... \right), of its parentheses, of a
# plain parenthesis and of the body text's font size. A glyph's height is its box (the font's
# ascent and descent at its size): what KaTeX lays out.
FRACTIONS = r"""
async () => {
  await document.fonts.ready;
  const ink = (e) => {
    let top = Infinity, bottom = -Infinity;
    for (const el of [e, ...e.querySelectorAll("*")]) {
      const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
      if (!own && !el.matches(".frac-line, svg")) continue;
      const box = el.getBoundingClientRect();
      if (!box.height) continue;
      top = Math.min(top, box.top);
      bottom = Math.max(bottom, box.bottom);
    }
    return bottom - top;
  };
  const body = parseFloat(getComputedStyle(document.querySelector("article p")).fontSize);
  const plain = document.querySelector(".katex .mopen:not(.delimcenter):not(.nulldelimiter)");
  const fractions = [];
  for (const group of document.querySelectorAll(".katex-display .minner")) {
    const fraction = group.querySelector(".mfrac");
    const open = group.querySelector(":scope > .mopen"), close = group.querySelector(":scope > .mclose");
    if (!fraction || !open || !close || open.textContent.trim() !== "(") continue;
    fractions.push({ fraction: ink(fraction), open: ink(open), close: ink(close),
                     tex: group.closest(".katex").querySelector("annotation").textContent });
  }
  return { body, plain: plain ? ink(plain) : null, fractions };
}
"""


@pytest.fixture(scope="module")
def phone_visits(browsing, site_root):
    """The phone visits of the formula pages (tests/browser/conftest.py: a phone visit of a page
    with formulas also draws them all and waits for their fonts, FORMULAS); the site's own checks
    (test_site_in_browser.py) read the same visits."""
    paths = formula_paths(site_root)
    assert paths, "no page of the built site has a typeset formula"
    visits = browsing.visit_all(paths, device="phone")
    missing = [f"/{v.path}" for v in visits if v.formulas is None]
    assert not missing, f"phone visits that did not look at their formulas: {missing}"
    return visits


def test_every_font_a_formula_asks_for_loads_from_the_site(phone_visits, server):
    problems = []
    for visit in phone_visits:
        path, shown = visit.path, visit.formulas
        fonts = [url for url in visit.requests if url.endswith(".woff2")]
        outside = [u for u in fonts if not is_local(u) or server.file_of(u) is None]
        failed = [f for f in visit.failed if ".woff2" in f or ".css" in f]
        loaded = {face["family"] for face in shown["faces"] if face["status"] == "loaded"}
        broken = [face for face in shown["faces"] if face["status"] == "error"]
        missing = sorted({f for f in shown["used"] if f.startswith("KaTeX")} - loaded)
        not_katex = sorted(f for f in shown["used"] if not f.startswith("KaTeX"))
        if outside or failed or broken or missing or not_katex or not fonts:
            problems.append(
                f"/{path}: fonts requested {len(fonts)}, not from the site {outside}, failed {failed}, "
                f"faces in error {broken}, used but not loaded {missing}, glyphs in other fonts {not_katex}"
            )
    assert not problems, "\n".join(problems)


def first_visit_bytes(visit: Visit, server) -> int:
    """What the page asked for while it opened, and the fonts its formulas then asked for (not
    the figures the checks scrolled to in between)."""
    asked = visit.requests[: visit.loaded] + visit.requests[visit.inspected :]
    files = {server.file_of(url) for url in asked} - {None}
    return sum(transfer_bytes(file) for file in files)


def test_a_first_visit_to_a_formula_page_stays_light(phone_visits, server):
    """KaTeX's stylesheet and the fonts a page's formulas use come on top of the page: a cold visit
    (what the page loads when opened; notebook figures load lazily, when scrolled to) stays within
    450 KB with gzip. What it is made of, the benchmark page says (checked below)."""
    weights = {visit.path: first_visit_bytes(visit, server) for visit in phone_visits}
    heavy = {f"/{p}": f"{w / 1024:.0f} KB" for p, w in weights.items() if w > FORMULA_PAGE_BUDGET}
    assert not heavy, f"first visits over {FORMULA_PAGE_BUDGET // 1024} KB: {heavy}"


KATEX_FONTS = VENDOR / "fonts"  # as vendored, before the cut


NUMBERS_RU = {1: "одного", 2: "двух", 3: "трёх", 4: "четырёх", 5: "пяти", 6: "шести"}
NUMBERS_EN = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def kb(size: float) -> str:
    return f"{size / 1024:.0f}"


def test_the_benchmark_page_says_what_a_formula_page_loads(phone_visits, server):
    """The benchmark page's section on formulas quotes these visits: the fonts a page's formulas
    use (how many files, their KB as sent, their KB uncut), the heaviest first visit, and notebook
    13 with every figure scrolled into view (all of it, and the stylesheet and fonts in it)."""
    fonts, uncut, first, everything, formulas = {}, {}, {}, {}, {}
    for visit in phone_visits:
        files = {server.file_of(url) for url in visit.requests} - {None}
        used = [f for f in files if f.parent.name == "fonts" and f.suffix == ".woff2"]
        fonts[visit.path] = (len(used), sum(transfer_bytes(f) for f in used))
        uncut[visit.path] = sum((KATEX_FONTS / f.name).stat().st_size for f in used)
        first[visit.path] = first_visit_bytes(visit, server)
        everything[visit.path] = sum(transfer_bytes(f) for f in files)
        formulas[visit.path] = fonts[visit.path][1] + sum(
            transfer_bytes(f) for f in files if f.name == "katex.min.css"
        )
    heaviest = max(first, key=first.get)
    named = {
        "chapters/12-tiled-attention/": ("глава 12", "chapter 12"),
        "benchmark/": ("эта страница", "this page"),
    }
    assert heaviest in named, f"the heaviest first visit is now /{heaviest}: name it here and on the page"
    notebook = "notebooks/13_induction_heads/"
    counts = sorted(n for n, _ in fonts.values())
    words = {
        "ru": [
            f"шрифты, которые нужны её формулам, — {kb(min(b for _, b in fonts.values()))}–"
            f"{kb(max(b for _, b in fonts.values()))} КБ (от {NUMBERS_RU[counts[0]]} до {NUMBERS_RU[counts[-1]]} файлов)",
            f"целиком они весили бы {kb(min(uncut.values()))}–{kb(max(uncut.values()))} КБ на страницу",
        ],
        "en": [
            f"the fonts its formulas use, {kb(min(b for _, b in fonts.values()))}–"
            f"{kb(max(b for _, b in fonts.values()))} KB ({NUMBERS_EN[counts[0]]} to {NUMBERS_EN[counts[-1]]} files)",
            f"{kb(min(uncut.values()))}–{kb(max(uncut.values()))} KB a page uncut",
        ],
    }
    # What a whole visit weighs moves by a percent or two from run to run (which lazy images the
    # visit reaches before it counts): these numbers are said to within 3 %.
    about = {
        "ru": [
            (rf"самая тяжёлая, {named[heaviest][0]}, — около (\d+) КБ", [first[heaviest]]),
            (r"блокнот 13 набирает (\d+) КБ, из них (\d+) КБ", [everything[notebook], formulas[notebook]]),
        ],
        "en": [
            (rf"the heaviest, {named[heaviest][1]}, about (\d+) KB", [first[heaviest]]),
            (r"notebook 13 comes to (\d+) KB, (\d+) KB of it", [everything[notebook], formulas[notebook]]),
        ],
    }
    missing = []
    for language, said in words.items():
        text = " ".join((DOCS / f"benchmark.{language}.md").read_text(encoding="utf-8").split())
        missing += [f"benchmark.{language}.md: {s!r}" for s in said if s not in text]
        for pattern, sizes in about[language]:
            found = re.search(pattern, text)
            claimed = [int(n) * 1024 for n in found.groups()] if found else []
            if not found or any(abs(c - m) > 0.03 * m for c, m in zip(claimed, sizes, strict=True)):
                missing.append(f"benchmark.{language}.md: {pattern!r} with {[kb(m) for m in sizes]} KB")
    assert not missing, (
        "the page does not say what the visits measured:\n"
        + "\n".join(missing)
        + (
            f"\nfonts (files, bytes) {sorted(set(fonts.values()))}, uncut {sorted(set(uncut.values()))}, "
            f"first visits {sorted(first.items(), key=lambda kv: -kv[1])[:3]}, notebook 13 {everything[notebook]} "
            f"of which formulas {formulas[notebook]}"
        )
    )


def test_wide_display_formulas_scroll_in_their_own_box_on_a_phone(phone_visits):
    problems = []
    for visit in phone_visits:
        path, shown = visit.path, visit.formulas
        if shown["sideways"] > 1:
            problems.append(f"/{path}: the page is {shown['sideways']} px wider than the phone")
        for number, box in enumerate(shown["boxes"], start=1):
            wide = box["scrollWidth"] > box["clientWidth"] + 1
            if box["right"] > shown["width"] + 1 or (wide and box["overflowX"] not in ("auto", "scroll")):
                problems.append(f"/{path}: display formula {number} does not fit or scroll: {box}")
            if not box["focusable"]:
                problems.append(f"/{path}: display formula {number} cannot be scrolled from the keyboard")
    assert not problems, "\n".join(problems)


def test_a_display_fraction_stands_tall_and_its_parentheses_grow_with_it(browsing, server, site_root):
    """On the first page with \\left( \\frac{..}{..} \\right): the fraction at least twice the body
    text's font size, its parentheses (nearly) as tall as it and far taller than a plain one."""
    candidates = [
        path
        for path in formula_paths(site_root)
        if "delimcenter" in (site_root / path / "index.html").read_text(encoding="utf-8")
    ]
    assert candidates, "no display formula with \\left( ... \\right) on the site"
    path = candidates[0]
    shown = browsing.look([path], FRACTIONS)[0].info
    assert shown["fractions"], f"/{path}: no display fraction in \\left( ... \\right) found"
    assert shown["plain"], f"/{path}: no plain parenthesis to compare with"
    for found in shown["fractions"]:
        where = f"/{path}, {found['tex']!r}: {found}, body {shown['body']} px, plain ( {shown['plain']} px"
        assert found["fraction"] >= 2 * shown["body"], f"the fraction is not twice the body text: {where}"
        for side in ("open", "close"):
            assert found[side] >= 0.8 * found["fraction"], f"the parenthesis does not grow with it: {where}"
            assert found[side] >= 1.8 * shown["plain"], (
                f"the parenthesis is not taller than a plain one: {where}"
            )
