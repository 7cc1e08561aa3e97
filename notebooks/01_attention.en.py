# %% [markdown]
# # Attention from scratch: the notebook
#
# The notebook of the chapter ["Attention from scratch"](../../chapters/01-attention/). We build
# scaled dot-product attention step by step, check every shape, and at the end compare the result
# with `simple_llm.HeadAttention`.
#
# Shape legend (the same as in the package): **B** batch, **T** sequence length,
# **C** embedding size (`emb_size`), **hs** head size (`head_size`).

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
# ## The input and three projections
#
# The input `x` is a batch of $B$ sequences of $T$ embeddings of size $C$. Queries, keys and
# values are three different linear projections of **the same** `x` into a space of size
# $\mathrm{hs}$.
# We compute in float64. Its rounding error is about $10^{-16}$ of a value (float32: about $10^{-7}$), so
# the comparisons with the package below can use tolerances some nine orders of magnitude
# tighter than float32 needs, and a real bug cannot hide in rounding noise. Comparisons still need a
# tolerance: two correct programs that add in a different order differ in the last bits.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

import simple_llm

# %matplotlib inline

torch.set_default_dtype(torch.float64)  # rounding error ~1e-16: tiny tolerances suffice
_ = torch.manual_seed(0)
B, T, C, hs = 2, 5, 8, 4
x = torch.randn(B, T, C)
q_proj, k_proj, v_proj = nn.Linear(C, hs), nn.Linear(C, hs), nn.Linear(C, hs)
q, k, v = q_proj(x), k_proj(x), v_proj(x)
print("x:", tuple(x.shape))  # (B, T, C)
print("q, k, v:", tuple(q.shape), tuple(k.shape), tuple(v.shape))  # (B, T, hs) each

# %% [markdown]
# The page writes $Q = xW_q$: a row vector $x$ times a matrix $W_q$ of shape `(C, hs)`, biases
# left out. `nn.Linear(C, hs)` stores its weight the other way round, `(hs, C)`, and computes
# $xW^\top + b$. So the page's $W_q$ is `q_proj.weight.T` (`Wq` below), and the layer adds its bias
# `q_proj.bias`.
# `finfo(...).eps` is the rounding step of a dtype near 1.

# %%
Wq = q_proj.weight.T  # (C, hs): the page's Wq
print(
    "q_proj.weight:", tuple(q_proj.weight.shape), "Wq = q_proj.weight.T:", tuple(Wq.shape)
)  # (hs, C), (C, hs)
torch.testing.assert_close(q, x @ Wq + q_proj.bias)
print("q_proj(x) == x @ Wq + q_proj.bias:", torch.allclose(q, x @ Wq + q_proj.bias))
print("eps float64:", torch.finfo(torch.float64).eps, "| eps float32:", torch.finfo(torch.float32).eps)

# %% [markdown]
# ## Attention scores
#
# The score `scores[b, i, j]` is the dot product of the query of token $i$ and the key of token $j$.
# One matrix product with the transposed keys gives all pairs at once.

# %%
kT = k.transpose(-2, -1)  # (B, hs, T)
scores = q @ kT  # (B, T, T)
print("scores:", tuple(scores.shape))  # (B, T, T): a row is a query, a column is a key
by_hand = (q[0, 1] * k[0, 3]).sum()  # query 1 and key 3 of the first batch item
torch.testing.assert_close(scores[0, 1, 3], by_hand)
print("scores[0, 1, 3] == q[0, 1] · k[0, 3]:", torch.allclose(scores[0, 1, 3], by_hand))

# %% [markdown]
# ## Why the scores are scaled
#
# If the components of a query and a key are independent, with mean 0 and variance 1, then
# $q \cdot k$ is a sum of $\mathrm{hs}$ such products and its variance is $\mathrm{hs}$. Let us check
# on real tensors: the variance grows with $\mathrm{hs}$, and after dividing by $\sqrt{\mathrm{hs}}$ it
# stays near 1.

# %%
_ = torch.manual_seed(0)
N = 4000  # (query, key) pairs per size
print("  hs |  var of q·k | var of q·k / √hs")
for size in (4, 16, 64, 256):
    qs, ks = torch.randn(N, size), torch.randn(N, size)
    dots = (qs * ks).sum(dim=-1)  # (N,)
    print(f"{size:>4} | {dots.var().item():11.1f} | {(dots / math.sqrt(size)).var().item():16.2f}")

# %% [markdown]
# What is wrong with large scores? Their softmax is nearly one-hot: one weight near 1, the rest
# near 0. The derivative of softmax is the Jacobian $J = \operatorname{diag}(p) - pp^\top$, and for a
# nearly one-hot row it is nearly zero. The gradient that reaches the query is not $J$ alone,
# though. For the scores $s = Kq/\sqrt{\mathrm{hs}}$ of one query $q$ against the keys $K$ of its row,
#
# $$\frac{\partial p}{\partial q} = \frac{1}{\sqrt{\mathrm{hs}}}\,JK,$$
#
# and without the scale the factor $1/\sqrt{\mathrm{hs}}$ is gone, so the keys, whose length grows as
# $\sqrt{\mathrm{hs}}$, multiply $J$ at full size. Let us measure, for rows of $T = 16$ scores,
# without and with the scale: the mean largest weight of a row, the mean norm of $J$, and the norm
# of $\partial p/\partial q$ (Frobenius), its median and its mean over 500 rows.


