import math

import pytest
import torch

from simple_llm import (
    LearnedPositions,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositions,
    sinusoidal_positions,
)


def test_sinusoidal_equals_the_closed_formula():
    T, C = 9, 6
    expected = torch.empty(T, C, dtype=torch.float64)
    for p in range(T):
        for i in range(C // 2):
            expected[p, 2 * i] = math.sin(p / 10000 ** (2 * i / C))
            expected[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / C))
    torch.testing.assert_close(sinusoidal_positions(T, C, dtype=torch.float64), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(sinusoidal_positions(T, C), expected.float(), rtol=0, atol=1e-6)


def test_positions_start_is_a_slice_of_the_table():
    sin = SinusoidalPositions(12, 8)
    torch.testing.assert_close(sin(4, start=5), sin(12)[5:9])
    learned = LearnedPositions(12, 8)
    assert torch.equal(learned(4, start=5), learned.embedding.weight[5:9])


@pytest.mark.parametrize("make", [lambda: LearnedPositions(8, 4), lambda: SinusoidalPositions(8, 4)])
def test_positions_past_max_seq_len_raise(make):
    with pytest.raises(ValueError, match="exceed max_seq_len=8"):
        make()(3, start=6)
    with pytest.raises(ValueError, match="start"):
        make()(3, start=-1)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="even emb_size"):
        sinusoidal_positions(3, 5)
    with pytest.raises(ValueError, match="even emb_size"):
        SinusoidalPositions(8, 5)
    with pytest.raises(ValueError, match="even head_size"):
        RotaryEmbedding(5)
    with pytest.raises(ValueError, match="base"):
        RotaryEmbedding(4, base=1.0)
    with pytest.raises(ValueError, match="hs=4"):
        RotaryEmbedding(4)(torch.zeros(2, 3, 6))
    with pytest.raises(TypeError, match="floating-point"):
        RotaryEmbedding(4)(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="even head_size"):
        MultiHeadAttention(2, 8, 3, 16, rope=True)


def test_rotation_keeps_norms_and_position_zero_is_the_identity():
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))
    assert torch.equal(rope(x)[:, 0], x[:, 0])


def test_rope_scores_depend_only_on_the_relative_offset():
    rope = RotaryEmbedding(8)
    q, k = torch.randn(2, 8, dtype=torch.float64)

    def score(p, s):
        return float(rope(q.view(1, 8), start=p) @ rope(k.view(1, 8), start=s).T)

    for offset in [0, 1, 3, 7]:
        scores = [score(s + offset, s) for s in [0, 2, 5, 40, 300]]
        assert max(scores) - min(scores) < 1e-10
    assert abs(score(3, 0) - score(5, 0)) > 1e-3  # a different offset gives a different score


def test_rope_cached_start_equals_slice_of_full_rotation():
    rope = RotaryEmbedding(6)
    x = torch.randn(2, 3, 7, 6)
    torch.testing.assert_close(rope(x[:, :, 4:], start=4), rope(x)[:, :, 4:], rtol=1e-6, atol=1e-6)


def interleaved_rope(x, base=10000.0):
    """RoFormer/Meta convention: pairs (2i, 2i+1) as complex numbers times exp(i p theta_i)."""
    T, hs = x.shape[-2], x.shape[-1]
    theta = base ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)  # (hs/2,)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * theta  # (T, hs/2)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], hs // 2, 2).contiguous())  # (..., T, hs/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2)  # (..., T, hs)


def test_interleaved_convention_gives_the_same_attention_after_permuting_rows():
    H, C, hs, T = 2, 8, 6, 7
    torch.manual_seed(0)
    w_meta = torch.randn(3 * H * hs, C, dtype=torch.float64)  # [Q | K | V] rows, interleaved pairs
    x = torch.randn(2, T, C, dtype=torch.float64)
    q, k, _ = (x @ w_meta.T).view(2, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
    scores = interleaved_rope(q) @ interleaved_rope(k).transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
    expected = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")).softmax(-1)

    to_ours = torch.cat([torch.arange(0, hs, 2), torch.arange(1, hs, 2)])  # [0, 2, 4, 1, 3, 5]
    rows = torch.arange(3 * H * hs).view(3, H, hs)  # (3, H, hs)
    rows[:2] = rows[:2, :, to_ours]  # permute Q and K rows within each head, V unchanged
    mha = MultiHeadAttention(H, C, hs, 16, dropout=0.0, rope=True).double()
    with torch.no_grad():
        mha.qkv.weight.copy_(w_meta[rows.flatten()])
        mha.qkv.bias.zero_()
    torch.testing.assert_close(mha.get_attention_weights(x), expected, rtol=0, atol=1e-12)
    unpermuted = MultiHeadAttention(H, C, hs, 16, dropout=0.0, rope=True).double()
    with torch.no_grad():
        unpermuted.qkv.weight.copy_(w_meta)
        unpermuted.qkv.bias.zero_()
    assert (unpermuted.get_attention_weights(x) - expected).abs().max() > 1e-3


def test_rope_heads_views_match_the_module():
    mha = MultiHeadAttention(2, 8, 4, 16, dropout=0.0, rope=True).double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    weights = mha.get_attention_weights(x)
    for h, head in enumerate(mha.heads):
        torch.testing.assert_close(head.get_attention_weights(x), weights[:, h])
    with pytest.raises(ValueError, match="rotary"):
        mha.to_torch()


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32", None])
def test_a_dtype_that_is_not_floating_point_is_named(dtype):
    """An int table of sinusoids or an int cos/sin would be silently wrong (truncated to 0 and 1)."""
    calls = [lambda: RotaryEmbedding(4).cos_sin(3, 0, dtype), lambda: RotaryEmbedding(4).angles(3, 0, dtype)]
    if dtype is not None:  # the sinusoids take the default dtype for None
        calls += [
            lambda: sinusoidal_positions(3, 4, dtype=dtype),
            lambda: SinusoidalPositions(8, 4)(3, 0, dtype),
        ]
    for call in calls:
        with pytest.raises(TypeError, match=rf"dtype must be a floating-point torch.dtype, got {dtype!r}"):
            call()


@pytest.mark.parametrize(
    "base, error, match",
    [
        (float("inf"), ValueError, "finite number > 1, got inf"),
        (float("nan"), ValueError, "got nan"),
        ("10000", TypeError, r"got '10000' \(str\)"),
        (True, TypeError, "got True"),
    ],
)
def test_rotary_base_must_be_a_finite_number_above_one(base, error, match):
    with pytest.raises(error, match=match):
        RotaryEmbedding(4, base=base)


def test_rotary_input_error_names_what_it_got():
    with pytest.raises(TypeError, match=r"got torch.int64 tensor of shape \(2, 3, 4\)"):
        RotaryEmbedding(4)(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="got list"):
        RotaryEmbedding(4)([[0.0] * 4])
