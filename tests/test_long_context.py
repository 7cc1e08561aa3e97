"""Long context: the sliding-window band mask, attention sinks, ALiBi, NoPE and the rolling cache.

Each mechanism is checked against its definition written out here independently: the band mask
against a loop, ALiBi's slopes against the paper's rule and its scores against
softmax(q.k / sqrt(hs) - m * (t - j)), StreamingLLM's sink positions against a cache laid out key by
key; the cache against recomputation, also past max_seq_len.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from simple_llm import (
    GPT,
    Decoder,
    KVCache,
    MultiHeadAttention,
    RollingKVCache,
    alibi_slopes,
    sliding_window_mask,
)
from simple_llm.attention import causal_attention
from simple_llm.positions import slopes_of_alibi

# --- the band mask ---------------------------------------------------------------------------


def band_by_loop(T: int, W: int, S: int) -> torch.Tensor:
    """Query t sees keys max(0, t-W+1) .. t and the sinks 0 .. S-1 that are <= t."""
    allowed = torch.zeros(T, T, dtype=torch.bool)
    for t in range(T):
        for j in range(T):
            in_window = max(0, t - W + 1) <= j <= t
            is_sink = j < S and j <= t
            allowed[t, j] = in_window or is_sink
    return allowed


@pytest.mark.parametrize("T, W, S", [(1, 1, 0), (7, 1, 0), (7, 3, 0), (7, 3, 2), (12, 5, 1), (6, 9, 4)])
def test_sliding_window_mask_is_the_band_of_its_definition(T, W, S):
    assert torch.equal(sliding_window_mask(T, W, S), band_by_loop(T, W, S))
    assert sliding_window_mask(T, W, S).sum(dim=1).max() <= W + S  # at most W + S keys per query


def qkv_of(mha: MultiHeadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q, K, V of every head written out from mha.qkv (no rotary): (B, H, T, hs), (B, H_kv, T, hs) x 2."""
    B, T, _ = x.shape
    H, H_kv, hs = mha.num_heads, mha.num_kv_heads, mha.head_size
    q, k, v = mha.qkv(x).split([H * hs, H_kv * hs, H_kv * hs], dim=-1)  # (B, T, H*hs), 2 x (B, T, H_kv*hs)
    q = q.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
    k = k.view(B, T, H_kv, hs).transpose(1, 2)  # (B, H_kv, T, hs)
    v = v.view(B, T, H_kv, hs).transpose(1, 2)  # (B, H_kv, T, hs)
    return q, k, v


@pytest.mark.parametrize("H, H_kv", [(4, 4), (4, 2), (3, 1)])
@pytest.mark.parametrize("W, S", [(1, 0), (3, 0), (3, 1), (4, 3)])
def test_window_equals_sdpa_with_the_band_mask_on_both_paths(H, H_kv, W, S):
    mha = MultiHeadAttention(H, 12, 4, 16, 0.0, num_kv_heads=H_kv, window=W, sink_tokens=S).double()
    x = torch.randn(2, 9, 12, dtype=torch.float64)
    q, k, v = qkv_of(mha, x)
    band = sliding_window_mask(9, W, S)  # (T, T)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=band, enable_gqa=H_kv != H)  # (B, H, T, hs)
    expected = mha.proj(y.transpose(1, 2).reshape(2, 9, H * 4))  # (B, T, C)
    fused = mha(x)
    explicit, weights = mha(x, return_weights=True)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(explicit, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(weights.gt(0), band.expand_as(weights))  # weight 0 exactly outside the band


def test_a_mask_cannot_widen_the_window_it_is_combined_with():
    """A user mask is ANDed with the band, as with the causal mask: keys outside the window stay out."""
    mha = MultiHeadAttention(2, 8, 4, 16, 0.0, window=3).double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    everything = torch.ones(6, 6, dtype=torch.bool)
    torch.testing.assert_close(mha(x, everything), mha(x), rtol=0, atol=0)
    padding = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)  # (B, T)
    weights = mha.get_attention_weights(x, padding)  # (B, H, T, T)
    allowed = sliding_window_mask(6, 3) & padding[:, None, None, :]  # (B, 1, T, T)
    assert torch.equal(weights.gt(0), allowed.expand_as(weights))
    torch.testing.assert_close(
        mha(x, padding), mha(x, padding, return_weights=True)[0], rtol=1e-12, atol=1e-12
    )
    left_out = torch.zeros(6, 6, dtype=torch.bool)
    left_out[5, 0] = True  # query 5 may see key 0 only: outside its window, so it sees nothing
    out, weights = mha(x, left_out, return_weights=True)
    assert weights[:, :, 5].abs().sum() == 0
    torch.testing.assert_close(mha(x, left_out), out, rtol=1e-12, atol=1e-12)


