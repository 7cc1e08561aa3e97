"""MultiHeadLatentAttention against an independent float64 reference of DeepSeek-V2's equations."""

import copy
import math

import pytest
import torch

from simple_llm import LatentCache, MultiHeadLatentAttention, RotaryEmbedding, kv_cache_bytes_per_token
from simple_llm.latent_attention import rotate_interleaved

TOL = {"rtol": 1e-10, "atol": 1e-10}

# (C, H, r_q, r_kv, d_nope, d_rope, d_v): odd sizes, one head, no query latent, d_v != d_nope
SHAPES = [
    (12, 3, 10, 7, 5, 4, 6),
    (8, 1, None, 5, 3, 2, 4),
    (16, 4, None, 9, 2, 6, 3),
    (10, 2, 6, 4, 4, 4, 4),
]


def make(C, H, r_q, r_kv, d_nope, d_rope, d_v, max_seq_len=16, dropout=0.0):
    mla = MultiHeadLatentAttention(
        C,
        H,
        max_seq_len,
        q_lora_rank=r_q,
        kv_lora_rank=r_kv,
        qk_nope_head_dim=d_nope,
        qk_rope_head_dim=d_rope,
        v_head_dim=d_v,
        dropout=dropout,
    ).double()
    with torch.no_grad():  # norms away from 1, so that their weights are tested too
        for p in mla.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return mla.eval()


def deepseek_shapes(C, H, r_q, r_kv, d_nope, d_rope, d_v):
    """Key names and shapes of a DeepSeek-V2/V3 attention layer (attention_bias=False), written out."""
    q = (
        {"q_proj.weight": (H * (d_nope + d_rope), C)}
        if r_q is None
        else {
            "q_a_proj.weight": (r_q, C),
            "q_a_layernorm.weight": (r_q,),
            "q_b_proj.weight": (H * (d_nope + d_rope), r_q),
        }
    )
    return q | {
        "kv_a_proj_with_mqa.weight": (r_kv + d_rope, C),
        "kv_a_layernorm.weight": (r_kv,),
        "kv_b_proj.weight": (H * (d_nope + d_v), r_kv),
        "o_proj.weight": (C, H * d_v),
    }


