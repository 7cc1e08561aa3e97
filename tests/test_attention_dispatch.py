"""The one function that picks the attention kernel, and rotary angles computed once per GPT forward."""

from __future__ import annotations

import pytest
import torch

from simple_llm import GPT, MultiHeadAttention, RotaryEmbedding
from simple_llm.attention import attend, causal_attention
from simple_llm.masks import causal_after


def _qkv(H=4, H_kv=2, T=3, T_k=5, hs=8, B=2):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(B, H, T, hs, generator=g, dtype=torch.float64)  # (B, H, T, hs)
    k = torch.randn(B, H_kv, T_k, hs, generator=g, dtype=torch.float64)  # (B, H_kv, T_k, hs)
    v = torch.randn(B, H_kv, T_k, hs, generator=g, dtype=torch.float64)  # (B, H_kv, T_k, hs)
    return q, k, v


def _reference(q, k, v, allowed):
    """Written-out attention with the key/value heads repeated for the query heads."""
    g = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # (B, H, T_k, hs)
    return attend(q, k, v, allowed, None)


@pytest.mark.parametrize("H_kv", [4, 2, 1])
@pytest.mark.parametrize("T, T_k", [(5, 5), (1, 5), (3, 5)], ids=["is_causal", "one-query", "bottom-right"])
def test_every_fast_branch_equals_the_explicit_path(H_kv, T, T_k):
    q, k, v = _qkv(H_kv=H_kv, T=T, T_k=T_k)
    expected, expected_weights = _reference(q, k, v, causal_after(T, T_k - T))
    fast, none = causal_attention(q, k, v)
    out, weights = causal_attention(q, k, v, return_weights=True)
    assert none is None
    torch.testing.assert_close(fast, expected)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights)
    assert weights.shape == (2, 4, T, T_k)


def test_the_top_left_mask_of_is_causal_would_be_wrong_after_a_cache():
    """The bottom-right branch matters: is_causal=True with T < T_k gives another result."""
    q, k, v = _qkv(H_kv=4, T=3, T_k=5)
    top_left = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not torch.allclose(causal_attention(q, k, v)[0], top_left)


def test_a_mask_is_combined_with_the_causal_mask_and_empty_rows_give_zeros():
    q, k, v = _qkv(H_kv=2, T=4, T_k=4)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)  # (B, T): key 0 padded in item 0
    fast, _ = causal_attention(q, k, v, mask)
    out, weights = causal_attention(q, k, v, mask, return_weights=True)
    torch.testing.assert_close(fast, out)
    assert torch.equal(out[0, :, 0], torch.zeros(4, 8, dtype=torch.float64))  # query 0 has no key left
    assert torch.equal(weights[0, :, 1:, 0], torch.zeros(4, 3, dtype=torch.float64))
    future = torch.ones(4, 4, dtype=torch.bool).triu(1)  # (T, T): key after the query
    assert torch.equal(weights[..., future], torch.zeros_like(weights[..., future]))


def test_a_mask_needs_as_many_queries_as_keys():
    q, k, v = _qkv(T=2, T_k=5)
    with pytest.raises(ValueError, match="T=2 queries and T_k=5 keys"):
        causal_attention(q, k, v, torch.ones(2, 2, dtype=torch.bool))


def test_gpt_computes_the_rotary_angles_once_per_forward(monkeypatch):
    torch.manual_seed(0)
    model = GPT(11, 16, 32, 4, 8, num_layers=3, dropout=0.0, positions="rope").eval()
    x = torch.randint(0, 11, (2, 7))
    per_layer = model.token_embeddings(x)  # (B, T, C)
    for block in model.decoders:  # each block computing its own angles, as before
        per_layer = block(per_layer)  # (B, T, C)
    calls = []
    original = RotaryEmbedding.cos_sin
    monkeypatch.setattr(RotaryEmbedding, "cos_sin", lambda self, *a: calls.append(a) or original(self, *a))
    logits = model(x)  # (B, T, V)
    assert len(calls) == 1
    assert torch.equal(logits, model.head(model.norm(per_layer)))
    cache = model.new_cache()
    model(x[:, :5], cache)
    torch.testing.assert_close(model(x[:, 5:], cache)[:, -1], logits[:, -1])  # positions 5, 6 from start=5
    assert len(calls) == 3


def test_cos_sin_is_checked():
    mha = MultiHeadAttention(2, 16, 8, 8)
    x = torch.randn(1, 3, 16)
    rope = RotaryEmbedding(8)
    with pytest.raises(ValueError, match="rope=True"):
        mha(x, cos_sin=rope.cos_sin(3))
    with pytest.raises(ValueError, match=r"shape \(3, 8\)"):
        MultiHeadAttention(2, 16, 8, 8, rope=True)(x, cos_sin=rope.cos_sin(4))
    with pytest.raises(ValueError, match="either start"):
        rope(torch.randn(3, 8), 2, cos_sin=rope.cos_sin(3, 2))
    q = torch.randn(2, 3, 8)
    torch.testing.assert_close(rope(q, cos_sin=rope.cos_sin(3, 2)), rope(q, 2))
