# %% [markdown]
# # Multi-head latent attention: the notebook
#
# The notebook of the chapter ["Multi-head latent attention"](../../chapters/15-latent-attention/).
# We build the latent of DeepSeek-V2 with its layer's parameter names, see why its rotary part is
# kept apart, fold the up-projections into the query and the output (the absorbed form) with the
# shapes at every step, decode token by token from a cache that holds only the latent and the
# rotary key, and compute the KV bytes per token of real models from their shapes.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# heads, **S** cached positions (keys); the module's own sizes **r_q** (`q_lora_rank`), **r_kv**
# (`kv_lora_rank`), **d_nope** (`qk_nope_head_dim`), **d_rope** (`qk_rope_head_dim`), **d_v**
# (`v_head_dim`); in formulas $r_{\mathrm{kv}}$, $d_{\mathrm{nope}}$, $d_{\mathrm{rope}}$, $d_v$.

# %%
# Colab has no simple_llm yet: install it from the project repository (does nothing locally).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("simple_llm") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/simple-llm/simple-llm"],
        check=True,
    )

# %% [markdown]
# ## The layer and its parameters
#
# A small layer: $C = 32$, $H = 4$ heads, a query latent of $r_q = 24$, a key/value latent of
# $r_{\mathrm{kv}} = 16$, per head $d_{\mathrm{nope}} = 8$ numbers without positions and
# $d_{\mathrm{rope}} = 4$ rotary ones, values of $d_v = 8$. The parameter names and shapes are
# those of a DeepSeek-V2/V3 attention layer, so its `state_dict` loads unchanged.

# %%
import math

import matplotlib.pyplot as plt
import torch

import simple_llm
from simple_llm.latent_attention import rotate_interleaved

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # tiny layer: float64 is cheap and exact
torch.set_num_threads(1)
_ = torch.manual_seed(0)
C, H, r_q, r_kv, d_nope, d_rope, d_v = 32, 4, 24, 16, 8, 4, 8
mla = simple_llm.MultiHeadLatentAttention(
    C,
    H,
    32,
    q_lora_rank=r_q,
    kv_lora_rank=r_kv,
    qk_nope_head_dim=d_nope,
    qk_rope_head_dim=d_rope,
    v_head_dim=d_v,
).eval()
for name, p in mla.state_dict().items():
    print(f"{name:26} {tuple(p.shape)}")

# %% [markdown]
# ## The latent
#
# `kv_a_proj_with_mqa` maps each token to $r_{\mathrm{kv}} + d_{\mathrm{rope}}$ numbers: the latent
# $c_s$ (normalised by RMSNorm) and one rotary key $k^R_s$ for all heads. Keys and values of every
# head are linear in the latent:
#
# $$k^C_{s,h} = W^{UK}_h c_s, \qquad v_{s,h} = W^{UV}_h c_s.$$
#
# So the cache needs only $c_s$ and $k^R_s$.

# %%
x = torch.randn(2, 6, C)  # (B, T, C)
latent, k_rope = mla.latents(x)  # (B, T, r_kv), (B, T, d_rope)
print("latent:", tuple(latent.shape), "| rotary key:", tuple(k_rope.shape))
mla_numbers = r_kv + d_rope
mha_numbers = H * (d_nope + d_rope) + H * d_v  # keys and values of every head
print(f"numbers cached per token: MLA {mla_numbers}, the same heads as MHA {mha_numbers}")

# %% [markdown]
# ## Why the rotary part is kept apart
#
# The score of head $h$ would be ${q^C_{t,h}}^\top W^{UK}_h c_s = \big({W^{UK}_h}^\top q^C_{t,h}\big)^\top c_s$:
# the key up-projection can move into the query once, for every key. With RoPE on that key the
# rotation $R_s$ of key position $s$ sits between them:
#
# $$(R_t q)^\top R_s W^{UK} c_s = q^\top R_{s-t} W^{UK} c_s,$$
#
# and the matrix depends on $s$: one folded query does not serve every key. Below, RoPE on the
# up-projected keys of head 0 and a query at position 3: the folded query gives the right score only
# for key position 0, whose rotation is the identity.