# %%
def saturation(size, scale, rows=500, length=16):
    """Per row of scores: the largest weight, the norm of the softmax Jacobian, the norm of dp/dq."""
    qs, ks = torch.randn(rows, size), torch.randn(rows, length, size)
    factor = 1 / math.sqrt(size) if scale else 1.0
    p = ((ks @ qs.unsqueeze(-1)).squeeze(-1) * factor).softmax(dim=-1)  # (rows, length)
    jac = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (rows, length, length)
    dp_dq = jac @ ks * factor  # (rows, length, size): the chain rule through s = K·q·factor
    return p.amax(dim=-1), torch.linalg.matrix_norm(jac), torch.linalg.matrix_norm(dp_dq)  # (rows,) each


_ = torch.manual_seed(0)
sizes = [2**i for i in range(11)]  # hs = 1 … 1024
raw = [saturation(s, scale=False) for s in sizes]
scaled = [saturation(s, scale=True) for s in sizes]
shown = (4, 16, 64, 256, 512, 1024)
print("  hs | max weight, raw |  scaled | norm of J, raw |  scaled")
for s, (m0, j0, _), (m1, j1, _) in zip(sizes, raw, scaled):
    if s in shown:
        print(f"{s:>4} | {m0.mean():15.3f} | {m1.mean():7.3f} | {j0.mean():14.3f} | {j1.mean():7.3f}")
print()
print("  hs | norm of dp/dq, raw: median |   mean | share < 0.001 | scaled: median |   mean")
for s, (_, _, g0), (_, _, g1) in zip(sizes, raw, scaled):
    if s in shown:
        share = (g0 < 1e-3).double().mean()
        print(
            f"{s:>4} | {g0.median():26.4f} | {g0.mean():6.2f} | {share:13.2f} | "
            f"{g1.median():14.2f} | {g1.mean():6.2f}"
        )

# %% [markdown]
# Without the scale the gradient does not simply vanish. The median, after a rise up to
# $\mathrm{hs} = 16$, falls to 0.0008 at $\mathrm{hs} = 1024$, where half of the rows are below 0.001:
# in most rows one key takes all the weight and the query gets next to nothing. The mean, though,
# grows: in the rare rows where two keys nearly tie, $\partial p/\partial q$ is large. The
# gradient ends up in a few queries. With the scale the median and the mean stay together, near
# 0.3, at every head size.
#
# The same numbers as a plot (the third panel on a log scale).

# %%
# One plot above the other: readable on a phone too.
fig, axes = plt.subplots(3, 1, figsize=(5.8, 9.4), layout="constrained")
for ax, column, name in zip(axes[:2], (0, 1), ("Largest weight of a row", "Norm of the softmax Jacobian")):
    ax.plot(sizes, [r[column].mean() for r in raw], "o-", label="q·k")
    ax.plot(sizes, [r[column].mean() for r in scaled], "s-", label="q·k / √hs")
    ax.set_ylabel("mean over 500 rows")
    ax.set_title(name)
ax = axes[2]
for rows, marker, colour, name in ((raw, "o", "C0", "q·k"), (scaled, "s", "C1", "q·k / √hs")):
    ax.plot(sizes, [r[2].median() for r in rows], marker + "-", color=colour, label=f"median, {name}")
    ax.plot(sizes, [r[2].mean() for r in rows], marker + "--", color=colour, label=f"mean, {name}")
ax.set_yscale("log")
ax.set_ylabel("over 500 rows")
ax.set_title("Norm of dp/dq, the gradient that reaches the query")
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes[::2], [str(s) for s in sizes[::2]])
    ax.set_xlabel("head size hs")
    ax.legend(fontsize=8)
fig.suptitle("Without the scale, softmax saturates")
plt.show()

# %% [markdown]
# ## Softmax over the key axis
#
# Each query shares out one unit of attention among the keys, so softmax runs over the last
# axis (`dim=-1`, the keys): every row of weights sums to 1.

# %%
weights = (scores / math.sqrt(hs)).softmax(dim=-1)  # (B, T, T)
print("weights:", tuple(weights.shape))  # (B, T, T)
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(B, T))
print("row sums:", [round(s, 3) for s in weights[0].sum(dim=-1).tolist()])

# %% [markdown]
# A common mistake is softmax over the query axis (`dim=-2` or `dim=1`): then the columns sum
# to 1, the rows sum to anything, and a query no longer shares out one unit of attention.

# %%
wrong = (scores / math.sqrt(hs)).softmax(dim=1)  # (B, T, T), but the columns are normalized
print("row sums:", [round(s, 3) for s in wrong[0].sum(dim=-1).tolist()])
print("column sums:", [round(s, 3) for s in wrong[0].sum(dim=-2).tolist()])

