# %% [markdown]
# # Multi-query and grouped-query attention: the notebook
#
# The notebook of the chapter ["Multi-query and grouped-query attention"](../../chapters/11-gqa/).
# We compute what the KV cache costs, lay out the weights of grouped-query attention, check it
# against PyTorch's `scaled_dot_product_attention(enable_gqa=True)`, measure the cache, and train
# the same small model with H, H/2 and one key/value head.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# number of query heads, **H_kv** number of key/value heads (in formulas $H_{\mathrm{kv}}$), **hs**
# head size, **V** vocabulary size.

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
# ## Why: the memory of the cache
#
# The cache holds keys and values of every layer for every token:
#
# $$\text{numbers per token} = 2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs}.$$
#
# For Llama 2 7B ($L = 32$ layers, $H = 32$ heads of $\mathrm{hs} = 128$) in float16, with a context
# of 4096 tokens:

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm
from simple_llm.attention import attend

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # tiny models: float64 is cheap and exact
torch.set_num_threads(1)  # one thread is enough for tiny models
L, H, hs, context = 32, 32, 128, 4096
for name, H_kv in [("MHA", 32), ("GQA", 8), ("MQA", 1)]:
    per_token = 2 * L * H_kv * hs * 2  # bytes, float16
    print(
        f"{name}: H_kv = {H_kv:2}, {per_token // 1024:4} KiB per token, {per_token * context / 2**30:.3f} GiB"
    )

# %% [markdown]
# The same formula for every divisor of $H = 32$: the cache shrinks in proportion to $H_{\mathrm{kv}}$.

# %%
kv_heads = [1, 2, 4, 8, 16, 32]
kib = [2 * L * H_kv * hs * 2 // 1024 for H_kv in kv_heads]  # KiB per token, float16
print("KiB per token:", dict(zip(kv_heads, kib)))
fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
ax.plot(kv_heads, kib, "o-")
for name, H_kv in [("MQA", 1), ("GQA", 8), ("MHA", 32)]:
    ax.annotate(
        f"{name}: {kib[kv_heads.index(H_kv)]} KiB",
        (H_kv, kib[kv_heads.index(H_kv)]),
        xytext=(6, -14),
        textcoords="offset points",
    )
ax.set(
    xscale="log",
    yscale="log",
    xlabel="H_kv (key/value heads)",
    ylabel="KiB per token",
    title="KV cache, Llama 2 7B shape, float16",
)
ax.set_xticks(kv_heads, [str(h) for h in kv_heads])
ax.set_yticks(kib, [str(k) for k in kib])
ax.minorticks_off()
ax.set(xlim=(0.7, 90), ylim=(10, 800))
ax.grid(True, alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## The layout
#
# `MultiHeadAttention(..., num_kv_heads=H_kv)` keeps one projection `qkv` whose rows are
# [Q of $H$ heads | K of $H_{\mathrm{kv}}$ heads | V of $H_{\mathrm{kv}}$ heads], $\mathrm{hs}$ rows
# each. Query head $h$ reads key/value head $\lfloor h / (H / H_{\mathrm{kv}}) \rfloor$: heads 0, 1, 2
# share key/value head 0, heads 3, 4, 5 share head 1.

# %%
_ = torch.manual_seed(0)
gqa = simple_llm.MultiHeadAttention(
    num_heads=6, emb_size=24, head_size=4, max_seq_len=16, dropout=0.0, num_kv_heads=2
)
print("qkv.weight:", tuple(gqa.qkv.weight.shape), "= ((6 + 2·2)·4, 24)")
print("key/value head of each query head:", [head.kv_index for head in gqa.heads])
for H_kv in (6, 2, 1):
    module = simple_llm.MultiHeadAttention(6, 24, 4, 16, num_kv_heads=H_kv)
    print(f"H_kv = {H_kv}: {sum(p.numel() for p in module.parameters())} parameters")

# %% [markdown]
# ## Equal to PyTorch's `enable_gqa`
#
# Take the three slices of `qkv` by hand, let `F.scaled_dot_product_attention(..., enable_gqa=True)`
# do the attention, and apply the output projection: the result equals our module. So does the
# plain formula after copying each key/value head to its group with `repeat_interleave`.

# %%
x = torch.randn(2, 7, 24)  # (B, T, C)
q, k, v = gqa.qkv(x).split([6 * 4, 2 * 4, 2 * 4], dim=-1)  # (B, T, H·hs), 2 × (B, T, H_kv·hs)
q = q.view(2, 7, 6, 4).transpose(1, 2)  # (B, H, T, hs)
k = k.view(2, 7, 2, 4).transpose(1, 2)  # (B, H_kv, T, hs)
v = v.view(2, 7, 2, 4).transpose(1, 2)  # (B, H_kv, T, hs)
y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # (B, H, T, hs)
equal_sdpa = torch.allclose(gqa.proj(y.transpose(1, 2).reshape(2, 7, 24)), gqa(x), rtol=0, atol=1e-12)
causal = torch.ones(7, 7, dtype=torch.bool).tril()  # (T, T)
y2, _ = attend(q, k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1), causal, None)  # (B, H, T, hs)
equal_copies = torch.allclose(y2, y, rtol=0, atol=1e-12)
assert equal_sdpa and equal_copies
print("ours == SDPA(enable_gqa=True):", equal_sdpa, "| == repeat_interleave:", equal_copies)

# %% [markdown]
# With $H_{\mathrm{kv}} = H$ the module is plain multi-head attention, with the same parameters and the same
# `state_dict` as before: old checkpoints load unchanged.

# %%
plain = simple_llm.MultiHeadAttention(6, 24, 4, 16, dropout=0.0)
same = simple_llm.MultiHeadAttention(6, 24, 4, 16, dropout=0.0, num_kv_heads=6)
same.load_state_dict(plain.state_dict())
identical = torch.equal(same(x), plain(x))
assert identical
print("num_kv_heads = num_heads loads a plain checkpoint, same output:", identical)

# %% [markdown]
# ## The cache, measured
#
# Three small GPTs that differ only in $H_{\mathrm{kv}}$ read the same 32 tokens into their caches;
# the measured bytes per token match the formula $2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs} \cdot 8$
# (float64 here: 8 bytes a number).

# %%
ids = torch.randint(0, 50, (1, 32))  # (B, T)
for H_kv in (4, 2, 1):
    model = simple_llm.GPT(50, 32, 32, 4, 8, 2, dropout=0.0, num_kv_heads=H_kv, positions="rope").eval()
    cache = model.new_cache()
    model(ids, cache)
    measured = sum(c.nbytes() for c in cache) // 32
    print(f"H_kv = {H_kv}: cache keys {tuple(cache[0].keys.shape)}, {measured} bytes per token")
    assert measured == 2 * 2 * H_kv * 8 * 8

# %% [markdown]
# ## What is lost
#
# Fewer key/value heads mean fewer ways to look at the past. A small test: at every $t \ge 5$ the
# model names four earlier tokens, $x_{t-1}$, $x_{t-2}$, $x_{t-3}$ and $x_{t-5}$, with $H = 4$ query
# heads, rotary positions and $H_{\mathrm{kv}} = 4$, 2 or 1; 100 Adam steps, three seeds each.

# %%
V, T, C, H, hs = 8, 12, 32, 4, 8
OFFSETS = (1, 2, 3, 5)
K = max(OFFSETS)
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (128, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 4): x[t − k]


class Tiny(nn.Module):
    def __init__(self, H_kv):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # token -> (C,)
        self.attn = simple_llm.MultiHeadAttention(H, C, hs, T, dropout=0.0, num_kv_heads=H_kv, rope=True)
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def forward(self, x):
        h = self.tok(x)  # (B, T, C)
        h = h + self.attn(h)  # (B, T, C): residual connection
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 4, V)