def reference(sd, x, H, r_q, r_kv, d_nope, d_rope, d_v):
    """The equations written out token by token and head by head, float64, from a DeepSeek state_dict."""

    def rms(v, w):
        return w * v / torch.sqrt(v.pow(2).mean() + 1e-6)

    def rope(v, p):  # rotate neighbouring pairs (2i, 2i+1) by p * 10000**(-2i/d_rope)
        out = v.clone()
        for i in range(d_rope // 2):
            a = p * 10000.0 ** (-2 * i / d_rope)
            out[2 * i] = v[2 * i] * math.cos(a) - v[2 * i + 1] * math.sin(a)
            out[2 * i + 1] = v[2 * i] * math.sin(a) + v[2 * i + 1] * math.cos(a)
        return out

    B, T, C = x.shape
    out = torch.zeros(B, T, C, dtype=torch.float64)
    for b in range(B):
        q_heads, k_heads, v_heads = [], [], []
        for t in range(T):
            xt = x[b, t]
            if r_q is None:
                q = sd["q_proj.weight"] @ xt
            else:
                q = sd["q_b_proj.weight"] @ rms(sd["q_a_proj.weight"] @ xt, sd["q_a_layernorm.weight"])
            ckv = sd["kv_a_proj_with_mqa.weight"] @ xt
            c, k_r = ckv[:r_kv], rope(ckv[r_kv:], t)
            kv = sd["kv_b_proj.weight"] @ rms(c, sd["kv_a_layernorm.weight"])
            qs, ks, vs = [], [], []
            for h in range(H):
                qh = q[h * (d_nope + d_rope) : (h + 1) * (d_nope + d_rope)]
                qs.append(torch.cat([qh[:d_nope], rope(qh[d_nope:], t)]))
                kvh = kv[h * (d_nope + d_v) : (h + 1) * (d_nope + d_v)]
                ks.append(torch.cat([kvh[:d_nope], k_r]))
                vs.append(kvh[d_nope:])
            q_heads.append(qs)
            k_heads.append(ks)
            v_heads.append(vs)
        for t in range(T):
            heads = []
            for h in range(H):
                scores = torch.stack([q_heads[t][h] @ k_heads[s][h] for s in range(t + 1)])
                w = torch.softmax(scores / math.sqrt(d_nope + d_rope), dim=0)
                heads.append(sum(w[s] * v_heads[s][h] for s in range(t + 1)))
            out[b, t] = sd["o_proj.weight"] @ torch.cat(heads)
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("absorb", [False, True])
@pytest.mark.parametrize("T", [1, 7])
def test_equals_reference(shape, absorb, T):
    mla = make(*shape)
    x = torch.randn(2, T, shape[0], dtype=torch.float64)
    sd = {k: v.detach() for k, v in mla.state_dict().items()}
    torch.testing.assert_close(mla(x, absorb=absorb), reference(sd, x, *shape[1:]), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_deepseek_state_dict_loads_unchanged(shape):
    mla = make(*shape)
    expected = deepseek_shapes(*shape)
    assert {k: tuple(v.shape) for k, v in mla.state_dict().items()} == expected
    sd = {k: torch.randn(s, dtype=torch.float64) for k, s in expected.items()}  # a checkpoint's tensors
    mla.load_state_dict(sd)  # strict: the same keys, nothing missing, nothing left over
    x = torch.randn(2, 6, shape[0], dtype=torch.float64)
    torch.testing.assert_close(mla(x), reference(sd, x, *shape[1:]), **TOL)


def test_interleaved_pairs_against_rotate_half():
    d, T = 8, 5
    x = torch.randn(T, d, dtype=torch.float64)
    rope = RotaryEmbedding(d)
    angles = rope.angles(T, 0, torch.float64)  # (T, d/2)
    ours = rotate_interleaved(x, angles)  # (T, d)
    assert not torch.allclose(ours, rope(x))  # different pairing, different numbers
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])  # [0, 2, 4, 6, 1, 3, 5, 7]
    torch.testing.assert_close(ours[:, perm], rope(x[:, perm]), **TOL)  # the same rotation, permuted


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("absorb", [True, False])
def test_cache_token_by_token_equals_full_pass(shape, absorb):
    mla = make(*shape)
    x = torch.randn(2, 7, shape[0], dtype=torch.float64)
    full = mla(x)
    cache = LatentCache()
    steps = torch.cat([mla(x[:, t : t + 1], cache=cache, absorb=absorb) for t in range(7)], dim=1)
    torch.testing.assert_close(steps, full, **TOL)
    assert len(cache) == 7


@pytest.mark.parametrize("shape", SHAPES)
def test_prefill_then_decode_absorbed_equals_plain(shape):
    mla = make(*shape)
    x = torch.randn(3, 9, shape[0], dtype=torch.float64)
    absorbed, plain, outputs = LatentCache(), LatentCache(), []
    for part in (x[:, :5], x[:, 5:6], x[:, 6:8], x[:, 8:]):  # prefill 5, then 1, 2 and 1 tokens
        outputs.append(mla(part, cache=absorbed))  # absorbed by default with a cache
        torch.testing.assert_close(outputs[-1], mla(part, cache=plain, absorb=False), **TOL)
    torch.testing.assert_close(torch.cat(outputs, 1), mla(x), **TOL)
    torch.testing.assert_close(absorbed.latent, plain.latent, rtol=0, atol=0)


