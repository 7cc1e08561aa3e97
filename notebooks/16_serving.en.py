# %% [markdown]
# # Serving: the notebook
#
# The notebook of the chapter ["Serving"](../../chapters/16-serving/). We count the FLOPs and the
# bytes of a prefill and of a decoding step from the shapes of Llama-3-8B, place them on the
# roofline of an NVIDIA H100, split a long cache into parts and merge their attention with
# `simple_llm.merge_attention`, and decode several sequences from one `simple_llm.PagedKVCache`.
#
# Shape legend (the same as in the package): **B** batch, **T** sequence length, **H** heads,
# **H_kv** key/value heads, **hs** head size, **S** positions in the cache.

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
# ## FLOPs and bytes per token
#
# Llama-3-8B: $C = 4096$, 32 layers, $H = 32$ query heads, $H_{\mathrm{kv}} = 8$ key/value heads of
# $\mathrm{hs} = 128$, a feed-forward layer of 14336 and a vocabulary of 128256. A matrix of $n$
# weights costs $2n$ FLOPs per token (a multiply and an add) and, in bfloat16, $2n$ bytes read once
# per forward pass, however many tokens share that pass.

# %%
# %matplotlib inline
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

C, L, H, H_kv, hs, F_ff, V = 4096, 32, 32, 8, 128, 14336, 128256
per_layer = C * H * hs + 2 * C * H_kv * hs + H * hs * C + 3 * C * F_ff  # q, k, v, o and the SwiGLU MLP
weights = L * per_layer + C * V  # the output head; the embedding is a lookup, not a product
kv_bytes_per_token = 2 * L * H_kv * hs * 2  # keys and values, every layer, bfloat16
print(f"weights in the products: {weights / 1e9:.2f} billion = {2 * weights / 1e9:.1f} GB in bfloat16")
print(f"KV cache per token: {kv_bytes_per_token / 1024:.0f} KiB")

# %% [markdown]
# One forward pass over `new` tokens per sequence for `batch` sequences, each with `context`
# positions before it: the products cost $2 \cdot \text{weights}$ FLOPs per token, attention
# $4 L H \mathrm{hs}$ per query and key pair it sees ($QK^\top$ and the weighted sum of values).
# Bytes: the weights once, and the whole KV cache of every sequence (read, plus the new keys and
# values written). Activations are left out: they are small next to these.


