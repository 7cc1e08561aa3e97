"""The attention view's HTML: deterministic, self-contained, faithful to the weights, strict on input."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import torch

from simple_llm import AttentionView, MultiHeadAttention, attention_view
from simple_llm.view import MAX_PAYLOAD_BYTES


def weights(*shape: int) -> torch.Tensor:
    return torch.softmax(torch.randn(*shape), dim=-1)


def tokens(T: int) -> list[str]:
    return [f"t{i}" for i in range(T)]


class Elements(HTMLParser):
    """Start tags with their attributes, and the text of every <script>, in document order."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "script":
            self._script = attrs

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:  # an empty script
            self.scripts.append((self._script, ""))
            self._script = None

    def having(self, tag: str, **attrs) -> list[dict]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def payload(self) -> dict:
        return next(json.loads(text) for a, text in self.scripts if a.get("class") == "sav-data")


def test_same_input_same_html_and_id_from_content():
    w = weights(2, 5, 5)
    first, second = attention_view(w, tokens(5)).html, attention_view(w.clone(), tokens(5)).html
    assert first == second
    other = attention_view(weights(2, 5, 5), tokens(5)).html
    ids = [re.search(r'id="(sav-[0-9a-f]{12})"', h).group(1) for h in (first, other)]
    assert ids[0] != ids[1]
    assert attention_view(w, tokens(5), lang="en").html != first  # labels are part of the content


def test_root_element_and_language():
    html = attention_view(weights(1, 3, 3), tokens(3), lang="en").html
    root_tag, root = Elements(html).tags[0]
    assert root_tag == "div" and "data-attention-view" in root and root["lang"] == "en"
    assert "Head 0" in html and "Голова" not in html
    ru = attention_view(weights(1, 3, 3), tokens(3)).html
    assert "Голова 0" in ru and "Head 0" not in ru


def test_self_contained_no_external_resources():
    html = attention_view([weights(2, 4, 4), weights(3, 4, 4)], tokens(4)).html
    parsed = Elements(html)
    assert [t for t, _ in parsed.tags].count("script") == 3
    assert all("src" not in attrs for _, attrs in parsed.tags)
    assert not re.search(r"https?://|//cdn|import\(|require\(", html)


def test_payload_is_the_rounded_weights():
    w = weights(2, 3, 6, 6)  # (B, H, T, T)
    parsed = Elements(attention_view(w, tokens(6), batch_index=1).html)
    stored = torch.tensor(parsed.payload()["weights"][0])  # (H, T, T), percent
    assert stored.shape == (3, 6, 6)
    torch.testing.assert_close(stored, torch.round(w[1].double() * 100).long())


def test_list_is_one_entry_per_layer_and_heads_may_differ():
    html = attention_view([weights(2, 4, 4), weights(1, 3, 4, 4)], tokens(4)).html
    parsed = Elements(html)
    assert [a["data-layer"] for a in parsed.having("button") if "data-layer" in a] == ["0", "1"]
    assert [len(layer) for layer in parsed.payload()["weights"]] == [2, 3]
    assert "Слой 1" in html and "Слой 2" in html
    single = Elements(attention_view(weights(2, 4, 4), tokens(4)).html)
    assert not [a for a in single.having("button") if "data-layer" in a]  # one layer: no layer buttons


def test_buttons_for_tokens_and_heads():
    T, H = 7, 3
    parsed = Elements(attention_view(weights(H, T, T), tokens(T), query=2).html)
    token_buttons = [a for a in parsed.having("button", type="button") if "data-t" in a]
    assert [a["data-t"] for a in token_buttons] == [str(t) for t in range(T)]
    assert [a["aria-pressed"] for a in token_buttons] == ["false", "false", "true"] + ["false"] * 4
    head_buttons = [a for a in parsed.having("button", type="button") if "data-head" in a]
    assert len(head_buttons) == H and all(a["aria-pressed"] == "true" for a in head_buttons)
    one = Elements(attention_view(weights(H, T, T), tokens(T), side_by_side=False).html)
    pressed = [a["aria-pressed"] for a in one.having("button") if "data-head" in a]
    assert pressed == ["true", "false", "false"]


