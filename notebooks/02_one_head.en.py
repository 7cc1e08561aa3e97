# %% [markdown]
# # One attention head: the notebook
#
# The notebook of the chapter ["One attention head"](../../chapters/02-one-head/). In the [first
# chapter](../../chapters/01-attention/) we built $\operatorname{softmax}(QK^\top/\sqrt{\mathrm{hs}})\,V$ step by step; here the
# same formula becomes the module `simple_llm.HeadAttention` with a causal mask.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`),
# **hs** head size (`head_size`).

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
# ## The HeadAttention module
#
# `HeadAttention(emb_size, head_size, max_seq_len)` holds three projections `q_proj`, `k_proj`,
# `v_proj`, each an `nn.Linear(C, hs)`. The head has no other trainable parameters.

# %%
import math

import torch

import simple_llm

# show figures (Figure objects) right in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # rounding error ~1e-16: tiny tolerances suffice
_ = torch.manual_seed(0)
C, hs, max_seq_len = 16, 8, 8
head = simple_llm.HeadAttention(emb_size=C, head_size=hs, max_seq_len=max_seq_len)
for name, param in head.named_parameters():
    print(f"{name:15} {tuple(param.shape)}")  # weight (hs, C), bias (hs,)

# %% [markdown]
# ## The causal mask: a lower triangle
#
# Token $t$ may look at itself and at every token before it, but no further. For $T = 5$ this is the
# lower triangle of a matrix of ones, `torch.tril`: a row is a query, a column is a key, 1 means
# "may attend".

# %%
T = 5
mask = torch.tril(torch.ones(T, T, dtype=torch.long))  # (T, T)
for t, row in enumerate(mask.tolist()):
    print(f"query {t}:", *row)
print(tuple(mask.shape))  # (T, T)

# %% [markdown]
# ## Minus infinity before softmax
#
# Forbidden scores are replaced by $-\infty$ **before** softmax: $e^{-\infty} = 0$, so the weight
# of a future token is exactly 0, and the remaining weights of the row still sum to 1.

# %%
_ = torch.manual_seed(0)
scores = torch.randn(T, T)  # (T, T): some query × key scores
weights = scores.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)  # (T, T)
assert (weights.triu(diagonal=1) == 0).all()  # exactly 0 above the diagonal
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(T))
for t, row in enumerate((weights > 0).int().tolist()):
    print(f"weight > 0, query {t}:", *row)
print("row sums:", [round(s, 3) for s in weights.sum(dim=-1).tolist()])

# %% [markdown]
# A common mistake is to fill the future with zero instead of $-\infty$. Zero is an ordinary
# score: $e^0 = 1$, and future tokens get a sizeable weight. Another one is to multiply the
# weights by the mask after softmax: the future is gone, but the rows no longer sum to 1.

# %%
wrong = scores.masked_fill(mask == 0, 0.0).softmax(dim=-1)  # (T, T)
print("weight of the future for query 0:", round(wrong[0, 1:].sum().item(), 3))
print("weight of the future for query 0 with −∞:", round(weights[0, 1:].sum().item(), 3))
after = scores.softmax(dim=-1) * mask  # (T, T): the mask applied after softmax
print("row sums, mask after softmax:", [round(s, 3) for s in after.sum(dim=-1).tolist()])

# %% [markdown]
# ## The head by hand, checked against the package
#
# We build the head from its own projections: scores, the scale $1/\sqrt{\mathrm{hs}}$, the mask, softmax over
# the keys, a weighted sum of values. The output and the weights must equal `head(x)` and
# `head.get_attention_weights(x)`.


# %%
def head_by_hand(head, x):
    T = x.size(1)
    q, k, v = head.q_proj(x), head.k_proj(x), head.v_proj(x)  # (B, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(head.head_size)  # (B, T, T)
    future = ~torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True above the diagonal
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)  # (B, T, T)
    return weights @ v, weights  # (B, T, hs), (B, T, T)


x = torch.randn(2, 6, C)  # (B, T, C)
out, weights = head_by_hand(head, x)
torch.testing.assert_close(head(x), out)
torch.testing.assert_close(head.get_attention_weights(x), weights)
same = torch.allclose(head(x), out) and torch.allclose(head.get_attention_weights(x), weights)
print(
    "output", tuple(out.shape), "and weights", tuple(weights.shape), "match HeadAttention:", same
)  # (B, T, hs), (B, T, T)