# %%
w_uk, w_ov = mla.absorbed_weights()  # (H, d_nope, r_kv), (C, H, r_kv)
c = torch.randn(4, r_kv)  # (S, r_kv): four cached latents, positions 0..3
q = torch.randn(d_nope)  # one query of head 0
angles = simple_llm.RotaryEmbedding(d_nope).angles(4, 0, torch.float64)  # (S, d_nope/2)
keys = rotate_interleaved(c @ w_uk[0].T, angles)  # (S, d_nope): RoPE on the up-projected keys
q_rot = rotate_interleaved(q[None], angles[3:])[0]  # (d_nope,): the query at position 3
exact = keys @ q_rot  # (S,)
folded = c @ (w_uk[0].T @ q_rot)  # (S,): one folded query for every key
print("folded query right for key position s:", [bool(torch.isclose(a, b)) for a, b in zip(exact, folded)])

# %% [markdown]
# DeepSeek therefore adds a small rotary part: per head a rotary query $q^R_{t,h}$ of
# $d_{\mathrm{rope}}$ numbers, and one rotary key $k^R_s$ shared by all heads (cached beside the
# latent). The score is the sum of both parts:
#
# $$\operatorname{score}_{t,s,h} = \frac{{q^C_{t,h}}^\top k^C_{s,h} + {q^R_{t,h}}^\top k^R_s}{\sqrt{d_{\mathrm{nope}} + d_{\mathrm{rope}}}}.$$
#
# Its rotation pairs neighbouring coordinates $(2i, 2i+1)$; chapter 9's `RotaryEmbedding` pairs
# $i$ with $i + d/2$. Same frequencies, other pairs: the two agree once the coordinates are permuted.

# %%
v = torch.randn(5, d_rope)  # (T, d_rope)
rope = simple_llm.RotaryEmbedding(d_rope)
ours = rotate_interleaved(v, rope.angles(5, 0, torch.float64))  # (T, d_rope)
perm = torch.cat([torch.arange(0, d_rope, 2), torch.arange(1, d_rope, 2)])  # evens, then odds
print("interleaved == rotate_half:", torch.allclose(ours, rope(v)))
print(
    "interleaved, permuted == rotate_half of the permuted:", torch.allclose(ours[:, perm], rope(v[:, perm]))
)

# %% [markdown]
# ## The absorbed form, step by step
#
# Fold $W^{UK}_h$ ($d_{\mathrm{nope}} \times r_{\mathrm{kv}}$) into the query, and
# $W^{UV}_h$ ($d_v \times r_{\mathrm{kv}}$) into the output projection $W^O_h$
# ($C \times d_v$):
#
# $$o_t = \sum_h W^O_h \sum_s p_{t,s,h} W^{UV}_h c_s = \sum_h \big(W^O_h W^{UV}_h\big) \sum_s p_{t,s,h}\, c_s.$$
#
# First the scores: every head's query moves into the latent space of $r_{\mathrm{kv}}$ numbers.

# %%
q_nope, q_rope = mla.queries(x)  # (B, H, T, d_nope), (B, H, T, d_rope)
q_latent = torch.einsum("bhtn,hnr->bhtr", q_nope, w_uk)  # (B, H, T, r_kv)
scores = q_latent @ latent[:, None].transpose(-2, -1)  # (B, H, T, S)
scores = scores + q_rope @ k_rope[:, None].transpose(-2, -1)  # (B, H, T, S)
causal = torch.ones(6, 6, dtype=torch.bool).tril()  # (T, S)
weights = (
    (scores / math.sqrt(d_nope + d_rope)).masked_fill(~causal, float("-inf")).softmax(-1)
)  # (B, H, T, S)
for name, t in [("q_nope", q_nope), ("w_uk", w_uk), ("q_latent", q_latent), ("weights", weights)]:
    print(f"{name:9} {tuple(t.shape)}")

# %% [markdown]
# Then the output: the weights average the latents, still $r_{\mathrm{kv}}$ numbers per head, and
# `w_ov` ($C \times H \times r_{\mathrm{kv}}$) maps them to $C$. Keys and values are never built per
# head; the result equals the plain form, which up-projects them.

# %%
out_latent = weights @ latent[:, None]  # (B, H, T, r_kv)
absorbed = torch.einsum("bhtr,chr->btc", out_latent, w_ov)  # (B, T, C)
for name, t in [("out_latent", out_latent), ("w_ov", w_ov), ("absorbed", absorbed)]:
    print(f"{name:10} {tuple(t.shape)}")
plain = mla(x, absorb=False)  # (B, T, C)
print("absorbed == plain form:", torch.allclose(absorbed, plain, rtol=0, atol=1e-12))