def test_prerendered_panels_show_the_query_row():
    """Without the script (an untrusted notebook) the view still shows the chosen query's weights."""
    w = weights(2, 5, 5)
    html = attention_view(w, tokens(5), query=-2, lang="en").html
    panels = re.findall(r'<div class="sav-panel" data-head="(\d)"', html)
    assert panels == ["0", "1"]
    shown = [float(x) for x in re.findall(r'--w:([0-9.]+)"', html)]
    expected = torch.round(w[:, 3] * 100) / 100  # (H, T): row of query 3
    torch.testing.assert_close(torch.tensor(shown, dtype=torch.float64), expected.flatten().double())
    assert len(re.findall(r"<span class=\"sav-k\"[^>]*data-query", html)) == 2  # marked in each panel
    assert "“t3” (position 3): weight" in html


def test_get_attention_weights_of_a_module_go_straight_in():
    mha = MultiHeadAttention(num_heads=2, emb_size=8, head_size=4, max_seq_len=6, dropout=0.0)
    x = torch.randn(3, 6, 8)
    per_layer = [mha.get_attention_weights(x), mha.get_attention_weights(x)]  # (B, H, T, T) each
    parsed = Elements(attention_view(per_layer, tokens(6), batch_index=2).html)
    stored = torch.tensor(parsed.payload()["weights"])  # (layers, H, T, T)
    assert stored.shape == (2, 2, 6, 6)
    assert (stored.triu(diagonal=1) == 0).all()  # the causal mask survives rounding


def test_tokens_are_escaped_everywhere():
    evil = ["</script><b>x", 'a"b', "<i>", "&amp;"]
    html = attention_view(weights(1, 4, 4), evil).html
    assert html.count("</script>") == 3  # only the view's own scripts close
    assert "<b>" not in html and "<i>" not in html
    parsed = Elements(html)
    assert parsed.payload()["tokens"] == evil
    assert [a["title"] for a in parsed.having("button") if "data-t" in a][1] == '1: a"b'


