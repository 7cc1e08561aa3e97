# %% [markdown]
# # Multi-head attention: the notebook
#
# We build `MultiHeadAttention` step by step from the parts of `simple_llm`, say the shape of the
# tensor after every step, and check that the hand-built version equals the package's module and
# `torch.nn.MultiheadAttention`. The chapter: [Multi-head attention](../../chapters/03-multi-head/).
#
# Shape legend: `B` batch, `T` sequence length, `C` embedding size (`emb_size`), `H` number of
# heads (`num_heads`), `hs` head size (`head_size`).

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
# ## The module and its input
#
# Small sizes so that everything stays visible: 2 sequences of 6 tokens, `C = 32`, 4 heads of 8.
# We compute in float64, so comparisons can use a tight tolerance.

# %%
import math

import torch
from IPython.display import Markdown

from simple_llm import MultiHeadAttention, plot_attention_heads

# %matplotlib inline
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 32, 4, 8
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=16, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
shapes = [("x", tuple(x.shape), "(B, T, C)")]
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## Step 1. Project first
#
# One matrix, `qkv`, projects every token into the queries, keys and values of all heads at once:
# `C → 3·H·hs`. The projection comes **before** the split into heads.

# %%
qkv = mha.qkv(x)  # (B, T, 3*H*hs)
shapes.append(("qkv = mha.qkv(x)", tuple(qkv.shape), "(B, T, 3·H·hs)"))
print(tuple(qkv.shape))  # (B, T, 3*H*hs)

# %% [markdown]
# ## Step 2. Then split into heads
#
# `view` cuts the last axis into `3 × H × hs`; `permute` brings the head axis forward, so each
# head works on its own `(T, hs)` matrix.

# %%
qkv5 = qkv.view(B, T, 3, H, hs)  # (B, T, 3, H, hs)
q, k, v = qkv5.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
shapes.append(("view(B, T, 3, H, hs)", tuple(qkv5.shape), "(B, T, 3, H, hs)"))
shapes.append(("q, k, v = permute(2, 0, 3, 1, 4)", tuple(q.shape), "(B, H, T, hs)"))
print(tuple(q.shape), tuple(k.shape), tuple(v.shape))  # (B, H, T, hs) x 3

# %% [markdown]
# ## Step 3. Scores, causal mask, softmax
#
# Attention scores `Q·Kᵀ / √hs` for all heads at once. The causal mask forbids looking into the
# future; the softmax runs over the key axis (the last one), so every row of weights sums to 1.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
shapes.append(("weights = softmax(q·kᵀ/√hs)", tuple(weights.shape), "(B, H, T, T)"))
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(B, H, T, dtype=torch.float64))
print("rows of weights sum to 1:", True)

# %% [markdown]
# ## Step 4. Weighted values and merging the heads
#
# `weights @ v` is the output of every head. To merge the heads, the head axis goes back in place
# (`transpose`), and only then `reshape` fuses `H × hs` into one axis. `view` without `transpose`
# would mix up heads and positions: chapter 7 shows this mistake.

# %%
y = weights @ v  # (B, H, T, hs)
merged = y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H*hs)
out = mha.proj(merged)  # (B, T, C)
shapes += [
    ("y = weights @ v", tuple(y.shape), "(B, H, T, hs)"),
    ("transpose(1, 2).reshape(B, T, H·hs)", tuple(merged.shape), "(B, T, H·hs)"),
    ("out = mha.proj(...)", tuple(out.shape), "(B, T, C)"),
]
print(tuple(out.shape))  # (B, T, C)

# %% [markdown]
# ## The shape table
#
# The table is built from the real tensors of this notebook, not typed by hand.

# %%
rows = [f"| `{step}` | `{shape}` | {legend} |" for step, shape, legend in shapes]
Markdown("\n".join(["| step | shape | legend |", "| --- | --- | --- |", *rows]))

# %% [markdown]
# ## The hand-built version equals the package's module
#
# The module's fast path computes the same through `F.scaled_dot_product_attention`.

