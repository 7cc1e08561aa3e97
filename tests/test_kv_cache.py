import pytest
import torch
import torch.nn.functional as F

from simple_llm import KVCache, MultiHeadAttention, causal_after

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-10}}


def make(H=4, C=12, hs=4, max_seq_len=16, dtype=torch.float32, **kwargs):
    return MultiHeadAttention(H, C, hs, max_seq_len, dropout=0.0, **kwargs).to(dtype).eval()


def test_cache_grows_along_time_and_resets():
    cache = KVCache()
    assert len(cache) == 0 and cache.nbytes() == 0
    k1, v1 = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    cache.append(k1, v1)
    k2, v2 = torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)
    keys, values = cache.append(k2, v2)
    assert len(cache) == 6 and keys.shape == values.shape == (2, 3, 6, 4)
    assert torch.equal(keys, torch.cat([k1, k2], 2)) and torch.equal(values, torch.cat([v1, v2], 2))
    assert cache.nbytes() == 2 * 2 * 3 * 6 * 4 * 4
    cache.reset()
    assert len(cache) == 0 and cache.keys is None
    cache.append(torch.randn(1, 3, 2, 4), torch.randn(1, 3, 2, 4))  # another batch size after reset
    assert len(cache) == 2


def test_cache_rejects_mismatched_tensors():
    cache = KVCache()
    with pytest.raises(ValueError, match="same shape"):
        cache.append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 5))
    with pytest.raises(TypeError, match="B, H_kv, T, hs"):
        cache.append(torch.randn(2, 3, 4), torch.randn(2, 3, 4))
    cache.append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match="reset"):
        cache.append(torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 4))


def test_cache_refuses_a_dtype_change_without_reset_and_mixed_dtypes():
    cache = KVCache()
    with pytest.raises(TypeError, match="torch.float32 on cpu and torch.float64 on cpu"):
        cache.append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"v must be a floating-point tensor .* got torch.int64"):
        cache.append(torch.randn(1, 2, 3, 4), torch.zeros(1, 2, 3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="got list"):
        cache.append([0.0], torch.zeros(1, 2, 3, 4))
    cache.append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    k = torch.randn(1, 2, 1, 4, dtype=torch.float64)
    with pytest.raises(
        TypeError, match=r"cache holds torch.float32 on cpu, got k of torch.float64 .*reset\(\)"
    ):
        cache.append(k, k)
    cache.reset()
    cache.append(k, k)
    assert len(cache) == 1 and cache.keys.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 1, 3]])
def test_cached_attention_equals_full_attention(dtype, num_kv_heads, rope, chunks):
    mha = make(dtype=dtype, num_kv_heads=num_kv_heads, rope=rope)
    x = torch.randn(3, sum(chunks), 12, dtype=dtype)
    full, full_weights = mha(x, return_weights=True)
    cache, outs, start = KVCache(), [], 0
    for n in chunks:
        outs.append(mha(x[:, start : start + n], cache=cache))
        start += n
        assert cache.keys.shape == (3, num_kv_heads, start, 4)
    torch.testing.assert_close(torch.cat(outs, 1), full, **TOL[dtype])
    # the explicit path with a cache returns the weights of the new queries over all keys
    cache = KVCache()
    mha(x[:, :5], cache=cache)
    out, weights = mha(x[:, 5:7], return_weights=True, cache=cache)
    assert weights.shape == (3, 4, 2, 7)
    torch.testing.assert_close(out, full[:, 5:7], **TOL[dtype])
    torch.testing.assert_close(weights, full_weights[:, :, 5:7, :7], **TOL[dtype])


def test_is_causal_with_one_query_sees_only_key_zero_and_the_cache_does_not():
    """pytorch#108108: is_causal=True aligns the mask top-left when T_q != T_k."""
    q, k, v = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)
    trap = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(trap, v[:, :, :1])  # only key 0: the trap
    mha = make(H=1, C=4, hs=4)
    x = torch.randn(1, 5, 4)
    cache = KVCache()
    mha(x[:, :4], cache=cache)
    out, weights = mha(x[:, 4:], return_weights=True, cache=cache)
    assert (weights[0, 0, 0] > 0).all()  # the new query sees all five keys
    torch.testing.assert_close(out, mha(x)[:, 4:])


def test_causal_after_is_aligned_bottom_right():
    assert torch.equal(causal_after(3, 0), torch.ones(3, 3).tril().bool())
    mask = causal_after(2, 4)
    assert mask.shape == (2, 6)
    assert mask[0].tolist() == [True] * 5 + [False] and mask[1].all()


def test_cache_rejects_masks_wrong_types_and_overflow():
    mha = make(max_seq_len=6)
    x = torch.randn(2, 4, 12)
    with pytest.raises(ValueError, match="mask is not supported together with cache"):
        mha(x, torch.ones(4, 4), cache=KVCache())
    with pytest.raises(TypeError, match="KVCache"):
        mha(x, cache=[])
    cache = KVCache()
    mha(x, cache=cache)
    with pytest.raises(ValueError, match="exceed max_seq_len=6"):
        mha(x[:, :3], cache=cache)
    assert len(cache) == 4  # a rejected call appends nothing