# %%
def forward_cost(new: int, batch: int, context: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one forward pass: `new` tokens per sequence after `context` cached ones."""
    pairs = new * context + new * (new + 1) / 2  # (query, key) pairs each sequence attends, causal
    flops = batch * (2 * weights * new + 4 * L * H * hs * pairs)
    moved = 2 * weights + batch * kv_bytes_per_token * (context + new)
    return flops, moved


cases = {
    "prefill, T=4096": forward_cost(4096, 1, 0),
    "decode, B=1": forward_cost(1, 1, 4096),
    "decode, B=64": forward_cost(1, 64, 4096),
}
for name, (flops, moved) in cases.items():
    print(
        f"{name:19s} {flops / 1e12:8.3f} TFLOP {moved / 1e9:6.1f} GB  intensity {flops / moved:7.1f} FLOP/byte"
    )

# %% [markdown]
# ## The roofline of an H100
#
# The H100 SXM: 989 TFLOP/s of dense bfloat16 matrix products and 3.35 TB/s of HBM3 bandwidth
# (NVIDIA's data sheet). A pass of intensity $I$ FLOP/byte cannot run faster than
# $\min(989 \cdot 10^{12},\ 3.35 \cdot 10^{12} \cdot I)$ FLOP/s; the two limits meet at the ridge
# point, $989 / 3.35$ FLOP/byte. Below it the pass waits for memory, above it for the tensor cores.

# %%
peak, bandwidth = 989e12, 3.35e12  # H100 SXM: dense bf16 FLOP/s, HBM3 bytes/s
ridge = peak / bandwidth
print(f"ridge point: {ridge:.0f} FLOP/byte")
for name, (flops, moved) in cases.items():
    seconds = max(flops / peak, moved / bandwidth)  # the roofline's lower bound on the time
    bound = "memory" if moved / bandwidth > flops / peak else "compute"
    tokens = (4096 if name.startswith("prefill") else int(name.split("=")[1])) / seconds
    print(
        f"{name:19s} {bound + '-bound':14s} at least {seconds * 1e3:6.2f} ms, at most {tokens:8.0f} tokens/s"
    )

# %%
intensity = torch.logspace(-1, 4.5, 200, dtype=torch.float64)  # FLOP/byte
fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
ax.loglog(intensity, torch.clamp(bandwidth * intensity, max=peak) / 1e12, color="black")
ax.axvline(ridge, color="lightgrey", linestyle="--")
for (name, (flops, moved)), color in zip(cases.items(), ["C3", "C0", "C2"]):
    point = flops / moved
    ax.plot(point, min(peak, bandwidth * point) / 1e12, "o", color=color, label=name)
ax.set(
    xlabel="arithmetic intensity, FLOP/byte",
    ylabel="attainable TFLOP/s",
    title="The roofline: H100 SXM, Llama-3-8B",
)
ax.legend(loc="lower right")
plt.close(fig)
fig

# %% [markdown]
# ## Split-KV decoding
#
# One query token per sequence and head gives $B \cdot H$ rows of attention; with $B = 1$ and
# $H = 32$ that is 32 rows, fewer than the 132 streaming multiprocessors of an H100. Split-KV
# (Flash-Decoding) also splits the keys: each part of the cache is attended separately, then the
# parts are merged by their log-sum-exp. Here a cache of 1000 keys in four parts of different sizes.

# %%
torch.manual_seed(0)
q = torch.randn(1, 8, 1, 64, dtype=torch.float64)  # (B, H, 1, hs): one new token
k = torch.randn(1, 8, 1000, 64, dtype=torch.float64)  # (B, H, S, hs)
v = torch.randn(1, 8, 1000, 64, dtype=torch.float64)  # (B, H, S, hs)
bounds = [0, 100, 350, 999, 1000]  # four parts, the last of one key
parts = [
    simple_llm.tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True)
    for a, b in zip(bounds, bounds[1:])
]
out, lse = simple_llm.merge_attention([o for o, _ in parts], [s for _, s in parts])
print("merged:", tuple(out.shape), "lse:", tuple(lse.shape))  # (B, H, 1, hs), (B, H, 1)
print("equals SDPA over all 1000 keys:", torch.allclose(out, F.scaled_dot_product_attention(q, k, v)))
share = torch.stack([torch.exp(s - lse) for _, s in parts])[:, 0, 0, 0]  # (4,) head 0
print(
    "head 0, weight of each part:", [round(w, 3) for w in share.tolist()], "sum", round(share.sum().item(), 6)
)

# %% [markdown]
# The weight of a part is $e^{\mathrm{lse}_p - \mathrm{lse}}$, its share of the softmax's denominator;
# the weights sum to 1. A part in which every key is masked has $\mathrm{lse}_p = -\infty$ and weight 0.

# %%
causal = torch.ones(4, 6, dtype=torch.bool).tril(diagonal=2)  # (T_q, S): query i sees keys up to i + 2
q4 = torch.randn(1, 2, 4, 16, dtype=torch.float64)  # (B, H, T_q, hs)
k6, v6 = torch.randn(2, 1, 2, 6, 16, dtype=torch.float64).unbind(0)  # (B, H, S, hs) each
halves = []
for a, b in [(0, 3), (3, 6)]:
    s = q4 @ k6[..., a:b, :].transpose(-2, -1) / math.sqrt(16)  # (B, H, T_q, 3)
    s = s.masked_fill(~causal[:, a:b], -math.inf)
    p_lse = torch.logsumexp(s, dim=-1)  # (B, H, T_q), -inf where every key of the part is masked
    halves.append((torch.softmax(s, dim=-1).nan_to_num() @ v6[..., a:b, :], p_lse))
print("query 0, lse of the second half:", halves[1][1][0, 0, 0].item())
merged, _ = simple_llm.merge_attention([o for o, _ in halves], [s for _, s in halves])
reference = F.scaled_dot_product_attention(q4, k6, v6, attn_mask=causal)
print("causal halves merged equal SDPA:", torch.allclose(merged, reference))

# %% [markdown]
# ## A paged KV cache
#
# Three sequences share a pool of 12 blocks of 4 positions. Their prompts have 7, 2 and 11 tokens;
# then four decoding steps append one token to each, in one batch. A new block is taken only when a
# sequence's last block is full, so the blocks of the three sequences interleave in the pool.

# %%
torch.manual_seed(1)
cache = simple_llm.PagedKVCache(12, 4, num_kv_heads=2, head_size=16, dtype=torch.float64)
lengths = {0: 7, 1: 2, 2: 11}
for seq, T in lengths.items():
    kv = torch.randn(2, 2, T, 16, dtype=torch.float64)  # keys and values (H_kv, T, hs)
    cache.append([seq], [kv[0]], [kv[1]])
for _ in range(4):
    kv = torch.randn(2, 3, 2, 1, 16, dtype=torch.float64)  # keys and values (B, H_kv, 1, hs)
    cache.append([0, 1, 2], list(kv[0]), list(kv[1]))
for seq in cache.sequences():
    print(f"sequence {seq}: {cache.length(seq):2d} positions, block table {cache.block_table(seq)}")
print(f"blocks in use: {cache.num_used_blocks} of {cache.num_blocks}, {cache.nbytes()} bytes")
print(
    "a contiguous cache for 16 positions each would hold",
    3 * 16,
    "positions, the blocks hold",
    cache.num_used_blocks * 4,
)

# %% [markdown]
# The block table maps a sequence's positions to blocks: position $t$ is slot $t \bmod 4$ of block
# number $\lfloor t / 4 \rfloor$ in its table. The picture shows the tables on the left and the
# pool on the right, coloured by the sequence that owns each block.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(5.0, 2.4), layout="constrained", width_ratios=[1, 2])
colors = ["C0", "C1", "C2"]
owner = {b: seq for seq in cache.sequences() for b in cache.block_table(seq)}
for seq in cache.sequences():
    for i, b in enumerate(cache.block_table(seq)):
        left.add_patch(plt.Rectangle((i, -seq - 1), 1, 1, facecolor=colors[seq], edgecolor="white"))
        left.text(i + 0.5, -seq - 0.5, str(b), ha="center", va="center", color="white")
left.set(xlim=(0, 4), ylim=(-3, 0), title="block tables", xticks=[], yticks=[-0.5, -1.5, -2.5])
left.set_yticklabels([f"seq {s}" for s in cache.sequences()])
for b in range(cache.num_blocks):
    face = colors[owner[b]] if b in owner else "whitesmoke"
    right.add_patch(plt.Rectangle((b, 0), 1, 1, facecolor=face, edgecolor="white"))
    right.text(b + 0.5, 0.5, str(b), ha="center", va="center", color="white" if b in owner else "grey")
right.set(xlim=(0, cache.num_blocks), ylim=(0, 1), title="the pool of blocks", xticks=[], yticks=[])
plt.close(fig)
fig

# %% [markdown]
# Decoding reads each sequence's keys through its table. The paged attention of the batch equals
# attention over each sequence's keys laid out contiguously (gathered here from the table).

# %%
q = torch.randn(3, 4, 1, 16, dtype=torch.float64)  # (B, H, 1, hs): 4 query heads over 2 key/value heads
paged = cache.attend(q, [0, 1, 2])  # (B, H, 1, hs)
same = []
for b, seq in enumerate(cache.sequences()):
    keys, values = cache.gather(seq)  # (H_kv, S, hs) each
    contiguous = F.scaled_dot_product_attention(q[b : b + 1], keys[None], values[None], enable_gqa=True)
    same.append(torch.allclose(paged[b : b + 1], contiguous))
print("paged attention equals contiguous attention for every sequence:", all(same))
cache.free(1)
print(f"after freeing sequence 1: {cache.num_used_blocks} blocks in use, {cache.num_free_blocks} free")