def test_head_views_of_a_window_module_read_its_band():
    mha = MultiHeadAttention(2, 8, 4, 16, 0.0, window=2, alibi=True).double()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    weights = mha.get_attention_weights(x)  # (B, H, T, T)
    for h, head in enumerate(mha.heads):
        torch.testing.assert_close(head.get_attention_weights(x), weights[:, h], rtol=0, atol=0)
    _, _, v = qkv_of(mha, x)
    torch.testing.assert_close(mha.head(1)(x), weights[:, 1] @ v[:, 1], rtol=1e-12, atol=1e-12)


# --- ALiBi -------------------------------------------------------------------------------------


def paper_slopes(n: int) -> list[float]:
    """Press et al. (2021): for n a power of two, the geometric sequence that starts at 2^(-8/n) with
    that ratio; otherwise the slopes of the closest power of two below n, then the slopes of twice
    that power taken every other one (its 1st, 3rd, ...) until n slopes are reached."""
    if math.log2(n).is_integer():
        first = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [first * first**i for i in range(n)]
    below = 2 ** math.floor(math.log2(n))
    return paper_slopes(below) + paper_slopes(2 * below)[0::2][: n - below]


@pytest.mark.parametrize("H", [1, 2, 3, 5, 6, 7, 8, 12, 16, 20])
def test_alibi_slopes_are_the_papers(H):
    slopes = alibi_slopes(H)
    assert slopes.dtype == torch.float32 and slopes.shape == (H,)
    torch.testing.assert_close(slopes, torch.tensor(paper_slopes(H), dtype=torch.float32), rtol=0, atol=0)


def test_alibi_slopes_known_values():
    assert alibi_slopes(8).tolist() == [2.0**-i for i in range(1, 9)]  # 1/2, 1/4, ..., 1/256
    assert alibi_slopes(16)[:2].tolist() == torch.tensor([2**-0.5, 0.5]).tolist()
    assert alibi_slopes(3).tolist() == [2.0**-4, 2.0**-8, 2.0**-2]


@pytest.mark.parametrize("H, H_kv, W", [(3, 3, None), (6, 2, None), (4, 4, 3)])
def test_alibi_scores_are_the_biased_softmax_on_both_paths(H, H_kv, W):
    mha = MultiHeadAttention(H, 12, 4, 16, 0.0, num_kv_heads=H_kv, alibi=True, window=W).double()
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    q, k, v = qkv_of(mha, x)
    g = H // H_kv
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # (B, H, T, hs)
    t = torch.arange(7)
    distance = (t[:, None] - t[None, :]).double()  # (T, T): t - j
    m = torch.tensor(paper_slopes(H), dtype=torch.float64)[:, None, None]  # (H, 1, 1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(4) - m * distance  # (B, H, T, T)
    allowed = distance >= 0 if W is None else sliding_window_mask(7, W)
    expected_weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
    expected = mha.proj((expected_weights @ v).transpose(1, 2).reshape(2, 7, H * 4))  # (B, T, C)
    out, weights = mha(x, return_weights=True)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mha(x), expected, rtol=1e-12, atol=1e-12)  # fused: a float attn_mask


def test_alibi_adds_no_parameter():
    mha = MultiHeadAttention(4, 8, 2, 8, alibi=True)
    plain = MultiHeadAttention(4, 8, 2, 8)
    plain.load_state_dict(mha.state_dict())  # the same parameters as without ALiBi
    exact = torch.tensor(paper_slopes(6), dtype=torch.float64)  # a float64 module's slopes, unrounded
    torch.testing.assert_close(
        torch.tensor(slopes_of_alibi(6), dtype=torch.float64), exact, rtol=1e-15, atol=0
    )


def test_alibi_in_half_precision_is_close_to_float64():
    mha = MultiHeadAttention(4, 16, 4, 32, 0.0, alibi=True, window=5).double()
    x = torch.randn(2, 20, 16, dtype=torch.float64)
    reference = mha(x)
    for dtype in (torch.float16, torch.bfloat16):
        half = MultiHeadAttention(4, 16, 4, 32, 0.0, alibi=True, window=5).to(dtype)
        half.load_state_dict(mha.state_dict())
        for return_weights in (False, True):
            out = half(x.to(dtype), return_weights=return_weights)
            out = out[0] if return_weights else out
            torch.testing.assert_close(out.double(), reference, rtol=0.05, atol=0.05)


