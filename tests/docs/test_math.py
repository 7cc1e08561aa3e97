"""Formulas are typeset when the site is built (hooks/formulas.py): the built pages show no TeX,
carry no math script, and load KaTeX's stylesheet and fonts from the site, only where formulas are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from bs4.element import CData, NavigableString

from hooks.formulas import STYLESHEET, VENDOR, Renderer, render_notebook, render_page

from .helpers import DOCS, mkdocs_config

# What TeX looks like when it was not typeset: a command, a braced script, a $...$ pair.
RAW_TEX = re.compile(
    r"\\(?:frac|sqrt|operatorname|mathrm|text|left|right|sum|top|cdot|approx|begin|end)\b"
    r"|[\^_]\{|\\[()\[\]]|\$\$|(?<![\w$])\$(?=\S)[^$\n]{1,200}?(?<=\S)\$(?![\w$])"
)
# Where TeX-looking text is the reader's to see as written: code, printed output, the MathML twin
# (its annotation holds the formula's TeX for assistive technology), scripts and styles.
NOT_PROSE = [
    "code",
    "pre",
    "script",
    "style",
    "svg",
    "textarea",
    "kbd",
    ".katex-mathml",
    ".highlight",
    ".clipboard-copy-txt",
    ".jp-InputArea-editor",
    ".jp-OutputArea",
]


@pytest.fixture(scope="module")
def render():
    return Renderer()


# The hook itself ----------------------------------------------------------------------------------
def test_page_formulas_become_katex_with_a_mathml_twin(render):
    html = (
        '<p>a <span class="arithmatex">\\(a_i &lt; b\\)</span> b</p>\n'
        '<div class="arithmatex">\\[\\frac{QK^\\top}{\\sqrt{\\mathrm{hs}}}\\]</div>'
    )
    out = render_page(html, render)
    soup = BeautifulSoup(out, "lxml")
    assert "arithmatex" not in out and "\\(" not in out
    inline, display = soup.select(".katex")
    assert inline.find_parent(class_="math-display") is None
    assert display.find_parent(class_="math-display")["tabindex"] == "0"
    assert inline.select_one("annotation").text == "a_i < b"  # the "<" unescaped before KaTeX
    assert display.select_one("math")["display"] == "block"
    assert display.select_one(".mfrac .sqrt") is not None


def test_notebook_markdown_formulas_are_typeset_and_code_is_left_alone(render):
    html = (
        '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput" data-mime-type="text/markdown">\n'
        "<p>Let $x_i &lt; 1$ and <code>$y$</code>.</p>\n<p>$$\n\\sum_{j=1}^{T} e^{x_j}\n$$</p>\n"
        "<p>It costs $5 and $p \\approx 0{,}5$.</p>\n</div>\n"
        '<div class="jp-Cell jp-CodeCell"><pre>print("$x$")</pre>'
        '<div class="jp-RenderedText"><pre>$x$ = 1</pre></div></div>'
    )
    out = render_notebook(html, render)
    soup = BeautifulSoup(out, "lxml")
    annotations = [a.text for a in soup.select("annotation")]
    assert annotations == ["x_i < 1", "\\sum_{j=1}^{T} e^{x_j}", "p \\approx 0{,}5"]
    assert soup.select_one(".math-display .katex-display") is not None
    assert soup.select_one(".math-display").parent.name != "p", "a display formula left inside a <p>"
    assert "<code>$y$</code>" in out and 'print("$x$")' in out and "<pre>$x$ = 1</pre>" in out
    assert "It costs $5 and" in out


def test_tex_katex_cannot_typeset_is_an_error_naming_it(render):
    with pytest.raises(ValueError, match=r"\\frac\{1\}"):
        render("\\frac{1}", False)
    with pytest.raises(ValueError, match="KaTeX cannot typeset"):  # strict: Cyrillic outside \text{}
        render("x_{макс}", False)
    with pytest.raises(TypeError, match="tex must be a str, got int"):
        render(1, False)


def test_the_vendored_katex_is_the_version_its_readme_names():
    readme = (VENDOR / "README.txt").read_text(encoding="utf-8")
    version = re.match(r"KaTeX (\d+\.\d+\.\d+),", readme).group(1)
    assert f'version:"{version}"' in (VENDOR / "katex.min.js").read_text(encoding="utf-8")
    assert "MIT License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
    assert "assets/vendor/katex/katex.min.js" in mkdocs_config()["exclude_docs"], (
        "the build-time script is served"
    )


# The built site ----------------------------------------------------------------------------------
def built_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("index.html") if "assets" not in p.relative_to(site).parts)


@pytest.fixture(scope="module")
def pages_html(built_site) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in built_pages(built_site)}


@pytest.fixture(scope="module")
def pages_soup(pages_html) -> dict[Path, BeautifulSoup]:
    """Every page parsed once for the checks below (none of them changes a page)."""
    return {p: BeautifulSoup(text, "lxml") for p, text in pages_html.items()}


@pytest.fixture(scope="module")
def formula_pages(pages_html) -> list[Path]:
    return [p for p, text in pages_html.items() if 'class="katex"' in text]


def test_the_site_has_typeset_formulas_in_pages_and_notebooks(built_site, formula_pages):
    kinds = {"notebooks" in p.relative_to(built_site).parts for p in formula_pages}
    assert kinds == {True, False}, (
        f"formulas only in {'notebooks' if True in kinds else 'pages'}: {formula_pages}"
    )


def test_no_tex_in_what_a_reader_sees(built_site, pages_soup):
    shown = []
    for path, soup in pages_soup.items():
        article = soup.select_one("article")
        if article is None:
            continue
        hidden = {id(element) for element in article.select(", ".join(NOT_PROSE))}
        text = "\n".join(
            string
            for string in article.find_all(string=True)
            if type(string) in (NavigableString, CData) and not any(id(p) in hidden for p in string.parents)
        )
        for line in text.splitlines():
            match = RAW_TEX.search(line)
            if match:
                shown.append(
                    f"/{path.parent.relative_to(built_site)}/: {match.group(0)!r} in {line.strip()[:120]!r}"
                )
    assert not shown, "TeX shown as text (not typeset):\n" + "\n".join(shown)


def test_raw_tex_pattern_sees_what_it_must():
    for untypeset in ["a \\frac{1}{2}", "x^{2}", "$x_i$ is", "\\(x\\)", "$$", "K^\\top"]:
        assert RAW_TEX.search(untypeset), untypeset
    for prose in ["costs $5 and $6", "a_b", "x^2 in code"]:
        assert not RAW_TEX.search(prose), prose


def test_no_renderer_error_and_no_math_script(pages_soup):
    problems = []
    for path, soup in pages_soup.items():
        if soup.select(".katex-error"):
            problems.append(f"{path}: KaTeX error element")
        for script in soup.select("script"):
            source = (script.get("src") or "") + (script.get("type") or "") + script.text[:2000]
            if re.search(r"mathjax|katex|math/tex", source, re.I):
                problems.append(f"{path}: math script {source[:80]!r}")
    assert not problems, "\n".join(problems)


def test_katex_stylesheet_only_on_pages_with_formulas(built_site, pages_html, pages_soup):
    wrong = []
    for path, soup in pages_soup.items():
        links = [link["href"] for link in soup.select('link[rel="stylesheet"]') if "katex" in link["href"]]
        has_math = soup.select_one(".katex") is not None
        if has_math != bool(links):
            wrong.append(f"{path}: formulas {has_math}, KaTeX stylesheet {links}")
        for href in links:  # relative to the page, and there
            if not (path.parent / href).resolve().is_file():
                wrong.append(f"{path}: {href} is not in the site")
    assert not wrong, "\n".join(wrong)
    for home in (built_site / "index.html", built_site / "en" / "index.html"):
        assert "katex.min.css" not in pages_html[home], f"{home} loads KaTeX's stylesheet and so its fonts"


def test_every_font_the_stylesheet_names_is_served(built_site):
    css = built_site / STYLESHEET
    urls = re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8"))
    assert len(urls) >= 20, f"{css} names {len(urls)} fonts"
    missing = [u for u in urls if not (css.parent / u.strip("\"'")).is_file()]
    assert not missing, f"fonts KaTeX's stylesheet asks for that the site lacks: {missing}"
    assert all(u.endswith(".woff2") for u in urls), "only woff2 is vendored"
    assert not (built_site / "assets/vendor/katex/katex.min.js").exists(), "the build-time script is served"


def test_formula_pages_are_the_pages_whose_sources_have_formulas(built_site, formula_pages):
    """A page source with $...$ whose page shows no typeset formula lost its math on the way."""
    from .helpers import pages, strip_fenced, url_path

    lost = []
    for src in pages():
        text = re.sub(r"`[^`\n]*`", "", strip_fenced(src.read_text(encoding="utf-8")))
        if re.search(r"\$[^$\s][^$\n]*\$|^\$\$", text, re.M):
            built = built_site / url_path(src) / "index.html"
            if built not in formula_pages:
                lost.append(str(src.relative_to(DOCS)))
    assert not lost, f"pages with TeX in their source but no typeset formula: {lost}"


def test_search_indexes_a_formula_once(render):
    """material's search reads the glyphs, not the MathML twin too ("TT") nor the TeX."""
    from material.plugins.search.plugin import Parser

    parser = Parser()
    transposed = render(r"K^\top", False)
    parser.feed(f"<p>memory grows with {render('T', False)} and {transposed} only</p>")
    parser.close()
    text = "".join(part for section in parser.data for part in section.text)
    assert text == "<p>memory grows with T and K⊤ only</p>", text