# %% [markdown]
# ## Decoding from the latent cache
#
# `LatentCache` keeps `latent` $(B, S, r_{\mathrm{kv}})$ and `k_rope` $(B, S, d_{\mathrm{rope}})$;
# with a cache the module attends in the absorbed form. A prefill of 4 tokens, then one token at a
# time, gives the outputs of the full causal pass.

# %%
cache = simple_llm.LatentCache()
steps = [mla(x[:, :4], cache=cache)] + [mla(x[:, t : t + 1], cache=cache) for t in (4, 5)]  # (B, T_i, C)
decoded = torch.cat(steps, dim=1)  # (B, T, C)
print("prefill + decode == full pass:", torch.allclose(decoded, mla(x), rtol=0, atol=1e-12))
print("cache:", tuple(cache.latent.shape), tuple(cache.k_rope.shape), f"{cache.nbytes()} bytes")
print("bytes = B · T · (r_kv + d_rope) · 8:", cache.nbytes() == 2 * 6 * (r_kv + d_rope) * 8)

# %% [markdown]
# ## KV bytes per token at real shapes
#
# MHA, GQA and MQA cache $2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs}$ numbers per token, MLA
# $L \cdot (r_{\mathrm{kv}} + d_{\mathrm{rope}})$. The shapes from the models' configurations, in
# bfloat16 (2 bytes a number): Llama-3-8B ($L = 32$, $H_{\mathrm{kv}} = 8$, $\mathrm{hs} = 128$),
# Llama-3-70B ($L = 80$, $H_{\mathrm{kv}} = 8$, $\mathrm{hs} = 128$), DeepSeek-V2 ($L = 60$) and
# DeepSeek-V3 ($L = 61$), both with $r_{\mathrm{kv}} = 512$, $d_{\mathrm{rope}} = 64$ and
# $H = 128$. The last three rows put MHA, GQA and MQA with $\mathrm{hs} = 128$ at DeepSeek-V3's
# 61 layers and 128 heads.

# %%
rows = [
    ("Llama-3-8B", "GQA (8)", {"num_layers": 32, "num_kv_heads": 8, "head_size": 128}),
    ("Llama-3-70B", "GQA (8)", {"num_layers": 80, "num_kv_heads": 8, "head_size": 128}),
    ("DeepSeek-V2", "MLA", {"num_layers": 60, "kv_lora_rank": 512, "qk_rope_head_dim": 64}),
    ("DeepSeek-V3", "MLA", {"num_layers": 61, "kv_lora_rank": 512, "qk_rope_head_dim": 64}),
    ("V3 shape", "MHA (128)", {"num_layers": 61, "num_kv_heads": 128, "head_size": 128}),
    ("V3 shape", "GQA (8)", {"num_layers": 61, "num_kv_heads": 8, "head_size": 128}),
    ("V3 shape", "MQA (1)", {"num_layers": 61, "num_kv_heads": 1, "head_size": 128}),
]
kib = [simple_llm.kv_cache_bytes_per_token(**shape, dtype=torch.bfloat16) / 1024 for _, _, shape in rows]
print(f"{'model':12} {'attention':10} {'KiB/token':>9} {'GiB per 131072 tokens':>22}")
for (model, kind, _), k in zip(rows, kib):
    print(f"{model:12} {kind:10} {k:9.1f} {k * 131072 / 2**20:22.2f}")
print("MLA caches as much as GQA with this many key/value heads:", (512 + 64) / (2 * 128))
print("MHA / MLA at DeepSeek-V3's shape:", round(kib[4] / kib[3], 1))

# %% [markdown]
# The same numbers as a picture (logarithmic axis).

# %%
labels = [f"{model}, {kind}" for model, kind, _ in rows]
colors = ["#c44e52" if kind == "MLA" else "#4c72b0" for _, kind, _ in rows]
fig, ax = plt.subplots(figsize=(4.6, 3.6), layout="constrained")
ax.barh(labels[::-1], kib[::-1], color=colors[::-1])
for i, k in enumerate(kib[::-1]):
    ax.annotate(f"{k:g}", (k, i), xytext=(3, 0), textcoords="offset points", va="center")
ax.set(xscale="log", xlim=(10, 30000), xlabel="KiB per token, bfloat16", title="KV cache per token")
ax.grid(True, axis="x", alpha=0.3)
plt.close(fig)
fig