# --- StreamingLLM's sink positions, written out key by key ------------------------------------


def rotate(x: torch.Tensor, position: int, hs: int) -> torch.Tensor:
    """RoPE (rotate_half pairing, base 10000) of the vectors x (..., hs) at one position."""
    i = torch.arange(hs // 2, dtype=torch.float64)
    angle = position * 10000.0 ** (-2 * i / hs)  # (hs/2,)
    x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]
    return torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], dim=-1)


def streaming_weights(q, k, W: int, S: int, rope: bool, slopes: torch.Tensor | None) -> torch.Tensor:
    """Weights (B, H, T, T) as StreamingLLM computes them: for query p, the cache holds the sinks
    0 .. S-1 and the window p-W+1 .. p (all of 0 .. p while they overlap), and each key gets its
    index in that cache as its position, the query the index of p; RoPE rotates the raw q and k by
    those indices, ALiBi takes their difference as the distance."""
    B, H, T, hs = q.shape
    weights = torch.zeros(B, H, T, T, dtype=torch.float64)
    for p in range(T):
        kept = sorted(set(range(min(S, p + 1))) | set(range(max(0, p - W + 1), p + 1)))
        place = len(kept) - 1  # the query's index in the cache
        keys = torch.stack([rotate(k[:, :, j], c, hs) if rope else k[:, :, j] for c, j in enumerate(kept)], 2)
        query = rotate(q[:, :, p], place, hs) if rope else q[:, :, p]  # (B, H, hs)
        scores = (keys @ query[..., None])[..., 0] / math.sqrt(hs)  # (B, H, len(kept))
        if slopes is not None:
            distance = torch.tensor([place - c for c in range(len(kept))], dtype=torch.float64)
            scores = scores - slopes.double()[:, None] * distance
        weights[:, :, p, kept] = scores.softmax(dim=-1)
    return weights


@pytest.mark.parametrize("W, S", [(3, 1), (4, 2), (2, 1)])
@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_sinks_get_streamingllm_positions_within_the_cache(W, S, positions):
    """Query p scores a sink as if it stood at min(p, S+W-1), its place in the cache: with RoPE the
    keys keep the angles of the positions they were written at and the query is rotated there."""
    rope, alibi = positions == "rope", positions == "alibi"
    mha = MultiHeadAttention(3, 12, 4, 16, 0.0, rope=rope, alibi=alibi, window=W, sink_tokens=S).double()
    x = torch.randn(2, 11, 12, dtype=torch.float64)
    q, k, _ = qkv_of(mha, x)
    expected = streaming_weights(q, k, W, S, rope, torch.tensor(paper_slopes(3)) if alibi else None)
    torch.testing.assert_close(mha.get_attention_weights(x), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mha(x), mha(x, return_weights=True)[0], rtol=1e-10, atol=1e-12)


# --- cache == recomputation, also past max_seq_len --------------------------------------------

CONFIGS = [
    pytest.param("rope", 4, 0, id="rope-window"),
    pytest.param("rope", 4, 2, id="rope-window-sinks"),
    pytest.param("alibi", None, 0, id="alibi"),
    pytest.param("alibi", 3, 1, id="alibi-window-sinks"),
    pytest.param("none", None, 0, id="nope"),
    pytest.param("none", 3, 0, id="nope-window"),
    pytest.param("none", 5, 2, id="nope-window-sinks"),
]


def twins(positions: str, window: int | None, sinks: int, short: int, long: int) -> tuple[GPT, GPT]:
    """Two float64 models with the same weights, max_seq_len short and long (no parameter depends on it)."""
    kwargs = {
        "vocab_size": 13,
        "emb_size": 16,
        "num_heads": 4,
        "head_size": 4,
        "num_layers": 2,
        "dropout": 0.0,
    }
    kwargs.update(num_kv_heads=2, positions=positions, window=window, sink_tokens=sinks)
    a = GPT(max_seq_len=short, **kwargs).double().eval()
    b = GPT(max_seq_len=long, **kwargs).double().eval()
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("positions, window, sinks", CONFIGS)
def test_cache_equals_recomputation(positions, window, sinks):
    """Pieces of 5, 1, 1, 3, 1, ... tokens through the cache give the logits of one forward pass."""
    limit = 8 if window is not None else 30  # a rolling cache runs past its model's max_seq_len
    model, twin = twins(positions, window, sinks, limit, 30)
    x = torch.randint(0, 13, (2, 30))
    full = twin(x)  # (B, T, V)
    cache = model.new_cache()
    pieces, start = [5, 1, 1, 3, 1, 8, 2, 1, 7, 1], 0
    for size in pieces:
        logits = model(x[:, start : start + size], cache)  # (B, size, V)
        torch.testing.assert_close(logits, full[:, start : start + size], rtol=1e-9, atol=1e-9)
        start += size
    assert start == 30 and cache[0].seen == 30


