"""tiled_attention against F.scaled_dot_product_attention: values, log-sum-exp, gradients, dtypes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from simple_llm import tiled_attention


def qkv(B=2, H=3, T_q=13, T_k=None, hs=8, dtype=torch.float64, requires_grad=False):
    """Random queries, keys and values ``(B, H, T, hs)``."""
    T_k = T_q if T_k is None else T_k
    q = torch.randn(B, H, T_q, hs, dtype=dtype)  # (B, H, T_q, hs)
    k = torch.randn(B, H, T_k, hs, dtype=dtype)  # (B, H, T_k, hs)
    v = torch.randn(B, H, T_k, hs, dtype=dtype)  # (B, H, T_k, hs)
    return [t.requires_grad_(requires_grad) for t in (q, k, v)]


def lower_right(T_q: int, T_k: int) -> torch.Tensor:
    """The bottom-right aligned causal mask, True = may attend: query i sees keys <= i + T_k - T_q."""
    return torch.ones(T_q, T_k, dtype=torch.bool).tril(diagonal=T_k - T_q)  # (T_q, T_k)


def scores_of(q, k, is_causal):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T_q, T_k)
    if is_causal:
        s = s.masked_fill(~lower_right(q.size(-2), k.size(-2)), float("-inf"))
    return s


T = 13  # odd, and not a multiple of 7 or 16


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 7, 16, T, T + 5])
def test_equals_sdpa_in_float64(is_causal, block_size):
    q, k, v = qkv(T_q=T)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    out = tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 7, 64])
def test_single_token(is_causal, block_size):
    q, k, v = qkv(T_q=1)
    out = tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size)
    torch.testing.assert_close(out, v, rtol=0, atol=1e-12)  # one key: its weight is 1


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 7, 16, T, T + 5])
def test_lse_equals_torch_logsumexp_of_the_scores(is_causal, block_size):
    q, k, v = qkv(T_q=T)
    _, lse = tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size, return_lse=True)
    assert lse.shape == q.shape[:-1] and lse.dtype == torch.float64
    torch.testing.assert_close(lse, torch.logsumexp(scores_of(q, k, is_causal), dim=-1), rtol=0, atol=1e-10)


@pytest.mark.parametrize("T_q, T_k", [(5, 13), (1, 13), (13, 13)])
@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_causal_is_bottom_right_aligned_for_fewer_queries(T_q, T_k, block_size):
    """T_q <= T_k: the last query sees every key, as in decoding with a key-value cache."""
    q, k, v = qkv(T_q=T_q, T_k=T_k)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=lower_right(T_q, T_k))
    out = tiled_attention(q, k, v, is_causal=True, block_size=block_size)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(out[..., -1:, :], tiled_attention(q[..., -1:, :], k, v), rtol=0, atol=1e-10)


@pytest.mark.parametrize("block_size", [1, 3, 16])
def test_queries_with_no_key_give_zeros_not_nan(block_size):
    """T_q > T_k, causal: the first T_q - T_k queries sit before every key."""
    T_q, T_k = 9, 4
    q, k, v = qkv(T_q=T_q, T_k=T_k, requires_grad=True)
    out, lse = tiled_attention(q, k, v, is_causal=True, block_size=block_size, return_lse=True)
    assert not out.isnan().any() and not lse.isnan().any()
    assert (out[..., : T_q - T_k, :] == 0).all()
    assert (lse[..., : T_q - T_k] == float("-inf")).all()
    rest = F.scaled_dot_product_attention(q[..., T_q - T_k :, :], k, v, is_causal=True)
    torch.testing.assert_close(out[..., T_q - T_k :, :], rest, rtol=0, atol=1e-10)
    (out.sum() + lse[..., T_q - T_k :].sum()).backward()
    assert all(t.grad.isfinite().all() for t in (q, k, v))
    assert (q.grad[..., : T_q - T_k, :] == 0).all()


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 5, 16])
def test_gradients_equal_sdpa(is_causal, block_size):
    q, k, v = qkv(B=1, H=2, T_q=11, requires_grad=True)
    grad_out = torch.randn(1, 2, 11, 8, dtype=torch.float64)  # (B, H, T, hs)
    expected = torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, is_causal=is_causal), (q, k, v), grad_out
    )
    got = torch.autograd.grad(
        tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size), (q, k, v), grad_out
    )
    for name, a, b in zip("qkv", got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=lambda m, name=name: f"grad of {name}: {m}")


def test_gradient_of_lse_is_the_softmax():
    q, k, _ = qkv(B=1, H=1, T_q=9, requires_grad=True)
    v = torch.randn(1, 1, 9, 8, dtype=torch.float64)
    _, lse = tiled_attention(q, k, v, is_causal=True, block_size=4, return_lse=True)
    got = torch.autograd.grad(lse.sum(), (q, k))
    expected = torch.autograd.grad(torch.logsumexp(scores_of(q, k, True), dim=-1).sum(), (q, k))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_large_scores_stay_finite():
    """Scores near 1000 overflow a naive exp in float32; the running maximum keeps them finite."""
    q, k, v = qkv(T_q=T, dtype=torch.float32)
    q = q * 300
    out = tiled_attention(q, k, v, block_size=4)
    assert out.isfinite().all()
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("is_causal", [False, True])
def test_low_precision_is_close_to_float64_and_keeps_dtype(dtype, is_causal):
    """The tolerance, derived: the float64 reference gets the same (already rounded) inputs; the
    float32 computation is off by far less than 1e-5 here, and rounding its result to ``dtype``
    adds at most half a unit in the last place, ``eps / 2 * |out|``. So
    ``|out - reference| <= 1e-5 + eps / 2 * |reference|`` element by element."""
    q, k, v = qkv(T_q=37, hs=16, dtype=dtype)
    out, lse = tiled_attention(q, k, v, is_causal=is_causal, block_size=8, return_lse=True)
    assert out.dtype == dtype and lse.dtype == torch.float32
    reference = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=is_causal)
    torch.testing.assert_close(out.double(), reference, rtol=torch.finfo(dtype).eps / 2, atol=1e-5)
    torch.testing.assert_close(
        lse.double(), torch.logsumexp(scores_of(q.double(), k.double(), is_causal), dim=-1), rtol=0, atol=1e-5
    )
    # the bound is tight enough to catch computing in the low precision itself
    if dtype != torch.float32:
        naive = (scores_of(q, k, is_causal).softmax(dim=-1) @ v).double()  # every step rounded to dtype
        assert (naive - reference).abs().max() > (out.double() - reference).abs().max()


def test_causal_skips_the_blocks_after_the_diagonal(monkeypatch):
    """With T = 4 blocks, causal visits the 10 tiles on and below the diagonal, not all 16."""
    calls = []
    real_matmul = torch.Tensor.__matmul__

    def counting(a, b):
        calls.append((a.size(-2), b.size(-1)))
        return real_matmul(a, b)

    q, k, v = qkv(B=1, H=1, T_q=16, hs=4)
    monkeypatch.setattr(torch.Tensor, "__matmul__", counting)
    tiled_attention(q, k, v, is_causal=False, block_size=4)
    full = len(calls)
    calls.clear()
    tiled_attention(q, k, v, is_causal=True, block_size=4)
    assert (full, len(calls)) == (2 * 16, 2 * 10)  # two matmuls per tile: scores and weights @ values
    assert all(shape == (4, 4) for shape in calls)  # every tile is (Bq, Bk) = (4, 4)


def test_never_builds_more_than_a_tile_of_scores():
    """The largest tensor allocated during a call is the output, not a (T, T) matrix of scores."""
    from torch.profiler import ProfilerActivity, profile

    q, k, v = qkv(B=1, H=1, T_q=512, hs=4, dtype=torch.float32)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = tiled_attention(q, k, v, is_causal=True, block_size=32)
    sizes = [e.nbytes() for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    assert max(sizes) <= out.numel() * out.element_size()  # 512 * 4 floats, far below 512 * 512
    assert max(sizes) < 512 * 512 * 4 / 100


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "8", None])
def test_block_size_must_be_a_positive_int(bad):
    q, k, v = qkv(T_q=4)
    with pytest.raises((TypeError, ValueError), match="block_size"):
        tiled_attention(q, k, v, block_size=bad)


@pytest.mark.parametrize("name", ["is_causal", "return_lse"])
def test_flags_must_be_bool(name):
    q, k, v = qkv(T_q=4)
    with pytest.raises(TypeError, match=name):
        tiled_attention(q, k, v, **{name: 1})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda q, k, v: (q, k.float(), v), "same dtype"),
        (lambda q, k, v: (q.long(), k.long(), v.long()), "floating-point"),
        (lambda q, k, v: (q.numpy(), k, v), "torch.Tensor"),
        (lambda q, k, v: (q[0, 0, 0], k, v), "at least 2 dimensions"),
        (lambda q, k, v: (q, k[..., :3], v), "head size"),
        (lambda q, k, v: (q, k, v[..., :2, :]), "same length"),
        (lambda q, k, v: (q, k[:1], v[:1]), "leading dimensions"),
        (lambda q, k, v: (q[..., :0, :], k, v), "at least one position"),
        (lambda q, k, v: (q[..., :0], k[..., :0], v), r"head size hs >= 1, got shapes \(2, 3, 4, 0\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    with pytest.raises((TypeError, ValueError), match=message):
        tiled_attention(*change(*qkv(T_q=4)))


def test_value_head_size_may_differ():
    q, k, _ = qkv(T_q=6)
    v = torch.randn(2, 3, 6, 5, dtype=torch.float64)  # (B, H, T, hs_v)
    out = tiled_attention(q, k, v, is_causal=True, block_size=4)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=0, atol=1e-10
    )


def test_benchmark_quick_run_measures_the_quadratic_matrix(tmp_path):
    """The benchmark's peak-memory measurement sees the (T, T) matrices of the explicit path."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tiled.py"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)], check=True, capture_output=True
    )
    data = json.loads((tmp_path / "tiled-cpu.json").read_text())
    assert {"torch", "cpu_model", "threads", "date", "repeats"} <= set(data["machine"])
    rows = {row["T"]: row["candidates"] for row in data["results"]}
    assert set(rows) == {64, 128}
    for T, candidates in rows.items():
        assert set(candidates) == {"explicit", "tiled_64", "tiled_256", "sdpa"}
        assert all(c["ms"] > 0 and c["min_ms"] <= c["ms"] for c in candidates.values())
        assert candidates["explicit"]["peak_mib"] * 2**20 >= 3 * T * T * 4  # scores, masked scores, weights
    assert rows[128]["explicit"]["peak_mib"] / rows[64]["explicit"]["peak_mib"] > 3.5  # ~T²
    assert rows[128]["tiled_64"]["peak_mib"] / rows[64]["tiled_64"]["peak_mib"] < 2.5  # ~T
    table = (tmp_path / "tiled-cpu.md").read_text().splitlines()
    assert table[0].startswith("| T | MiB explicit |")
    assert [line.split(" | ")[0] for line in table if line[2:3].isdigit()] == ["| 64", "| 128"]
    assert (tmp_path / "tiled-cpu.en.png").stat().st_size > 0 and (
        tmp_path / "tiled-cpu.ru.png"
    ).stat().st_size > 0