def test_save_writes_a_standalone_page(tmp_path):
    view = attention_view(weights(2, 3, 3), ["a", "b", "c"], lang="en")
    assert isinstance(view, AttentionView) and view._repr_html_() == view.html
    path = view.save(tmp_path / "view.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '<html lang="en">' in page
    assert view.html in page and 'name="viewport"' in page


def test_payload_stays_small_for_the_book_sizes():
    html = attention_view([weights(2, 24, 24), weights(2, 24, 24)], tokens(24)).html
    assert len(html.encode("utf-8")) < 40_000


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (("weights", tokens(3)), {}, TypeError, "weights must be a torch.Tensor"),
        ((torch.ones(2, 3, 3).tolist(), tokens(3)), {}, TypeError, r"weights\[0\] must be a torch.Tensor"),
        (([], tokens(3)), {}, ValueError, "must not be an empty list"),
        (
            (torch.ones(2, 3, 4) / 4, tokens(3)),
            {},
            ValueError,
            r"\(H, T, T\) or \(B, H, T, T\), got \(2, 3, 4\)",
        ),
        ((torch.ones(3, 3) / 3, tokens(3)), {}, ValueError, r"got \(3, 3\)"),
        ((torch.ones(1, 3, 3, dtype=torch.long), tokens(3)), {}, TypeError, "floating-point"),
        ((-torch.ones(1, 3, 3), tokens(3)), {}, ValueError, r"in \[0, 1\]"),
        ((torch.full((1, 3, 3), float("nan")), tokens(3)), {}, ValueError, r"in \[0, 1\]"),
        (
            ([torch.ones(1, 3, 3) / 3, torch.ones(1, 4, 4) / 4], tokens(3)),
            {},
            ValueError,
            r"same sequence length T, got \[3, 4\]",
        ),
        (
            (torch.ones(1, 3, 3) / 3, tokens(4)),
            {},
            ValueError,
            "tokens has 4 labels but the weights have T=3",
        ),
        ((torch.ones(1, 3, 3) / 3, "abc"), {}, TypeError, "tokens must be a sequence"),
        ((torch.ones(1, 3, 3) / 3, tokens(3)), {"lang": "de"}, ValueError, "lang must be one of"),
        ((torch.ones(1, 3, 3) / 3, tokens(3)), {"query": 3}, ValueError, "query=3 out of range for T=3"),
        ((torch.ones(1, 3, 3) / 3, tokens(3)), {"query": 1.0}, TypeError, "query must be an int"),
        ((torch.ones(1, 3, 3) / 3, tokens(3)), {"side_by_side": 1}, TypeError, "side_by_side must be a bool"),
        (
            (torch.ones(2, 1, 3, 3) / 3, tokens(3)),
            {"batch_index": 2},
            ValueError,
            "batch_index=2 out of range",
        ),
        (
            (torch.ones(2, 1, 3, 3) / 3, tokens(3)),
            {"batch_index": True},
            TypeError,
            "batch_index must be an int",
        ),
        (  # (H, T, T) weights have no batch: an index other than 0 would be ignored
            (torch.ones(1, 3, 3) / 3, tokens(3)),
            {"batch_index": 1},
            ValueError,
            r"batch_index=1 needs \(B, H, T, T\) weights, got weights of shape \(1, 3, 3\)",
        ),
        (
            ([torch.ones(2, 1, 3, 3) / 3, torch.ones(1, 3, 3) / 3], tokens(3)),
            {"batch_index": 1},
            ValueError,
            r"batch_index=1 needs \(B, H, T, T\) weights, got weights\[1\] of shape",
        ),
    ],
)
def test_bad_input_is_named(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        attention_view(*args, **kwargs)


def test_too_large_a_view_is_refused():
    T = 200
    with pytest.raises(ValueError, match=f"limit {MAX_PAYLOAD_BYTES}"):
        attention_view(weights(4, T, T), tokens(T))


def test_stylesheet_and_script_are_package_files_inlined():
    """The CSS and JS live in simple_llm/assets/ and reach the HTML (comments and indentation dropped)."""
    from importlib import resources

    assets = resources.files("simple_llm").joinpath("assets")
    css, js = (assets.joinpath(name).read_text(encoding="utf-8") for name in ("view.css", "view.js"))
    view = attention_view(weights(2, 3, 3), tokens(3))
    uid = re.search(r'id="(sav-[0-9a-f]{12})"', view.html).group(1)
    style = re.search(r"<style>(.*?)</style>", view.html, flags=re.S).group(1)
    script = Elements(view.html).scripts[-1][1]
    assert "#ID" not in style and f"#{uid} .sav-panel{{" in style and "/*" not in style
    for colour in re.findall(r"--sav-c\d:\s*(#[0-9a-f]{6})", css):  # both palettes, 16 colours
        assert colour in style
    statements = [
        line.strip() for line in js.splitlines() if line.strip() and not line.strip().startswith("//")
    ]
    assert script.splitlines() == statements


def test_the_script_creates_no_element_python_renders_them_all():
    """Panels are built once, in Python: the script only fills in the elements it finds."""
    from importlib import resources

    js = resources.files("simple_llm").joinpath("assets", "view.js").read_text(encoding="utf-8")
    assert not re.search(r"createElement|innerHTML|appendChild|insertAdjacent", js)


def test_every_head_of_every_layer_has_a_button_and_a_panel_hidden_where_layer_one_lacks_it():
    parsed = Elements(attention_view([weights(2, 4, 4), weights(3, 4, 4)], tokens(4)).html)
    buttons = [a for a in parsed.having("button") if "data-head" in a]
    panels = parsed.having("div", **{"class": "sav-panel"})
    assert [a["data-head"] for a in buttons] == [a["data-head"] for a in panels] == ["0", "1", "2"]
    assert ["hidden" in a for a in buttons] == ["hidden" in a for a in panels] == [False, False, True]
    one = Elements(attention_view(weights(3, 4, 4), tokens(4), side_by_side=False).html)
    assert ["hidden" in a for a in one.having("div", **{"class": "sav-panel"})] == [False, True, True]