# %%
torch.testing.assert_close(out, mha(x), rtol=1e-12, atol=1e-12)
torch.testing.assert_close(weights, mha.get_attention_weights(x), rtol=1e-12, atol=1e-12)
print("hand-built == MultiHeadAttention:", True)

# %% [markdown]
# ## Separate heads and the fused projection: the same parameters
#
# `mha.heads` (`mha.heads` in the original project, which still works) are views of the heads: each reads its own rows of
# `mha.qkv.weight`, there is no copy of the weights. The heads' outputs, concatenated and passed
# through `proj`, give the same result.

# %%
per_head = torch.cat([head(x) for head in mha.heads], dim=-1)  # (B, T, H*hs)
torch.testing.assert_close(mha.proj(per_head), mha(x), rtol=1e-12, atol=1e-12)
w_q0 = mha.heads[0].weights[0]  # (hs, C)
shares = w_q0.untyped_storage().data_ptr() == mha.qkv.weight.untyped_storage().data_ptr()
print("separate heads == fused path:", True)
print("head 0 weights live in mha.qkv.weight:", shares)

# %% [markdown]
# ## Equal to `torch.nn.MultiheadAttention`
#
# `to_torch()` moves our weights into PyTorch's module, `from_torch()` moves them back. PyTorch's
# mask has the opposite polarity: `True` means "masked out".

# %%
torch_mha = mha.to_torch()
future = ~causal  # True = masked out, the PyTorch convention
theirs, _ = torch_mha(x, x, x, attn_mask=future, need_weights=False)
torch.testing.assert_close(theirs, mha(x), rtol=1e-12, atol=1e-12)
back = MultiHeadAttention.from_torch(
    torch.nn.MultiheadAttention(C, H, batch_first=True).double(), max_seq_len=16
)
ref, _ = back.to_torch()(x, x, x, attn_mask=future, need_weights=False)
torch.testing.assert_close(back(x), ref, rtol=1e-12, atol=1e-12)
print("MultiHeadAttention == torch.nn.MultiheadAttention (both ways):", True)

# %% [markdown]
# ## Parameter count: 4·C² + 4·C
#
# Three projections `C → C` and the output projection `C → C`, each a `C × C` matrix and a bias of `C`.

# %%
n_params = sum(p.numel() for p in mha.parameters())
assert n_params == 4 * C**2 + 4 * C
print(f"C = {C}: {n_params} parameters = 4·{C}² + 4·{C}")

# %% [markdown]
# ## Cost: O(T²·C), and the number of heads does not change it
#
# We count multiply-adds (2 FLOPs each): projections `2·T·C·4C`, scores and weighting
# `2·2·H·T²·hs`. With `H·hs = C` the second term is `4·T²·C` whatever the number of heads.


# %%
def flops(T, C, H):
    hs = C // H
    return {"projections": 2 * T * C * 4 * C, "attention": 2 * 2 * H * T * T * hs}


for heads in (1, 2, 4, 8):
    print(f"H = {heads}:", flops(T=256, C=512, H=heads))
assert len({flops(256, 512, h)["attention"] for h in (1, 2, 4, 8)}) == 1
print("T doubled: attention ×", flops(512, 512, 8)["attention"] // flops(256, 512, 8)["attention"])

# %% [markdown]
# ## The heads' weights in a figure
#
# The weights of every head, obtained as in the original project:
# `[head.get_attention_weights(x) for head in mha.heads]`. One colour scale for all heads.
# The module is untrained, so the maps look alike: chapter 5 shows how heads specialise after
# training.

# %%
with torch.no_grad():
    per_head_weights = [head.get_attention_weights(x) for head in mha.heads]  # H x (B, T, T)
tokens = ["the", "cat", "sat", "on", "the", "mat"]
print(
    "weights of the last query, per head:", [[round(float(v), 2) for v in w[0, -1]] for w in per_head_weights]
)
plot_attention_heads(
    per_head_weights, tokens=tokens, lang="en", title="Attention weights of an untrained module"
)
