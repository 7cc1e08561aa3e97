"""The pruning of nbconvert's CSS (hooks/notebook_css.py) on small stylesheets whose answer is known."""

from hooks.notebook_css import named_classes, prune, unwrap_unstyled_tokens


def test_rules_for_absent_classes_are_dropped():
    css = ".jupyter-wrapper .jp-Cell{margin:0}.jupyter-wrapper .jp-Toolbar{color:red}"
    assert prune(css, {"jupyter-wrapper", "jp-Cell"}) == ".jupyter-wrapper .jp-Cell{margin:0}"


def test_only_the_custom_properties_in_use_are_kept():
    css = ".w{--a:var(--b);--b:1px;--unused:2px}.w .x{padding:var(--a)}"
    assert prune(css, {"w", "x"}) == ".w{--a:var(--b);--b:1px}\n.w .x{padding:var(--a)}"


def test_selection_rules_are_dropped_but_a_class_named_selection_is_not():
    css = (
        ".w ::selection{background:blue}.w ::-moz-selection{background:blue}"
        ".w ::SELECTION,.w p{color:red}.w .selection{color:green}"
    )
    assert prune(css, {"w", "selection"}) == ".w p{color:red}\n.w .selection{color:green}"


def test_conditional_at_rules_keep_what_still_matches():
    css = "@media (max-width:10px){.w .x{margin:0}.w .gone{margin:0}.w ::selection{color:red}}"
    assert prune(css, {"w", "x"}) == "@media (max-width:10px){.w .x{margin:0}}"


def test_unstyled_token_spans_become_their_text_inside_code_blocks_only():
    html = (
        '<p><span class="n">kept outside</span></p>'
        '<div class="highlight-ipynb hl-python"><pre><span></span><span class="kn">import</span>'
        '<span class="w"> </span><span class="nn">math</span><span class="o">&lt;</span></pre></div>'
    )
    assert unwrap_unstyled_tokens(html, {"kn", "o"}) == (
        '<p><span class="n">kept outside</span></p>'
        '<div class="highlight-ipynb hl-python"><pre><span class="kn">import</span>'
        ' math<span class="o">&lt;</span></pre></div>'
    )


def test_a_span_with_any_styled_class_stays():
    html = '<div class="highlight-ipynb"><pre><span class="n err">x</span></pre></div>'
    assert unwrap_unstyled_tokens(html, {"err"}) == html


def test_named_classes_reads_selectors_inside_functions_and_not_numbers():
    css = ".a :is(.c, .c1){opacity:.5} .b-x::before{margin:.6em}"
    assert named_classes(css) == {"a", "c", "c1", "b-x"}