# %% [markdown]
# ## Causality in action
#
# Replace token $t + 1$ with another one. The outputs at positions $0, \dots, t$ must not move by
# a single bit: their queries simply do not see position $t + 1$.

# %%
t = 2
x_changed = x.clone()
x_changed[:, t + 1] = torch.randn(2, C)  # (B, C): a new token at position t + 1
out_changed = head(x_changed)  # (B, T, hs)
assert torch.equal(head(x)[:, : t + 1], out_changed[:, : t + 1])
moved = (head(x) - out_changed).abs().amax(dim=(0, 2)) > 0  # (T,)
print("position moved:", moved.tolist())

# %% [markdown]
# ## The get_attention_weights method
#
# Besides `forward`, the head keeps a method from the original project's API:
# `get_attention_weights(x)` returns the weights (B, T, T); row $t$ is how query $t$ spreads its
# attention over the keys. Both methods take an optional `mask` argument (padding or any other
# pattern, chapter 4); the causal mask is always applied on top of it.

# %%
w = head.get_attention_weights(x)  # (B, T, T)
print(tuple(w.shape))  # (B, T, T)
torch.testing.assert_close(w.sum(dim=-1), torch.ones(2, 6))
print("first row:", [round(p, 3) for p in w[0, 0].tolist()])  # query 0 sees only itself

# %% [markdown]
# ## The map of weights
#
# Let us draw the weights for a short sentence. Nothing is trained here: the "word embeddings"
# are random vectors, so the numbers themselves mean nothing. What shows is the shape: everything
# above the diagonal is zero. `plot_attention_heads` expects (H, T, T); one head's weights
# (1, T, T) are $H = 1$.
#
# Row 0 always holds a single weight of 1.0 (the first token sees only itself). On a colour scale
# from 0 to 1 it would leave the other rows dark, so the scale stops at the largest weight outside
# row 0 (`vmax=`): row 0 shows in the top colour, and the arrow on the colour bar says the scale
# is clipped.

# %%
tokens = ["the", "cat", "sat", "on", "the", "mat"]
_ = torch.manual_seed(1)
x_words = torch.randn(1, len(tokens), C)  # (B=1, T=6, C): one embedding per word
w = head.get_attention_weights(x_words)  # (1, T, T), read as (H=1, T, T)
print(tuple(w.shape))  # (1, T, T)
print("weight on itself:", [round(p, 2) for p in w[0].diagonal().tolist()])
vmax = w[0, 1:].max().item()  # the largest weight outside row 0
print("largest weight outside row 0:", round(vmax, 2))
fig = simple_llm.plot_attention_heads(w, tokens=tokens, lang="en", title="One head, untrained", vmax=vmax)
fig

# %% [markdown]
# ## The length limit max_seq_len
#
# `max_seq_len` is the longest sequence the head accepts. In a model with learned positional
# embeddings nothing longer can occur: there are no vectors for the positions beyond it. A longer
# input is an error with a clear message, not a silent cut.

# %%
too_long = torch.randn(1, max_seq_len + 1, C)  # (B, T, C) with T = 9 > 8
try:
    head(too_long)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Summary
#
# A head is three projections, scores (B, T, T), the causal mask with $-\infty$ above the diagonal,
# softmax over the keys and a weighted sum of values (B, T, hs). Next:
# [multi-head attention](../../chapters/03-multi-head/), several heads in parallel.

# %% [markdown]
# ## Exercise
#
# Write `causal_mask(T)`: a bool tensor `(T, T)` where `True` in row t, column s means that
# query t may attend to key s. The next cell grades it and names the mistake when a token sees
# the future or cannot see itself.
#
# The solution is folded at the end of [the chapter](../../chapters/02-one-head/#exercise): write yours first.


# %%
def causal_mask(T):
    # your code here
    raise NotImplementedError


# %%
from simple_llm.practice import check_causal_mask

# on the stub: 'not written yet'
print(check_causal_mask(causal_mask, lang="en"))