def test_absorbed_weights_shapes_and_meaning():
    C, H, r_q, r_kv, d_nope, d_rope, d_v = SHAPES[0]
    mla = make(*SHAPES[0])
    w_uk, w_ov = mla.absorbed_weights()
    assert w_uk.shape == (H, d_nope, r_kv) and w_ov.shape == (C, H, r_kv)
    c = torch.randn(r_kv, dtype=torch.float64)  # one latent
    up = (mla.kv_b_proj.weight @ c).view(H, d_nope + d_v)  # per head: key part, then value
    torch.testing.assert_close(w_uk @ c, up[:, :d_nope], **TOL)
    per_head_out = (mla.o_proj.weight.view(C, H, d_v) * up[None, :, d_nope:]).sum(-1)  # (C, H)
    torch.testing.assert_close(w_ov @ c, per_head_out, **TOL)


def test_cache_holds_only_latent_and_rotary_key():
    C, H, r_q, r_kv, d_nope, d_rope, d_v = SHAPES[2]
    mla = make(*SHAPES[2])
    cache = LatentCache()
    mla(torch.randn(2, 5, C, dtype=torch.float64), cache=cache)
    assert cache.latent.shape == (2, 5, r_kv) and cache.k_rope.shape == (2, 5, d_rope)
    per_token = kv_cache_bytes_per_token(1, kv_lora_rank=r_kv, qk_rope_head_dim=d_rope, dtype=torch.float64)
    assert cache.nbytes() == 2 * 5 * per_token == 2 * 5 * (r_kv + d_rope) * 8
    cache.reset()
    assert len(cache) == 0 and cache.nbytes() == 0 and cache.latent is None


def test_causal():
    mla = make(*SHAPES[0])
    x = torch.randn(2, 6, SHAPES[0][0], dtype=torch.float64)
    y = x.clone()
    y[:, 4] += 1.0
    a, b = mla(x), mla(y)
    torch.testing.assert_close(a[:, :4], b[:, :4], **TOL)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_float32_close_to_float64():
    mla = make(*SHAPES[0])
    x = torch.randn(2, 6, SHAPES[0][0], dtype=torch.float64)
    full = mla(x)
    mla32 = mla.float()
    cache = LatentCache()
    steps = torch.cat([mla32(x[:, t : t + 1].float(), cache=cache) for t in range(6)], 1)
    torch.testing.assert_close(steps.double(), full, rtol=1e-4, atol=1e-5)


def test_dropout_acts_on_weights_in_training_only():
    mla = make(*SHAPES[0], dropout=0.5)
    x = torch.randn(2, 6, SHAPES[0][0], dtype=torch.float64)
    ref = mla(x)
    mla.train()
    assert not torch.allclose(mla(x), ref)
    mla.eval()
    torch.testing.assert_close(mla(x), ref, **TOL)


def test_kv_bytes_per_token_at_real_shapes():
    bf16 = {"dtype": torch.bfloat16}
    assert kv_cache_bytes_per_token(32, num_kv_heads=8, head_size=128, **bf16) == 131072  # Llama-3-8B
    assert kv_cache_bytes_per_token(80, num_kv_heads=8, head_size=128, **bf16) == 327680  # Llama-3-70B
    assert kv_cache_bytes_per_token(60, kv_lora_rank=512, qk_rope_head_dim=64, **bf16) == 69120  # V2
    assert kv_cache_bytes_per_token(61, kv_lora_rank=512, qk_rope_head_dim=64, **bf16) == 70272  # V3
    mha = kv_cache_bytes_per_token(1, num_kv_heads=32, head_size=128, dtype=torch.float32)
    mqa = kv_cache_bytes_per_token(1, num_kv_heads=1, head_size=128, dtype=torch.float32)
    assert mha == 32 * mqa == 32 * 2 * 128 * 4


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_kv_heads": 8}, ValueError, "either"),
        ({"num_kv_heads": 8, "head_size": 64, "kv_lora_rank": 512}, ValueError, "kv_lora_rank=512"),
        ({"kv_lora_rank": 512}, ValueError, "qk_rope_head_dim=None"),
        ({"num_kv_heads": 0, "head_size": 64}, ValueError, "num_kv_heads"),
        ({"kv_lora_rank": 512, "qk_rope_head_dim": 1.5}, TypeError, "qk_rope_head_dim"),
        ({"num_kv_heads": 8, "head_size": 64, "dtype": "bf16"}, TypeError, "dtype"),
    ],
)
def test_kv_bytes_per_token_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        kv_cache_bytes_per_token(32, **kwargs)