def test_served_fonts_keep_every_character_the_formulas_show(built_site, pages_html, pages_soup):
    """The hook cuts KaTeX's fonts to the formulas' characters: none a formula shows may be lost."""
    import io

    from fontTools.ttLib import TTFont

    shown = set()
    for path, text in pages_html.items():
        if 'class="katex"' in text:
            for glyphs in pages_soup[path].select(".katex-html"):
                shown.update(glyphs.get_text())
    assert {"T", "(", "="} <= shown, "no formula characters found on the site"
    lost, cut = {}, 0
    for source in sorted((VENDOR / "fonts").glob("*.woff2")):
        served = built_site / Path(STYLESHEET).parent / "fonts" / source.name
        had = set(map(chr, TTFont(io.BytesIO(source.read_bytes())).getBestCmap())) & shown
        has = set(map(chr, TTFont(io.BytesIO(served.read_bytes())).getBestCmap()))
        if had - has:
            lost[source.name] = "".join(sorted(had - has))
        cut += served.stat().st_size < source.stat().st_size
    assert not lost, f"characters the formulas show that the served fonts lost: {lost}"
    assert cut == len(list((VENDOR / "fonts").glob("*.woff2"))), "not every served font was cut"


def test_an_off_screen_display_formula_keeps_its_height(render):
    """content-visibility skips a display formula off screen; its box keeps KaTeX's height."""
    from hooks.formulas import display_box

    def height(tex: str) -> float:
        box = display_box(render(tex, True))
        return float(re.search(r"contain-intrinsic-block-size:auto ([\d.]+)em", box).group(1))

    line = height("x")
    assert line == pytest.approx(1.2 * 1.21, abs=0.01)  # one line of KaTeX's text
    assert height(r"\begin{pmatrix}a\\b\\c\end{pmatrix}") > 2.5 * line
    assert height(r"\frac{QK^\top}{\sqrt{\mathrm{hs}}}") > 1.8 * line
