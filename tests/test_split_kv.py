"""merge_attention: split-KV parts from tiled_attention merged back equal attention over all keys."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from simple_llm import merge_attention, tiled_attention


def qkv(B=2, H=3, T_q=9, T_k=13, hs=8, dtype=torch.float64):
    q = torch.randn(B, H, T_q, hs, dtype=dtype)  # (B, H, T_q, hs)
    k = torch.randn(B, H, T_k, hs, dtype=dtype)  # (B, H, T_k, hs)
    v = torch.randn(B, H, T_k, hs, dtype=dtype)  # (B, H, T_k, hs)
    return q, k, v


def masked_attention(q, k, v, allowed):
    """Float64 reference of one part: (output, lse), output 0 and lse -inf for a row with no key."""
    s = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(
        ~allowed, float("-inf")
    )  # (B, H, T_q, T_k)
    lse = torch.logsumexp(s, dim=-1)  # (B, H, T_q), -inf for a row with no key
    p = torch.exp(s - lse.masked_fill(lse == float("-inf"), 0.0)[..., None])  # (B, H, T_q, T_k)
    return p @ v, lse


def random_bounds(T_k: int, rng: random.Random) -> list[int]:
    """Cut points 0 = b_0 < b_1 < ... < b_P = T_k of a random split into P >= 1 parts."""
    cuts = rng.sample(range(1, T_k), rng.randint(0, T_k - 1))
    return [0, *sorted(cuts), T_k]


@pytest.mark.parametrize("seed", range(6))
def test_random_splits_of_tiled_parts_equal_sdpa(seed):
    rng = random.Random(seed)
    T_q, T_k = rng.choice([(1, 13), (9, 13), (5, 1)])
    q, k, v = qkv(T_q=T_q, T_k=T_k)
    bounds = random_bounds(T_k, rng)
    parts = [
        tiled_attention(q, k[..., a:b, :], v[..., a:b, :], block_size=rng.randint(1, 5), return_lse=True)
        for a, b in zip(bounds, bounds[1:])
    ]
    out, lse = merge_attention([o for o, _ in parts], [s for _, s in parts])
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-12)
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T_q, T_k)
    torch.testing.assert_close(lse, torch.logsumexp(s, dim=-1), rtol=0, atol=1e-12)


def test_parts_of_size_one():
    q, k, v = qkv(T_q=1, T_k=7)  # decoding: one query over 7 keys, 7 parts of one key each
    parts = [
        tiled_attention(q, k[..., j : j + 1, :], v[..., j : j + 1, :], return_lse=True) for j in range(7)
    ]
    out, _ = merge_attention([o for o, _ in parts], [s for _, s in parts])
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-12)


@pytest.mark.parametrize("T_q, T_k", [(13, 13), (4, 13), (1, 13)])
@pytest.mark.parametrize("seed", range(3))
def test_causal_splits_with_fully_masked_parts_equal_sdpa(T_q, T_k, seed):
    rng = random.Random(seed)
    q, k, v = qkv(T_q=T_q, T_k=T_k)
    allowed = torch.ones(T_q, T_k, dtype=torch.bool).tril(diagonal=T_k - T_q)  # (T_q, T_k) bottom right
    bounds = random_bounds(T_k, rng)
    parts = [
        masked_attention(q, k[..., a:b, :], v[..., a:b, :], allowed[:, a:b])
        for a, b in zip(bounds, bounds[1:])
    ]
    if T_q == T_k and len(parts) > 1:  # query 0 sees only key 0: every later part is fully masked for it
        assert all((s[..., 0] == float("-inf")).all() for _, s in parts[1:])
    out, lse = merge_attention([o for o, _ in parts], [s for _, s in parts])
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert not lse.isinf().any()


def test_the_last_causal_part_from_tiled_attention_agrees_with_the_reference():
    q, k, v = qkv(T_q=6, T_k=6)
    allowed = torch.ones(6, 6, dtype=torch.bool).tril()  # (T_q, T_k)
    first = masked_attention(q, k[..., :2, :], v[..., :2, :], allowed[:, :2])
    # the last part ends at T_k, so tiled_attention's bottom-right causal mask is the right one there
    last = tiled_attention(q, k[..., 2:, :], v[..., 2:, :], is_causal=True, block_size=2, return_lse=True)
    torch.testing.assert_close(last, masked_attention(q, k[..., 2:, :], v[..., 2:, :], allowed[:, 2:]))
    out, _ = merge_attention([first[0], last[0]], [first[1], last[1]])
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=0, atol=1e-12
    )


def test_a_row_masked_in_every_part_is_zeros_like_tiled_attention():
    q, k, v = qkv(T_q=6, T_k=3)  # causal with T_q > T_k: the first 3 queries see no key
    whole, whole_lse = tiled_attention(q, k, v, is_causal=True, return_lse=True)
    allowed = torch.ones(6, 3, dtype=torch.bool).tril(diagonal=-3)  # (T_q, T_k)
    parts = [
        masked_attention(q, k[..., a:b, :], v[..., a:b, :], allowed[:, a:b]) for a, b in [(0, 1), (1, 3)]
    ]
    out, lse = merge_attention([o for o, _ in parts], [s for _, s in parts])
    assert (out[..., :3, :] == 0).all() and (lse[..., :3] == float("-inf")).all()
    assert not out.isnan().any()
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(lse, whole_lse, rtol=0, atol=1e-12)


def test_merging_is_associative_and_one_part_is_itself():
    q, k, v = qkv()
    parts = [
        tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True)
        for a, b in [(0, 4), (4, 5), (5, 13)]
    ]
    left = merge_attention([parts[0][0], parts[1][0]], [parts[0][1], parts[1][1]])
    nested = merge_attention([left[0], parts[2][0]], [left[1], parts[2][1]])
    flat = merge_attention([o for o, _ in parts], [s for _, s in parts])
    torch.testing.assert_close(nested, flat, rtol=0, atol=1e-12)
    alone = merge_attention([parts[0][0]], [parts[0][1]])
    torch.testing.assert_close(alone, parts[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_outputs_keep_their_dtype(dtype):
    q, k, v = qkv(dtype=dtype)
    parts = [
        tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True) for a, b in [(0, 6), (6, 13)]
    ]
    out, lse = merge_attention([o for o, _ in parts], [s for _, s in parts])
    assert out.dtype == dtype and lse.dtype == torch.float32
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=tol)


def test_gradients_flow_to_every_part():
    q, k, v = (t.requires_grad_() for t in qkv(T_q=3, T_k=8))
    parts = [tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True) for a, b in [(0, 5), (5, 8)]]
    out, _ = merge_attention([o for o, _ in parts], [s for _, s in parts])
    got = torch.autograd.grad(out.sum(), (q, k, v))
    expected = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v).sum(), (q, k, v))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-10)


OUT, LSE = torch.zeros(2, 3, 4), torch.zeros(2, 3)


@pytest.mark.parametrize(
    "outputs, lses, error, words",
    [
        ([OUT, OUT], [LSE], ValueError, "2 outputs and 1 lses"),
        ([], [], ValueError, "empty"),
        (OUT, [LSE], TypeError, "Tensor"),
        ([OUT, "x"], [LSE, LSE], TypeError, "outputs[1] must be a torch.Tensor, got str"),
        ([OUT], [torch.zeros(2, 3, dtype=torch.long)], TypeError, "lses[0] must be a floating-point"),
        ([OUT, torch.zeros(2, 5, 4)], [LSE, LSE], ValueError, "outputs[1] of shape (2, 5, 4)"),
        ([OUT], [torch.zeros(2, 4)], ValueError, "lses[0] must have shape (..., T_q) = (2, 3)"),
        ([OUT, OUT.double()], [LSE, LSE], TypeError, "outputs[1] torch.float64"),
        ([OUT, OUT], [LSE, LSE.double()], TypeError, "lses[1] torch.float64"),
        ([OUT, OUT.to("meta")], [LSE, LSE], ValueError, "outputs[1] on meta"),
        ([torch.zeros(3)], [torch.zeros(())], ValueError, "(..., T_q, hs_v), got shape (3,)"),
    ],
)
def test_bad_input_names_the_values(outputs, lses, error, words):
    with pytest.raises(error) as info:
        merge_attention(outputs, lses)
    assert words in str(info.value)
