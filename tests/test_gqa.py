import io

import pytest
import torch
import torch.nn.functional as F

from simple_llm import MultiHeadAttention, padding_mask
from simple_llm.attention import attend


def make(H=6, H_kv=2, C=12, hs=4, dtype=torch.float64, **kwargs):
    return MultiHeadAttention(H, C, hs, 16, dropout=0.0, num_kv_heads=H_kv, **kwargs).to(dtype).eval()


def split_qkv(mha, x):
    """q (B, H, T, hs), k and v (B, H_kv, T, hs), read from the documented row layout."""
    B, T, _ = x.shape
    H, H_kv, hs = mha.num_heads, mha.num_kv_heads, mha.head_size
    w, b = mha.qkv.weight, mha.qkv.bias
    q = F.linear(x, w[: H * hs], b[: H * hs]).view(B, T, H, hs).transpose(1, 2)
    k = (
        F.linear(x, w[H * hs : (H + H_kv) * hs], b[H * hs : (H + H_kv) * hs])
        .view(B, T, H_kv, hs)
        .transpose(1, 2)
    )
    v = F.linear(x, w[(H + H_kv) * hs :], b[(H + H_kv) * hs :]).view(B, T, H_kv, hs).transpose(1, 2)
    return q, k, v


@pytest.mark.parametrize("H, H_kv", [(6, 6), (6, 3), (6, 2), (6, 1), (1, 1)])
def test_gqa_equals_sdpa_enable_gqa_and_repeat_interleave(H, H_kv):
    mha = make(H, H_kv)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    assert mha.qkv.weight.shape == ((H + 2 * H_kv) * 4, 12)
    q, k, v = split_qkv(mha, x)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # (B, H, T, hs)
    expected = mha.proj(y.transpose(1, 2).reshape(2, 7, H * 4))
    torch.testing.assert_close(mha(x), expected, rtol=1e-10, atol=1e-12)
    g = H // H_kv
    allowed = torch.ones(7, 7, dtype=torch.bool).tril()
    y2, _ = attend(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1), allowed, None)
    torch.testing.assert_close(
        mha(x, return_weights=True)[0], mha.proj(y2.transpose(1, 2).reshape(2, 7, H * 4))
    )


def test_head_h_reads_kv_head_h_div_group():
    mha = make(6, 2)
    assert [head.kv_index for head in mha.heads] == [0, 0, 0, 1, 1, 1]
    wq0, wk0, wv0 = mha.head(0).weights
    _, wk2, wv2 = mha.head(2).weights
    _, wk3, _ = mha.head(3).weights
    assert torch.equal(wk0, wk2) and torch.equal(wv0, wv2) and not torch.equal(wk0, wk3)
    assert wk0.data_ptr() == mha.qkv.weight[24:28].data_ptr()  # a view: K of kv head 0 follows Q of 6 heads
    assert "key/value head 1" in repr(mha.head(4))


@pytest.mark.parametrize("rope", [False, True])
def test_head_views_and_masks_work_with_gqa(rope):
    mha = make(6, 3, rope=rope)
    x = torch.randn(3, 5, 12, dtype=torch.float64)
    mask = padding_mask([5, 3, 2], 5)
    out, weights = mha(x, mask, return_weights=True)
    torch.testing.assert_close(mha(x, mask), out, rtol=1e-10, atol=1e-12)
    for h, head in enumerate(mha.heads):
        torch.testing.assert_close(head.get_attention_weights(x, mask), weights[:, h])
    pre = torch.cat([head(x, mask) for head in mha.heads], dim=-1)  # (B, T, H*hs)
    torch.testing.assert_close(mha.proj(pre), out)


def test_mha_with_num_kv_heads_equal_heads_is_todays_module():
    torch.manual_seed(0)
    today = MultiHeadAttention(4, 16, 4, 32, dropout=0.0)
    buffer = io.BytesIO()
    torch.save(today.state_dict(), buffer)
    buffer.seek(0)
    same = MultiHeadAttention(4, 16, 4, 32, dropout=0.0, num_kv_heads=4)
    state = torch.load(buffer)
    assert {k: v.shape for k, v in same.state_dict().items()} == {k: v.shape for k, v in state.items()}
    same.load_state_dict(state)
    x = torch.randn(2, 9, 16)
    assert torch.equal(same(x), today(x))
    torch.testing.assert_close(
        same(x), today.to_torch()(x, x, x, need_weights=False, attn_mask=torch.ones(9, 9).triu(1).bool())[0]
    )


def test_num_kv_heads_fewer_parameters_and_load_errors():
    mqa = make(6, 1, dtype=torch.float32)
    assert sum(p.numel() for p in mqa.qkv.parameters()) == (6 + 2) * 4 * 13
    with pytest.raises(RuntimeError, match="size mismatch"):
        mqa.load_state_dict(make(6, 6, dtype=torch.float32).state_dict())
    with pytest.raises(ValueError, match="grouped-query"):
        mqa.to_torch()


@pytest.mark.parametrize(
    "H_kv, error, match",
    [
        (4, ValueError, r"num_heads \(6\) must be divisible by num_kv_heads \(4\)"),
        (0, ValueError, "num_kv_heads"),
        (True, TypeError, "num_kv_heads"),
        (2.0, TypeError, "num_kv_heads"),
        (12, ValueError, "divisible"),
    ],
)
def test_bad_num_kv_heads(H_kv, error, match):
    with pytest.raises(error, match=match):
        MultiHeadAttention(6, 12, 4, 16, num_kv_heads=H_kv)


def test_bad_rope_flag():
    with pytest.raises(TypeError, match="rope must be a bool"):
        MultiHeadAttention(2, 8, 4, 16, rope="yes")