GOOD = {"q_lora_rank": 6, "kv_lora_rank": 4, "qk_nope_head_dim": 3, "qk_rope_head_dim": 2, "v_head_dim": 3}


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"kv_lora_rank": 0}, ValueError, "kv_lora_rank must be a positive int, got 0"),
        ({"q_lora_rank": 0}, ValueError, "q_lora_rank must be a positive int, got 0"),
        ({"q_lora_rank": 2.0}, TypeError, "q_lora_rank .* got 2.0"),
        ({"qk_nope_head_dim": -1}, ValueError, "qk_nope_head_dim .* got -1"),
        ({"qk_rope_head_dim": 3}, ValueError, "even qk_rope_head_dim, got 3"),
        ({"qk_rope_head_dim": 0}, ValueError, "qk_rope_head_dim .* got 0"),
        ({"v_head_dim": True}, TypeError, "v_head_dim .* got True"),
        ({"dropout": 1.0}, ValueError, "dropout"),
    ],
)
def test_constructor_rejects(change, error, match):
    with pytest.raises(error, match=match):
        MultiHeadLatentAttention(8, 2, 16, **(GOOD | change))


@pytest.mark.parametrize("name, value", [("emb_size", 0), ("num_heads", "2"), ("max_seq_len", None)])
def test_constructor_rejects_sizes(name, value):
    args = {"emb_size": 8, "num_heads": 2, "max_seq_len": 16} | {name: value}
    with pytest.raises((ValueError, TypeError), match=name):
        MultiHeadLatentAttention(**args, **GOOD)