@pytest.mark.parametrize("positions, window, sinks", [c for c in CONFIGS if c.values[1] is not None])
def test_rolling_cache_stays_bounded(positions, window, sinks):
    model, _ = twins(positions, window, sinks, 8, 8)
    cache = model.new_cache()
    assert all(isinstance(c, RollingKVCache) for c in cache)
    model(torch.randint(0, 13, (1, 4)), cache)
    sizes = []
    for _ in range(3 * window):
        model(torch.randint(0, 13, (1, 1)), cache)
        sizes.append(cache[0].nbytes())
        assert all(len(c) <= sinks + window for c in cache)
    assert len(cache[0]) == sinks + window - 1 and cache[0].seen == 4 + 3 * window
    assert len(set(sizes[-window:])) == 1  # memory flat in the number of tokens
    assert cache[0].positions().tolist() == list(range(sinks)) + list(
        range(4 + 3 * window - window + 1, 4 + 3 * window)
    )


@pytest.mark.parametrize("positions, window, sinks", [c for c in CONFIGS if c.values[1] is not None])
def test_generation_past_max_seq_len_equals_recomputation(positions, window, sinks):
    model, twin = twins(positions, window, sinks, 8, 64)
    prompt = torch.randint(0, 13, (2, 11))  # longer than max_seq_len: read in pieces
    streamed = model.generate(prompt, max_new_tokens=14, do_sample=False)
    recomputed = twin.generate(prompt, max_new_tokens=14, do_sample=False, use_cache=False)
    assert streamed.shape == (2, 25)
    assert torch.equal(streamed, recomputed)
    if sinks:  # sampling too, with the same seed
        torch.manual_seed(1)
        sampled = model.generate(prompt, max_new_tokens=14, do_sample=True, temperature=1.5)
        torch.manual_seed(1)
        assert torch.equal(
            sampled, twin.generate(prompt, 14, do_sample=True, temperature=1.5, use_cache=False)
        )


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope", "alibi", "none"])
def test_a_model_runs_on_four_times_its_training_length(positions):
    model = GPT(13, 32, 16, 4, 4, 2, 0.0, positions=positions)
    assert model(torch.randint(0, 13, (2, 32))).shape == (2, 32, 13)


def test_nope_has_no_position_information():
    """Without positions or a window, attention is permutation-equivariant over the earlier tokens:
    the last logits do not change when the tokens before the last are shuffled."""
    model = GPT(13, 16, 16, 4, 4, 1, 0.0, positions="none").double().eval()  # one block: later ones
    x = torch.randint(0, 13, (1, 9))  # would read earlier positions that saw their own prefixes
    shuffled = torch.cat([x[:, :-1][:, torch.randperm(8)], x[:, -1:]], dim=1)
    torch.testing.assert_close(model(x)[:, -1], model(shuffled)[:, -1], rtol=1e-12, atol=1e-12)
    rope = GPT(13, 16, 16, 4, 4, 1, 0.0, positions="rope").double().eval()
    assert not torch.allclose(rope(x)[:, -1], rope(shuffled)[:, -1])