# %% [markdown]
# ## A weighted sum of values
#
# The output for token $i$ is the sum of the values of all tokens, weighted by row $i$:
#
# $$\text{out}_{b,i} = \sum_j \text{weights}_{b,i,j}\, v_{b,j}.$$
#
# As matrices, this is `weights @ v`.

# %%
out = weights @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)
print("out:", tuple(out.shape))  # (B, T, hs)
by_hand = sum(weights[0, 2, j] * v[0, j] for j in range(T))  # token 2 of the first batch item
torch.testing.assert_close(out[0, 2], by_hand)
print("out[0, 2] == Σ_j weights[0, 2, j] · v[0, j]:", torch.allclose(out[0, 2], by_hand))

# %% [markdown]
# ## The causal version
#
# In a language model a token must not see the future: query $i$ may only use keys $j \le i$.
# Scores above the diagonal are replaced by $-\infty$ before softmax, and their weights become
# exactly 0.
# The next chapter looks at the mask in detail.

# %%
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True = may attend
masked = (scores / math.sqrt(hs)).masked_fill(~causal, float("-inf"))  # (B, T, T)
causal_weights = masked.softmax(dim=-1)  # (B, T, T)
causal_out = causal_weights @ v  # (B, T, hs)
print("causal_out:", tuple(causal_out.shape))  # (B, T, hs)
print("weights above the diagonal are 0:", bool((causal_weights.triu(diagonal=1) == 0).all()))

# %% [markdown]
# ## Checking against HeadAttention
#
# `simple_llm.HeadAttention` is the same causal head. We copy the weights of our three
# projections into it and compare the output and the attention weights.

# %%
head = simple_llm.HeadAttention(emb_size=C, head_size=hs, max_seq_len=T)
head.q_proj.load_state_dict(q_proj.state_dict())
head.k_proj.load_state_dict(k_proj.state_dict())
head.v_proj.load_state_dict(v_proj.state_dict())
torch.testing.assert_close(head(x), causal_out)
torch.testing.assert_close(head.get_attention_weights(x), causal_weights)
same = torch.allclose(head(x), causal_out) and torch.allclose(head.get_attention_weights(x), causal_weights)
print("HeadAttention:", tuple(head(x).shape), "equal to the hand-built version:", same)  # (B, T, hs)

# %% [markdown]
# ## Self-attention and cross-attention
#
# Everything above is **self-attention**: the queries, the keys and the values are projections of
# one and the same `x`, so the sequence attends to itself. In **cross-attention** the queries come
# from one sequence and the keys and values from another one, which may have another length
# `T_k` (a translation decoder reading the encoded source sentence is the classic case). The
# formula is the same; the scores are `(B, T_q, T_k)`, no longer square, and the output has one row
# per query, `(B, T_q, hs)`. A causal mask usually has no place there: the other sequence is
# already known in full.

# %%
import torch.nn.functional as F

T_q, T_k = 3, 7
x_q = torch.randn(B, T_q, C)  # (B, T_q, C): the sequence that asks
memory = torch.randn(B, T_k, C)  # (B, T_k, C): the sequence that is read
q_c, k_c, v_c = q_proj(x_q), k_proj(memory), v_proj(memory)  # (B, T_q, hs), (B, T_k, hs), (B, T_k, hs)
cross_weights = (q_c @ k_c.transpose(-2, -1) / math.sqrt(hs)).softmax(dim=-1)  # (B, T_q, T_k)
cross_out = cross_weights @ v_c  # (B, T_q, hs)
torch.testing.assert_close(cross_out, F.scaled_dot_product_attention(q_c, k_c, v_c))
print(
    "cross-attention weights:", tuple(cross_weights.shape), "output:", tuple(cross_out.shape)
)  # (B, T_q, T_k), (B, T_q, hs)

# %% [markdown]
# ## Summary
#
# $\operatorname{softmax}(QK^\top/\sqrt{\mathrm{hs}})\,V$: three projections of one input, scores (B, T, T), the scale $1/\sqrt{\mathrm{hs}}$
# against softmax saturation, normalization over the key axis, a weighted sum of values
# (B, T, hs). Next: [one attention head](../../chapters/02-one-head/) as a module: the mask,
# causality, the map of weights.

# %% [markdown]
# ## Exercise
#
# Write `attention(q, k, v, mask=None)` yourself, without looking above: q `(B, H, T_q, hs)`,
# k and v `(B, H, T_k, hs)`, a bool mask `(T_q, T_k)` where `True` means "may attend"; the
# function returns the pair `(out, weights)`. The next cell grades it: when something is wrong,
# it names the mistake and the section of the book that explains it.
#
# The solution is folded at the end of [the chapter](../../chapters/01-attention/#exercise): write yours first.


# %%
def attention(q, k, v, mask=None):
    # your code here
    raise NotImplementedError


# %%
from simple_llm.practice import check_attention

# on the stub: 'not written yet'
print(check_attention(attention, lang="en"))