def test_forward_rejects_bad_input():
    mla = MultiHeadLatentAttention(8, 2, 6, **GOOD)
    with pytest.raises(ValueError, match=r"C=8, got shape \(1, 3, 7\)"):
        mla(torch.randn(1, 3, 7))
    with pytest.raises(ValueError, match="3-D"):
        mla(torch.randn(3, 8))
    with pytest.raises(TypeError, match="floating-point"):
        mla(torch.ones(1, 3, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="float64"):
        mla(torch.randn(1, 3, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="T=7 exceeds max_seq_len=6"):
        mla(torch.randn(1, 7, 8))
    with pytest.raises(TypeError, match="absorb must be a bool, got 'yes'"):
        mla(torch.randn(1, 3, 8), absorb="yes")
    with pytest.raises(TypeError, match="LatentCache or None, got dict"):
        mla(torch.randn(1, 3, 8), cache={})


def test_failed_append_leaves_cache_unchanged():
    mla = MultiHeadLatentAttention(8, 2, 6, **GOOD)
    cache = LatentCache()
    mla(torch.randn(2, 4, 8), cache=cache)
    latent, k_rope = cache.latent, cache.k_rope
    with pytest.raises(ValueError, match="cache holds 4 positions; 3 more exceed max_seq_len=6"):
        mla(torch.randn(2, 3, 8), cache=cache)
    with pytest.raises(ValueError, match=r"cache holds \(B, r_kv, d_rope\)=\(2, 4, 2\)"):
        mla(torch.randn(3, 1, 8), cache=cache)  # another batch size
    with pytest.raises(TypeError, match="cache holds torch.float32"):
        mla.double()(torch.randn(2, 1, 8, dtype=torch.float64), cache=cache)
    with pytest.raises(ValueError, match="same .B, T."):
        cache.append(torch.randn(2, 1, 4), torch.randn(2, 2, 2))
    with pytest.raises(TypeError, match="k_rope must be a floating-point 3-D tensor"):
        cache.append(torch.randn(2, 1, 4), torch.randn(2, 2))
    assert len(cache) == 4 and cache.latent is latent and cache.k_rope is k_rope


# float16 and bfloat16 against float64. rtol and the float16 atol are PyTorch's per-dtype defaults for
# attention (test/test_transformers.py: float16 1e-3 and 1e-3, bfloat16 rtol 1.6e-2); the bfloat16 atol
# is 1e-2, not 1e-3: each projection rounds to 8 significant bits, and outputs near zero keep the
# absolute error of their larger terms (3e-3 at most here).
HALF_TOL = {torch.float16: {"rtol": 1e-3, "atol": 1e-3}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-2}}


def half_and_rounded(mla, x, dtype):
    """``mla`` in ``dtype``, and in float64 with the same rounded weights and input: only arithmetic differs."""
    half = copy.deepcopy(mla).to(dtype)
    return half, x.to(dtype), copy.deepcopy(half).double(), x.to(dtype).double()


def full_and_cached(mla, x, absorb):
    """The full pass and token-by-token decoding with a LatentCache, concatenated."""
    cache = LatentCache()
    steps = torch.cat([mla(x[:, t : t + 1], cache=cache, absorb=absorb) for t in range(x.size(1))], dim=1)
    return {"full": mla(x, absorb=absorb), "cached": steps}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("absorb", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_half_precision_close_to_float64(shape, absorb, dtype):
    torch.manual_seed(0)
    half, x_half, rounded, x_rounded = half_and_rounded(make(*shape), torch.randn(2, 7, shape[0]), dtype)
    expected = rounded(x_rounded)
    for name, out in full_and_cached(half, x_half, absorb).items():
        assert out.dtype == dtype and bool(out.isfinite().all()), name
        torch.testing.assert_close(out.double(), expected, **HALF_TOL[dtype], msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("absorb", [False, True])
def test_scores_past_float16_range_stay_finite(absorb, dtype):
    """Inputs of size ~300: q . k passes 65,504 (float16's largest) before scaling; it is taken in float32."""
    torch.manual_seed(4)
    mla = MultiHeadLatentAttention(
        8, 2, 6, q_lora_rank=None, kv_lora_rank=4, qk_nope_head_dim=4, qk_rope_head_dim=2, v_head_dim=4
    ).eval()
    half, x_half, rounded, x_rounded = half_and_rounded(mla, torch.randn(1, 3, 8) * 300, dtype)
    q_nope, q_rope = rounded.queries(x_rounded)  # (B, H, T, d_nope), (B, H, T, d_rope)
    k_rope = rounded.latents(x_rounded)[1]  # (B, T, d_rope)
    rope_scores = q_rope @ k_rope.unsqueeze(1).transpose(-2, -1)  # (B, H, T, T)
    assert rope_scores.abs().max() > torch.finfo(torch.float16).max  # the overflow is real
    expected = rounded(x_rounded)
    for name, out in full_and_cached(half, x_half, absorb).items():
        assert bool(out.isfinite().all()), name
        torch.testing.assert_close(out.double(), expected, **HALF_TOL[dtype], msg=name)


def test_absorbed_weights_in_another_dtype():
    mla = make(*SHAPES[0]).half()
    folded = mla.absorbed_weights(torch.float32)
    exact = copy.deepcopy(mla).double().absorbed_weights()  # the same float16 weights, folded in float64
    for ours, ref in zip(folded, exact):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-6)
    assert all(w.dtype == torch.float16 for w in mla.absorbed_weights())  # default: the weights' dtype
    for bad in (torch.long, "float32"):
        with pytest.raises(TypeError, match=f"floating-point torch.dtype or None, got {bad!r}"):
            mla.absorbed_weights(bad)