def test_window_reaches_the_blocks():
    model = GPT(13, 16, 16, 4, 4, 2, 0.0, positions="alibi", window=4, sink_tokens=1)
    attention = [block.attention for block in model.decoders]
    assert [(a.window, a.sink_tokens, a.alibi, a.rotary) for a in attention] == [(4, 1, True, None)] * 2
    assert Decoder(4, 16, 4, 16, window=3).attention.window == 3


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"window": 0}, ValueError, "window"),
        ({"window": -2}, ValueError, "window"),
        ({"window": True}, TypeError, "window"),
        ({"window": 2.0}, TypeError, "window"),
        ({"window": 3, "sink_tokens": -1}, ValueError, "sink_tokens"),
        ({"window": 3, "sink_tokens": 3}, ValueError, "sink_tokens=3"),
        ({"window": 3, "sink_tokens": 1.0}, TypeError, "sink_tokens"),
        ({"sink_tokens": 2}, ValueError, "sink_tokens=2"),
        ({"alibi": 1}, TypeError, "alibi"),
        ({"alibi": True, "rope": True}, ValueError, "alibi"),
    ],
)
def test_bad_window_sinks_and_alibi_are_refused_by_name(kwargs, error, words):
    with pytest.raises(error, match=words):
        MultiHeadAttention(4, 8, 2, 8, **kwargs)
    if "rope" not in kwargs and "alibi" not in kwargs:
        with pytest.raises(error, match=words):
            GPT(13, 8, 8, 4, 2, 1, **kwargs)


@pytest.mark.parametrize("H, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_alibi_slopes_refuse_a_bad_head_count(H, error):
    with pytest.raises(error, match="num_heads"):
        alibi_slopes(H)


def test_bad_mask_arguments_are_refused_by_name():
    for T, W, S, error in [
        (0, 2, 0, ValueError),
        (4, 0, 0, ValueError),
        (4, None, 0, TypeError),
        (4, 2, 2, ValueError),
    ]:
        with pytest.raises(error):
            sliding_window_mask(T, W, S)
    with pytest.raises(ValueError, match="window"):
        RollingKVCache(window=0)
    with pytest.raises(ValueError, match="sink_tokens"):
        RollingKVCache(window=2, sink_tokens=5)


def test_bad_positions_and_scaling_combinations_are_refused():
    with pytest.raises(ValueError, match="'absolute'"):
        GPT(13, 8, 8, 4, 2, 1, positions="absolute")
    with pytest.raises(ValueError, match="rope_scaling"):
        GPT(13, 8, 8, 4, 2, 1, positions="alibi", rope_scaling={"rope_type": "linear", "factor": 2.0})
    dynamic = {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 8}
    with pytest.raises(ValueError, match="sink_tokens=1"):
        GPT(13, 8, 8, 4, 2, 1, positions="rope", rope_scaling=dynamic, window=4, sink_tokens=1)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_learned_and_sinusoidal_positions_cannot_go_past_max_seq_len(positions):
    model = GPT(13, 8, 8, 4, 2, 1, 0.0, positions=positions, window=3).eval()
    prompt = torch.randint(0, 13, (1, 5))
    assert model.generate(prompt, 3, do_sample=False).shape == (1, 8)  # within max_seq_len: fine
    for use_cache in (True, False):
        with pytest.raises(ValueError, match=f"positions='{positions}'.*max_seq_len=8"):
            model.generate(prompt, 4, do_sample=False, use_cache=use_cache)
    cache = model.new_cache()
    model(torch.randint(0, 13, (1, 8)), cache)
    with pytest.raises(ValueError, match=f"positions='{positions}'.*positions 8..8"):
        model(prompt[:, :1], cache)


def test_a_rolling_cache_must_fit_the_module():
    mha = MultiHeadAttention(2, 8, 4, 8, 0.0, window=3)
    x = torch.randn(1, 2, 8)
    for cache in (RollingKVCache(window=4), RollingKVCache(window=3, sink_tokens=1)):
        with pytest.raises(ValueError, match="RollingKVCache"):
            mha(x, cache=cache)
    with pytest.raises(ValueError, match="RollingKVCache"):
        MultiHeadAttention(2, 8, 4, 8)(x, cache=RollingKVCache(window=3))
    plain = KVCache()  # a plain cache works with a window (it keeps everything) within max_seq_len
    torch.testing.assert_close(
        torch.cat([mha(x, cache=plain), mha(x, cache=plain)], 1), mha(torch.cat([x, x], 1))
    )


def test_to_torch_refuses_a_window_or_alibi():
    for kwargs in ({"window": 2}, {"alibi": True}):
        with pytest.raises(ValueError, match="window"):
            MultiHeadAttention(2, 8, 4, 8, **kwargs).to_torch()


def test_dispatch_checks_its_long_context_arguments():
    q, k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match="slopes"):
        causal_attention(q, k, v, slopes=torch.ones(3))
    with pytest.raises(ValueError, match="key_positions"):
        causal_attention(q, k, v, key_positions=torch.arange(4))
    with pytest.raises(ValueError, match="q_sink"):
        causal_attention(q, k, v, window=2, q_sink=q)
