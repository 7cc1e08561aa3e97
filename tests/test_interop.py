"""Equality with torch.nn.MultiheadAttention and F.scaled_dot_product_attention."""

import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from simple_llm import MultiHeadAttention, padding_mask

TOLERANCES = {torch.float64: {"rtol": 1e-10, "atol": 1e-12}, torch.float32: {"rtol": 1.3e-6, "atol": 1e-5}}


def sweep(n=12):
    """Seeded random (B, T, H, hs) shapes, plus odd fixed ones (T=1, H=1, B=1, T=7, hs != T)."""
    rng = random.Random(1234)
    shapes = [(1, 1, 1, 4), (2, 7, 1, 3), (1, 7, 3, 5), (3, 2, 4, 1)]
    shapes += [
        (rng.randint(1, 4), rng.randint(1, 12), rng.randint(1, 4), rng.randint(1, 9)) for _ in range(n)
    ]
    return shapes


def sdpa_reference(mha, x, key_padding=None):
    """Hand-written fused attention with mha's weights; key_padding True = real token."""
    B, T, _ = x.shape
    H, hs = mha.num_heads, mha.head_size
    q, k, v = F.linear(x, mha.qkv.weight, mha.qkv.bias).split(H * hs, dim=-1)  # (B, T, H*hs) each
    q, k, v = (t.view(B, T, H, hs).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, None, :]  # (B, 1, T, T)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, T, hs)
    return F.linear(y.transpose(1, 2).reshape(B, T, H * hs), mha.proj.weight, mha.proj.bias)


def torch_mha_output(module, x, key_padding=None):
    T = x.size(1)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = masked out
    kpm = None if key_padding is None else ~key_padding  # True = padding
    return module(x, x, x, attn_mask=causal, key_padding_mask=kpm, need_weights=False)[0]


def random_lengths(B, T):
    return padding_mask([random.randint(1, T) for _ in range(B)], T)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("B, T, H, hs", sweep())
@pytest.mark.parametrize("padded", [False, True])
def test_equals_torch_mha_and_sdpa(B, T, H, hs, dtype, padded):
    C = H * hs
    module = nn.MultiheadAttention(C, H, batch_first=True, dtype=dtype).eval()
    mha = MultiHeadAttention.from_torch(module, max_seq_len=16)
    x = torch.randn(B, T, C, dtype=dtype)
    pad = random_lengths(B, T) if padded else None
    expected = torch_mha_output(module, x, pad)
    tol = TOLERANCES[dtype]
    for ours in (mha(x, pad), mha(x, pad, return_weights=True)[0]):
        torch.testing.assert_close(ours, expected, **tol)
        torch.testing.assert_close(ours, sdpa_reference(mha, x, pad), **tol)
    torch.testing.assert_close(torch_mha_output(mha.to_torch().eval(), x, pad), mha(x, pad), **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_attention_weights_equal_torch_per_head_weights(dtype):
    B, T, H, hs = 2, 7, 3, 4
    mha = MultiHeadAttention(H, H * hs, hs, 8, dropout=0.0).to(dtype).eval()
    x = torch.randn(B, T, H * hs, dtype=dtype)
    pad = padding_mask([7, 3])
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    _, expected = mha.to_torch()(x, x, x, attn_mask=causal, key_padding_mask=~pad, average_attn_weights=False)
    torch.testing.assert_close(mha.get_attention_weights(x, pad), expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_torch_equals_its_source_module_outputs_and_weights(dtype):
    """Not only the round trip: the module built by from_torch matches the nn.MultiheadAttention it came from."""
    B, T, H, hs = 2, 7, 3, 4
    source = nn.MultiheadAttention(H * hs, H, batch_first=True, dtype=dtype).eval()  # PyTorch's init
    mha = MultiHeadAttention.from_torch(source, max_seq_len=8).eval()
    x = torch.randn(B, T, H * hs, dtype=dtype)
    pad = padding_mask([7, 4])
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = masked out
    for kpm, mask in ((None, None), (~pad, pad)):
        out, weights = source(x, x, x, attn_mask=causal, key_padding_mask=kpm, average_attn_weights=False)
        ours, our_weights = mha(x, mask, return_weights=True)
        torch.testing.assert_close(ours, out, **TOLERANCES[dtype])
        torch.testing.assert_close(mha(x, mask), out, **TOLERANCES[dtype])
        torch.testing.assert_close(our_weights, weights, **TOLERANCES[dtype])


def test_gradients_equal_torch_mha_float64():
    mha = MultiHeadAttention(2, 8, 4, 8, dropout=0.0).double()
    module = mha.to_torch()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    pad = padding_mask([5, 2])
    mha(x, pad).square().sum().backward()
    torch_mha_output(module, x, pad).square().sum().backward()
    torch.testing.assert_close(mha.qkv.weight.grad, module.in_proj_weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mha.proj.weight.grad, module.out_proj.weight.grad, rtol=1e-10, atol=1e-12)


def test_round_trip_is_exact_and_keeps_dtype():
    module = nn.MultiheadAttention(12, 3, dtype=torch.float64)  # batch_first=False: weights are the same
    mha = MultiHeadAttention.from_torch(module, max_seq_len=8, dropout=0.2)
    assert (mha.num_heads, mha.emb_size, mha.head_size, mha.max_seq_len) == (3, 12, 4, 8)
    assert mha.dropout.p == 0.2 and mha.qkv.weight.dtype == torch.float64
    back = mha.to_torch()
    assert back.batch_first and back.in_proj_weight.dtype == torch.float64
    for a, b in zip(module.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    again = MultiHeadAttention.from_torch(back, max_seq_len=8)
    for a, b in zip(mha.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_to_torch_keeps_training_mode():
    mha = MultiHeadAttention(2, 8, 4, 8)
    assert mha.to_torch().training
    assert not mha.eval().to_torch().training


def test_to_torch_requires_heads_times_head_size_equal_emb_size():
    mha = MultiHeadAttention(2, 10, 4, 8)
    with pytest.raises(ValueError, match=r"2 \* 4 != 10"):
        mha.to_torch()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bias": False}, "bias=False"),
        ({"add_bias_kv": True}, "add_bias_kv=True"),
        ({"add_zero_attn": True}, "add_zero_attn=True"),
        ({"kdim": 4, "vdim": 4}, "kdim=4"),
    ],
)
def test_from_torch_rejects_unsupported_configurations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, **kwargs), max_seq_len=8)


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="Linear"):
        MultiHeadAttention.from_torch(nn.Linear(8, 8), max_seq_len=8)
