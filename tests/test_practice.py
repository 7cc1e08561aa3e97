"""simple_llm.practice: a gallery of broken implementations, each named by its mistake; correct ones pass."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch

from simple_llm import RotaryEmbedding
from simple_llm.practice import (
    SITE_URL,
    check_attention,
    check_causal_mask,
    check_multi_head_attention,
    check_rope,
    check_tiled_attention,
)
from simple_llm.practice import solutions as sol
from simple_llm.practice.__main__ import main
from simple_llm.practice._report import DETAILS, LINKS, NAMES

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ attention, broken ways


def make_attention(scale=None, dim=-1, mask_mode="before", naive=False, weights_shape=None):
    def attention(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1)
        s = s / math.sqrt(q.size(-1)) if scale is None else s * scale(q)
        if mask is not None and mask_mode == "before":
            s = s.masked_fill(~mask, float("-inf"))
        elif mask is not None and mask_mode == "polarity":
            s = s.masked_fill(mask, float("-inf"))
        elif mask is not None and mask_mode == "zero":
            s = s.masked_fill(~mask, 0.0)
        w = s.exp() / s.exp().sum(dim=-1, keepdim=True) if naive else s.softmax(dim=dim)
        if mask is not None and mask_mode == "after":
            w = w * mask
        return w @ v, w

    return attention


ATTENTION_GALLERY = {
    "softmax-axis": make_attention(dim=-2),
    "missing-scale": make_attention(scale=lambda q: 1.0),
    "wrong-scale": make_attention(scale=lambda q: 1 / q.size(-1)),
    "mask-after-softmax": make_attention(mask_mode="after"),
    "mask-polarity": make_attention(mask_mode="polarity"),
    "mask-ignored": make_attention(mask_mode="ignored"),
    "mask-fill-zero": make_attention(mask_mode="zero"),
    "no-max-subtraction": make_attention(naive=True),
}


@pytest.mark.parametrize("mistake", ATTENTION_GALLERY)
def test_attention_mistake_is_named(mistake):
    report = check_attention(ATTENTION_GALLERY[mistake], lang="en")
    assert not report.passed
    assert report.mistakes == [mistake], str(report)


def test_two_mistakes_at_once_are_both_named():
    report = check_attention(make_attention(scale=lambda q: 1.0, dim=-2))
    assert sorted(report.mistakes) == ["missing-scale", "softmax-axis"], str(report)


def test_attention_wrong_scale_sqrt_c():
    report = check_attention(make_attention(scale=lambda q: 1 / math.sqrt(q.size(1) * q.size(-1))))
    assert report.mistakes == ["wrong-scale"]


def test_attention_transposed_output_is_a_shape_mistake():
    def attention(q, k, v, mask=None):
        out, w = sol.attention(q, k, v, mask)
        return out.transpose(1, 2), w  # (B, T, H, hs)

    report = check_attention(attention, lang="en")
    assert report.mistakes == ["shape"]
    assert "(2, 3, 5, 4)" in str(report) and "(2, 5, 3, 4)" in str(report)


def test_attention_unknown_mistake_gives_the_largest_difference_and_its_index():
    def attention(q, k, v, mask=None):
        out, w = sol.attention(q, k, v, mask)
        out = out.clone()
        out[1, 2, 3, 0] += 0.5
        return out, w

    report = check_attention(attention, lang="en")
    assert report.mistakes == ["unknown"]
    assert "0.5 at index (1, 2, 3, 0) (out)" in str(report)


# ---------------------------------------------------------------------------- correct, written otherwise


def attention_einsum(q, k, v, mask=None):
    s = torch.einsum("bhqd,bhkd->bhqk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        s = torch.where(mask, s, torch.finfo(s.dtype).min)
    w = torch.nn.functional.softmax(s, dim=-1)
    return torch.einsum("bhqk,bhkd->bhqd", w, v), w


def mha_loop_over_heads(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
    B, T, C = x.shape
    hs = C // num_heads
    heads = []
    for h in range(num_heads):
        rows = slice(h * hs, (h + 1) * hs)
        q = x @ w_qkv[rows].T + b_qkv[rows]  # (B, T, hs)
        k = x @ w_qkv[C:][rows].T + b_qkv[C:][rows]
        v = x @ w_qkv[2 * C :][rows].T + b_qkv[2 * C :][rows]
        s = q @ k.transpose(1, 2) / math.sqrt(hs)  # (B, T, T)
        if causal:
            s = s + torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
        heads.append(torch.softmax(s, dim=-1) @ v)  # (B, T, hs)
    return torch.cat(heads, dim=-1) @ w_o.T + b_o  # (B, T, C)


def mha_einsum(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
    B, T, C = x.shape
    qkv = torch.einsum("btc,oc->bto", x, w_qkv) + b_qkv  # (B, T, 3C)
    q, k, v = qkv.view(B, T, 3, num_heads, C // num_heads).unbind(2)  # (B, T, H, hs) each
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal
    )  # (B, H, T, hs)
    return torch.nn.functional.linear(torch.einsum("bhtd->bthd", out).flatten(2), w_o, b_o)  # (B, T, C)


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize(
    "check, fn",
    [
        (check_attention, sol.attention),
        (check_attention, attention_einsum),
        (check_multi_head_attention, sol.multi_head_attention),
        (check_multi_head_attention, mha_loop_over_heads),
        (check_multi_head_attention, mha_einsum),
        (check_causal_mask, sol.causal_mask),
        (check_causal_mask, lambda T: torch.arange(T)[:, None] >= torch.arange(T)[None, :]),
        (check_rope, sol.rope),
        (check_rope, lambda x, start: RotaryEmbedding(x.size(-1))(x, start)),
        (check_tiled_attention, sol.tiled_attention),
    ],
)
def test_correct_solutions_pass(check, fn, lang):
    report = check(fn, lang=lang)
    assert report.passed and report.mistakes == [], str(report)


# ------------------------------------------------------------------------ multi-head attention, broken


def make_mha(
    split="ok", merge="ok", projection=True, order=(0, 1, 2), causal_diag=0, causal_mode="before", scale=None
):
    def mha(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
        B, T, C = x.shape
        H, hs = num_heads, C // num_heads
        if split == "before-projection":  # each head projects only its own slice of x
            parts = x.view(B, T, H, hs)  # (B, T, H, hs)
            outs = []
            for w, b in zip(w_qkv.split(C), b_qkv.split(C)):
                blocks = torch.stack([w[h * hs : (h + 1) * hs, h * hs : (h + 1) * hs] for h in range(H)])
                outs.append(
                    (torch.einsum("bthi,hoi->btho", parts, blocks) + b.view(H, hs)).transpose(1, 2)
                )  # (B, H, T, hs)
            q, k, v = outs
        else:
            chunks = (x @ w_qkv.T + b_qkv).split(C, dim=-1)
            q, k, v = (chunks[i] for i in order)
            if split == "view":
                q, k, v = (t.reshape(B, H, T, hs) for t in (q, k, v))  # (B, T, C) read as (B, H, T, hs)
            else:
                q, k, v = (t.view(B, T, H, hs).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-2, -1) * (1 / math.sqrt(hs) if scale is None else scale)
        keep = torch.ones(T, T, dtype=torch.bool).tril(causal_diag)
        if causal and causal_mode == "before":
            s = s.masked_fill(~keep, float("-inf"))
        w = s.softmax(-1)
        if causal and causal_mode == "after":
            w = w * keep
        y = w @ v  # (B, H, T, hs)
        y = y.view(B, T, C) if merge == "view" else y.transpose(1, 2).reshape(B, T, C)
        return y @ w_o.T + b_o if projection else y

    return mha


def mha_interleaved(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
    B, T, C = x.shape
    q, k, v = (x @ w_qkv.T + b_qkv).view(B, T, num_heads, 3, C // num_heads).unbind(3)  # (B, T, H, hs)
    y = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal
    )
    return y.transpose(1, 2).reshape(B, T, C) @ w_o.T + b_o


MHA_GALLERY = {
    "split-before-projection": make_mha(split="before-projection"),
    "view-without-transpose": make_mha(merge="view"),
    "missing-projection": make_mha(projection=False),
    "qkv-order": make_mha(order=(1, 0, 2)),
    "causal-future": make_mha(causal_diag=1),
    "causal-diagonal": make_mha(causal_diag=-1),
    "mask-after-softmax": make_mha(causal_mode="after"),
    "wrong-scale": make_mha(scale=1 / math.sqrt(12)),
}


@pytest.mark.parametrize("mistake", MHA_GALLERY)
def test_multi_head_attention_mistake_is_named(mistake):
    report = check_multi_head_attention(MHA_GALLERY[mistake], lang="en")
    assert report.mistakes == [mistake], str(report)


def test_split_view_without_transpose_and_interleaved_layout():
    assert check_multi_head_attention(make_mha(split="view")).mistakes == ["view-without-transpose"]
    assert check_multi_head_attention(mha_interleaved).mistakes == ["qkv-order"]
    assert check_multi_head_attention(make_mha(causal_mode="none")).mistakes == ["causal-future"]


def test_split_before_projection_shows_the_block_diagonal_probe():
    text = str(check_multi_head_attention(MHA_GALLERY["split-before-projection"], lang="en"))
    assert "with a block-diagonal w_qkv the result equals the reference" in text


# ------------------------------------------------------------------------- causal mask, RoPE, tiling


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (lambda T: torch.ones(T, T, dtype=torch.bool).tril(1), "causal-future"),
        (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), "causal-diagonal"),
        (lambda T: torch.ones(T, T, dtype=torch.bool).triu(1), "mask-polarity"),
        (lambda T: torch.ones(T, T).tril(), "return-type"),
        (lambda T: torch.ones(T, T + 1, dtype=torch.bool).tril(), "shape"),
    ],
)
def test_causal_mask_mistakes(fn, mistake):
    assert check_causal_mask(fn).mistakes == [mistake]


def rope_interleaved(x, start=0):
    T, hs = x.size(-2), x.size(-1)
    angles = torch.arange(start, start + T, dtype=x.dtype)[:, None] * 10000.0 ** (
        -torch.arange(0, hs, 2, dtype=x.dtype) / hs
    )  # (T, hs/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * angles.cos() - x2 * angles.sin()
    out[..., 1::2] = x1 * angles.sin() + x2 * angles.cos()
    return out


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (rope_interleaved, "rope-pairing"),
        (lambda x, start: sol.rope(x, 0), "rope-start"),
        (lambda x, start: sol.rope(x, start + 1), "unknown"),  # positions off by one
    ],
)
def test_rope_mistakes(fn, mistake):
    assert check_rope(fn).mistakes == [mistake]


def tiled_without_rescale(q, k, v, block_size):
    q = q / math.sqrt(q.size(-1))
    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype)
    d = torch.zeros(q.shape[:-1], dtype=q.dtype)
    o = torch.zeros_like(q)
    for j in range(0, k.size(-2), block_size):
        s = q @ k[..., j : j + block_size, :].transpose(-2, -1)
        m = torch.maximum(m, s.amax(dim=-1))
        p = torch.exp(s - m[..., None])
        d = d + p.sum(dim=-1)  # the old sums are not rescaled
        o = o + p @ v[..., j : j + block_size, :]
    return o / d[..., None]


def tiled_without_max(q, k, v, block_size):
    q = q / math.sqrt(q.size(-1))
    d = torch.zeros(q.shape[:-1], dtype=q.dtype)
    o = torch.zeros_like(q)
    for j in range(0, k.size(-2), block_size):
        p = torch.exp(q @ k[..., j : j + block_size, :].transpose(-2, -1))
        d = d + p.sum(dim=-1)
        o = o + p @ v[..., j : j + block_size, :]
    return o / d[..., None]


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (tiled_without_rescale, "missing-rescale"),
        (tiled_without_max, "no-max-subtraction"),
        (
            lambda q, k, v, block_size: sol.tiled_attention(q * math.sqrt(q.size(-1)), k, v, block_size),
            "missing-scale",
        ),
    ],
)
def test_tiled_mistakes(fn, mistake):
    assert check_tiled_attention(fn).mistakes == [mistake]


# ------------------------------------------------------------------------------------------ bad input


def raises(q, k, v, mask=None):
    raise RuntimeError("shapes cannot be multiplied (5x4 and 7x4)")


def not_written(q, k, v, mask=None):
    raise NotImplementedError


@pytest.mark.parametrize(
    "fn, mistake, text",
    [
        (lambda q, k: None, "signature", "does not fit the signature <lambda>(q, k)"),
        (raises, "exception", "RuntimeError: shapes cannot be multiplied (5x4 and 7x4)"),
        (
            lambda q, k, v, mask=None: q @ k.transpose(-2, -1),
            "return-type",
            "expected a tuple (out, weights), got Tensor",
        ),
        (lambda q, k, v, mask=None: (q.tolist(), None), "return-type", "got list"),
        (
            lambda q, k, v, mask=None: (q * math.nan, sol.attention(q, k, v, mask)[1]),
            "nan",
            "NaN or inf elements (out)",
        ),
        (not_written, "not-written", "not written yet"),
        (lambda q, k, v, mask=None: None, "not-written", "not written yet"),
        (42, "signature", "got int, not a function"),
    ],
)
def test_bad_input_is_a_report_line(fn, mistake, text):
    report = check_attention(fn, lang="en")
    assert report.mistakes == [mistake]
    assert text in str(report)


def test_a_function_that_runs_too_long_is_left_with_a_message():
    def slow(T):
        time.sleep(1.0)
        return sol.causal_mask(T)

    start = time.perf_counter()
    report = check_causal_mask(slow, lang="en", timeout_s=0.1)
    assert time.perf_counter() - start < 0.9
    assert report.mistakes == ["timeout"]
    assert "did not finish in 0.1 s" in str(report)


@pytest.mark.parametrize("bad", [0, -1, math.inf, "1", True])
def test_grader_arguments_are_checked(bad):
    with pytest.raises(ValueError, match="timeout_s"):
        check_rope(sol.rope, timeout_s=bad)
    with pytest.raises(ValueError, match="lang must be one of"):
        check_rope(sol.rope, lang="de")


# ----------------------------------------------------------------------------------- text, HTML, links


def test_text_and_html_in_both_languages():
    fn = ATTENTION_GALLERY["softmax-axis"]
    ru, en = check_attention(fn), check_attention(fn, lang="en")
    assert ru.lang == "ru" and ru.mistakes == en.mistakes == ["softmax-axis"]
    assert str(ru).splitlines()[:2] == [
        "attention: найдено ошибок: 1",
        "  [softmax-axis] Softmax не по той оси",
    ]
    assert str(en).splitlines()[:2] == [
        "attention: 1 mistake(s) found",
        "  [softmax-axis] Softmax over the wrong axis",
    ]
    assert f"{SITE_URL}chapters/07-common-mistakes/#softmax-axis" in str(ru)
    assert f"{SITE_URL}en/chapters/07-common-mistakes/#softmax-axis" in str(en)
    assert "проба q (2, 3, 5, 4)" in str(ru) and "probe q (2, 3, 5, 4)" in str(en)
    html_ru, html_en = ru._repr_html_(), en._repr_html_()
    assert (
        '<a href="https://simple-llm.github.io/simple-llm/chapters/07-common-mistakes/#softmax-axis">'
        in html_ru
    )
    assert "раздел книги" in html_ru and "the book&#x27;s section" in html_en
    assert "<code>softmax-axis</code> Softmax over the wrong axis" in html_en
    assert check_attention(fn)._repr_html_() == html_ru  # deterministic


def test_every_id_has_both_names_and_every_link_an_anchor_in_both_languages():
    for mistake, names in NAMES.items():
        assert len(names) == 2 and all(names), mistake
    for key, texts in DETAILS.items():
        assert len(texts) == 2 and all(texts), key
        fields = [set(re.findall(r"\{(\w+)", t)) for t in texts]
        assert fields[0] == fields[1], key
    for mistake, (page, anchor) in LINKS.items():
        for lang in ("ru", "en"):
            text = (ROOT / "docs" / "chapters" / f"{page}.{lang}.md").read_text(encoding="utf-8")
            assert f"{{ #{anchor} }}" in text, f"{mistake}: no #{anchor} in {page}.{lang}.md"


def test_ids_match_chapter_7_anchors_where_one_exists():
    anchors = set(
        re.findall(r"\{ #([\w-]+) \}", (ROOT / "docs/chapters/07-common-mistakes.en.md").read_text())
    )
    for mistake in (
        "softmax-axis",
        "missing-scale",
        "mask-after-softmax",
        "split-before-projection",
        "view-without-transpose",
        "missing-projection",
    ):
        assert mistake in anchors and LINKS[mistake] == ("07-common-mistakes", mistake)


def test_site_url_agrees_with_pyproject_and_mkdocs():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Documentation"] == SITE_URL
    assert f'site_url: !ENV [SITE_URL, "{SITE_URL}"]' in (ROOT / "mkdocs.yml").read_text()


# ------------------------------------------------------------------------------------------------- CLI


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "simple_llm.practice", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_grades_every_function_found_and_exits_0_only_when_all_pass(tmp_path, capsys):
    solutions = (ROOT / "simple_llm/practice/solutions.py").read_text(encoding="utf-8")
    good = tmp_path / "good.py"
    good.write_text(solutions, encoding="utf-8")
    assert main([str(good), "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "attention: correct (3 probes)"
    assert sum(line.endswith("probes)") for line in lines) == 5
    bad = tmp_path / "bad.py"
    bad.write_text(solutions.replace("scores.softmax(dim=-1)", "scores.softmax(dim=-2)"), encoding="utf-8")
    done = run_cli(bad)  # the real command, once
    assert done.returncode == 1, done.stderr
    assert "attention: найдено ошибок: 1" in done.stdout and "[softmax-axis]" in done.stdout
    assert "multi_head_attention: найдено ошибок: 1" in done.stdout  # it calls the broken attention
    assert "causal_mask: всё верно (3 пробы)" in done.stdout


def test_cli_says_why_it_graded_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.py"
    empty.write_text("def attn(q, k, v):\n    return q\n", encoding="utf-8")
    assert main([str(empty), "--lang", "en"]) == 2
    assert "defines none of the functions: attention, multi_head_attention" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\ndef attention(q, k, v, mask=None)\n    pass\n", encoding="utf-8")
    assert main([str(broken), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "could not import" in err and "SyntaxError" in err
    exits = tmp_path / "exits.py"
    exits.write_text("raise SystemExit(3)\n", encoding="utf-8")
    assert main([str(exits)]) == 2
    assert "не удалось импортировать" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.py"), "--lang", "en"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_mock_interview_template_reports_not_written_yet(capsys):
    assert main([str(ROOT / "simple_llm/practice/template.py"), "--lang", "en"]) == 1
    heads = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert heads == [
        f"{name}: not written yet" for name in ("attention", "multi_head_attention", "causal_mask")
    ]


def test_russian_counts_agree_with_the_number():
    from simple_llm.practice._report import _plural_ru

    assert [_plural_ru(n) for n in (1, 2, 4, 5, 11, 12, 21, 22, 25)] == [
        "проба",
        "пробы",
        "пробы",
        "проб",
        "проб",
        "проб",
        "проба",
        "пробы",
        "проб",
    ]
    assert str(check_rope(sol.rope)) == "rope: всё верно (2 пробы)"