def accuracy(H_kv, seed):
    _ = torch.manual_seed(seed)
    model = Tiny(H_kv)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = targets(x_train)[:, K:].reshape(-1)  # (B·(T−5)·4,)
    for _ in range(100):
        loss = F.cross_entropy(model(x_train)[:, K:].reshape(-1, V), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(x_test).argmax(dim=-1)  # (B, T, 4)
    return (pred[:, K:] == targets(x_test)[:, K:]).double().mean().item()


results = {H_kv: [accuracy(H_kv, seed) for seed in range(3)] for H_kv in (4, 2, 1)}
for H_kv, accs in results.items():
    print(f"H_kv = {H_kv}: accuracy per seed", [round(a, 3) for a in accs], "mean", round(sum(accs) / 3, 3))
spread = max(max(a) - min(a) for a in results.values())  # between seeds of one model
means = [sum(a) / 3 for a in results.values()]
print(
    "largest spread between seeds:",
    round(spread, 3),
    "| between the means:",
    round(max(means) - min(means), 3),
)

# %% [markdown]
# The same accuracies as a picture: one dot per seed, a bar for the mean.

# %%
fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
variants = [("MHA", 4), ("GQA", 2), ("MQA", 1)]
for i, (_, H_kv) in enumerate(variants):
    ax.plot([i] * 3, results[H_kv], "o", color="C0", alpha=0.7, label="one seed" if i == 0 else None)
    ax.hlines(
        sum(results[H_kv]) / 3, i - 0.25, i + 0.25, color="C1", linewidth=2, label="mean" if i == 0 else None
    )
ax.set_xticks(range(3), [f"{name}\nH_kv = {H_kv}" for name, H_kv in variants])
ax.set(ylabel="accuracy", ylim=(0.5, 1.02), title="Accuracy of each seed, H = 4")
ax.legend(loc="lower right")
ax.grid(True, axis="y", alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## Summary
#
# Grouped-query attention divides the cache by $H / H_{\mathrm{kv}}$, is exactly PyTorch's `enable_gqa`
# layout, and with $H_{\mathrm{kv}} = H$ is the plain module. On this small task the seed matters more
# than $H_{\mathrm{kv}}$; the chapter discusses what the papers measure on large models.
