# %% [markdown]
# # Attention masks: the notebook
#
# The notebook of the chapter ["Attention masks"](../../chapters/04-masks/). The causal mask in
# `MultiHeadAttention` is always on; on top of it you can pass your own `mask=…`: padding, a
# local window, any other pattern. Here we check how the package combines them, which shapes it
# accepts, how to convert a mask to PyTorch's conventions, and why a fully masked row gives no
# NaN.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# number of heads (`num_heads`), **hs** head size (`head_size`). In the package, `True` (or 1)
# in a mask means "may attend".

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
# ## The module and the causal mask
#
# A small module: $H = 2$ heads, $C = 8$, $\mathrm{hs} = 4$, a batch of two sequences of length 5.
# `dropout=0.0` and `eval()` make outputs exactly comparable. Without a `mask` argument only the
# causal mask acts: every weight above the diagonal is zero.

# %%
import math

import torch
import torch.nn.functional as F

import simple_llm


def show(mask, label="query"):
    """Print a bool mask row by row: 1 = may attend."""
    for t, row in enumerate(mask.int().tolist()):
        print(f"{label} {t}:", *row)


torch.set_default_dtype(torch.float64)  # exact comparisons
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 5, 8, 2, 4
mha = simple_llm.MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).eval()
x = torch.randn(B, T, C)  # (B, T, C)
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True = may attend
w = mha.get_attention_weights(x)  # (B, H, T, T)
assert (w[..., ~causal] == 0).all()  # the future gets exactly 0
show(causal)
print(tuple(w.shape))  # (B, H, T, T)

# %% [markdown]
# ## The padding mask
#
# A batch holds sequences of different lengths; the short ones are padded at the end with
# padding tokens. `simple_llm.padding_mask(lengths)` gives a (B, T) mask: `True` for a real
# token. The package ANDs it with the causal mask, and the padding gets no attention at all.

# %%
pad = simple_llm.padding_mask([5, 3])  # (B, T): lengths 5 and 3
show(pad, "sequence")
allowed = pad[:, None, :] & causal  # (B, T, T): what is actually allowed
w = mha.get_attention_weights(x, mask=pad)  # (B, H, T, T)
assert (w.masked_select(~allowed[:, None]) == 0).all()  # a masked key gets exactly 0
print("weight > 0 in the second sequence, head 0:")
show(w[1, 0] > 0)  # (T, T): keys 3 and 4 are padding

# %% [markdown]
# ## A custom mask: a local window
#
# Any (T, T) pattern is a mask too. A local window of width 2: query $t$ sees keys $t - 1$ and $t$.
# There is no need to block the upper half: the causal mask is added anyway. Next to it we print
# what the result is: `local & causal`.

# %%
window = 2
i = torch.arange(T)
local = (i[:, None] - i[None, :]).abs() < window  # (T, T): a band around the diagonal
w = mha.get_attention_weights(x, mask=local)  # (B, H, T, T)
assert torch.equal(w[0, 0] > 0, local & causal)
print("mask local:")
show(local)
print("weight > 0 (local & causal):")
show(w[0, 0] > 0)

# %% [markdown]
# ## Checking against a hand computation
#
# Repeat what the package does: $Q$, $K$, $V$ projections from `mha.qkv`, scores
# $QK^\top/\sqrt{\mathrm{hs}}$, the user mask combined with the causal one, $-\infty$ in the blocked places, softmax over the keys, heads put
# back together and the output projection. The functions `heads` and `merge` are reused below.


# %%
def heads(x):
    qkv = mha.qkv(x).view(x.size(0), x.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    return qkv.permute(2, 0, 3, 1, 4)  # (3, B, H, T, hs): q, k, v


def merge(y):
    return mha.proj(y.transpose(1, 2).reshape(y.size(0), y.size(2), H * hs))  # (B, T, C)


q, k, v = heads(x)  # (B, H, T, hs) each
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
weights = scores.masked_fill(~(local & causal), float("-inf")).softmax(dim=-1)  # (B, H, T, T)
torch.testing.assert_close(mha.get_attention_weights(x, mask=local), weights)
torch.testing.assert_close(mha(x, mask=local), merge(weights @ v))
same = torch.allclose(mha.get_attention_weights(x, mask=local), weights) and torch.allclose(
    mha(x, mask=local), merge(weights @ v)
)
print(
    "weights",
    tuple(weights.shape),
    "and output",
    tuple(merge(weights @ v).shape),
    "equal to the package:",
    same,
)

# %% [markdown]
# ## Right padding: the causal mask already hides it
#
# With padding at the end, every padding key stands after every real token, in its future, so the
# causal mask already hides it from them. The outputs of the real tokens with and without the
# padding mask are then bit-for-bit equal (`torch.equal`); only the rows of the padding itself
# change, and those are not used. The padding mask matters where a padding key is not in the
# future of a real token: with padding on the **left** (batched generation with a decoder usually
# pads prompts on the left, so that every sequence continues from its last position) and in a
# bidirectional encoder, which has no causal mask (here `F.scaled_dot_product_attention` without `is_causal`).

# %%
with_pad, without_pad = mha(x, mask=pad), mha(x)  # (B, T, C) each
print(
    "right padding, real tokens bit-identical with and without the mask:",
    torch.equal(with_pad[1, :3], without_pad[1, :3]),
)
print("right padding, rows of the padding identical:", torch.equal(with_pad[1, 3:], without_pad[1, 3:]))
left = pad.flip(-1)  # (B, T): the same lengths, padded on the left
print(
    "left padding, real tokens identical without the mask:",
    torch.equal(mha(x, mask=left)[1, 2:], mha(x)[1, 2:]),
)
q, k, v = heads(x)  # (B, H, T, hs) each
real_keys = pad[:, None, None, :]  # (B, 1, 1, T): True = a real key
encoder = F.scaled_dot_product_attention(
    q, k, v, attn_mask=real_keys
)  # (B, H, T, hs): no causal mask, as in an encoder
encoder_without = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, hs)
print(
    "encoder, real tokens identical without the mask:",
    torch.equal(encoder[1, :, :3], encoder_without[1, :, :3]),
)

# %% [markdown]
# ## Which shapes a mask may have
#
# One padding mask in different shapes gives one and the same output: (B, T), (B, 1, T),
# (B, T, T) and (B, H, T, T). The (T, T) shape is one pattern for the whole batch, like `local`
# above.

# %%
forms = {
    "(B, T)": pad,
    "(B, 1, T)": pad[:, None, :],  # (B, 1, T)
    "(B, T, T)": pad[:, None, :].expand(B, T, T),  # (B, T, T)
    "(B, H, T, T)": pad[:, None, None, :].expand(B, H, T, T),  # (B, H, T, T)
}
reference = mha(x, mask=pad)  # (B, T, C)
for name, m in forms.items():
    torch.testing.assert_close(mha(x, mask=m), reference)
    print(f"{name:13} {tuple(m.shape)} -> the same output:", torch.allclose(mha(x, mask=m), reference))

# %% [markdown]
# A trap: when $B = T$, a 2-D mask is ambiguous. The package checks the (T, T) shape first, so
# such a mask is read as a query × key pattern, not as padding. In that case pass the padding
# mask as (B, 1, T).

# %%
x3 = torch.randn(3, 3, C)  # (B, T, C) with B == T == 3
pad3 = simple_llm.padding_mask([3, 1, 2])  # (B, T) == (3, 3)
as_pattern = mha(x3, mask=pad3)  # read as (T, T)
as_padding = mha(x3, mask=pad3[:, None, :])  # (B, 1, T): real padding
torch.testing.assert_close(as_pattern, mha(x3, mask=pad3.expand(3, 3, 3)))  # (B, T, T): rows are queries
print("(3, 3) read as padding:", torch.allclose(as_pattern, as_padding))

# %% [markdown]
# ## Three polarity conventions
#
# | Where | What `True` means | Float mask |
# | --- | --- | --- |
# | `simple_llm` | may attend | not accepted (only 0/1) |
# | `nn.MultiheadAttention` (`attn_mask`, `key_padding_mask`) | masked out | added to the scores |
# | `F.scaled_dot_product_attention` (`attn_mask`) | may attend | added to the scores |
#
# First `nn.MultiheadAttention`: copy the weights into it (`mha.to_torch()`) and invert the
# masks with `~`. PyTorch does not add the causal mask by itself: we pass it explicitly.
#
# Then `F.scaled_dot_product_attention`. Its bool mask has our polarity and goes in as it is. A
# float mask is added to the scores: 0 where attending is allowed, $-\infty$ where it is not.

# %%
torch_mha = mha.to_torch().eval()  # the same weights in nn.MultiheadAttention(C, H, batch_first=True)
out_torch, _ = torch_mha(x, x, x, attn_mask=~causal, key_padding_mask=~pad, need_weights=False)
torch.testing.assert_close(out_torch, mha(x, mask=pad))
print(
    "nn.MultiheadAttention: True = masked out, output",
    tuple(out_torch.shape),
    "equal:",
    torch.allclose(out_torch, mha(x, mask=pad)),
)  # (B, T, C)

bool_mask = allowed[:, None]  # (B, 1, T, T): True = may attend
additive = torch.zeros(B, 1, T, T).masked_fill(~bool_mask, float("-inf"))  # (B, 1, T, T)
q, k, v = heads(x)  # (B, H, T, hs) each
out_bool = merge(F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask))  # (B, T, C)
out_add = merge(F.scaled_dot_product_attention(q, k, v, attn_mask=additive))  # (B, T, C)
torch.testing.assert_close(out_bool, mha(x, mask=pad))
torch.testing.assert_close(out_add, mha(x, mask=pad))
same = torch.allclose(out_bool, mha(x, mask=pad)) and torch.allclose(out_add, mha(x, mask=pad))
print("SDPA, bool and additive masks: output", tuple(out_add.shape), "equal:", same)  # (B, T, C)

# %% [markdown]
# ## An additive mask: a clear error
#
# Out of habit it is easy to pass an additive mask (0 and $-\infty$) to `simple_llm`. The package does
# not guess: it stops with a message that names the value it found and how to convert it.

# %%
try:
    mha(x, mask=additive[:, 0])  # (B, T, T) of 0 and −∞
except ValueError as error:
    print("ValueError:", error)
converted = additive[:, 0] == 0  # (B, T, T): True = may attend
torch.testing.assert_close(mha(x, mask=converted), mha(x, mask=pad))
print("after additive == 0 the output is the same:", torch.allclose(mha(x, mask=converted), mha(x, mask=pad)))

# %% [markdown]
# ## A fully masked row
#
# If a query row may attend to no key, all its scores are $-\infty$. A naive softmax computes
#
# $$\frac{e^{-\infty}}{\sum_j e^{-\infty}} = \frac{0}{0},$$
#
# which is NaN, and the NaN then spreads through the network and its gradients.
#
# Such a row appears by itself as soon as a sequence is padded on the **left**: in the second
# sequence the first two tokens are padding, and queries 0 and 1 see (by the causal mask) only
# those. `simple_llm` gives such rows zero weights, a zero head output (before the output
# projection) and finite gradients.

# %%
row = torch.full((T,), float("-inf"))  # (T,): not one open key
naive = row.softmax(dim=-1)  # (T,)
print("NaN in the naive softmax:", torch.isnan(naive).any().item())

left = simple_llm.padding_mask([5, 3]).flip(-1)  # (B, T): padding on the left
show(left, "sequence")
x_grad = x.clone().requires_grad_(True)  # (B, T, C)
w = mha.get_attention_weights(x_grad, mask=left)  # (B, H, T, T)
print("row sums, second sequence:", w[1, 0].sum(dim=-1).round().int().tolist())
assert (w[1, :, :2] == 0).all()  # fully masked rows are zeros, not NaN
assert (w.masked_select(~(left[:, None, None, :] & causal)) == 0).all()  # a masked key gets exactly 0
assert (mha.head(1)(x, mask=left)[1, :2] == 0).all()  # head output before the projection: zeros
mha(x_grad, mask=left).pow(2).sum().backward()
assert torch.isfinite(x_grad.grad).all()
assert all(torch.isfinite(p.grad).all() for p in mha.parameters())
print("gradients are finite:", tuple(x_grad.grad.shape))  # (B, T, C)

# %% [markdown]
# ## The masks as grids
#
# The four masks of this notebook side by side, for the second sequence (lengths 5 and 3): a row
# is a query, a column is a key, a filled cell means "may attend". The padding mask is a flag per
# key, the same for every query; combined with the causal mask by a logical AND it cuts the
# triangle. With padding on the left, rows 0 and 1 lose every key: they are outlined in red.

# %%
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap

# %matplotlib inline

grids = {
    "causal": causal,  # (T, T)
    "padding [5, 3]": pad[1].expand(T, T),  # (T, T): one flag per key, copied to every query
    "padding & causal": pad[1] & causal,  # (T, T)
    "left padding & causal": left[1] & causal,  # (T, T)
}
empty = (~(left[1] & causal).any(dim=-1)).nonzero().flatten().tolist()  # queries that have no key left
print("fully masked rows (left padding):", empty)
assert empty == [0, 1]
fig, axes = plt.subplots(2, 2, figsize=(4.4, 4.8), layout="constrained")
for ax, (title, grid) in zip(axes.flat, grids.items()):
    ax.imshow(grid.int().numpy(), cmap=ListedColormap(["#eeeeee", "#2a9d8f"]), vmin=0, vmax=1)
    ax.set_xticks(range(T), minor=False)
    ax.set_yticks(range(T))
    ax.set_xticks([i - 0.5 for i in range(1, T)], minor=True)
    ax.set_yticks([i - 0.5 for i in range(1, T)], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(title, fontsize=10)
    if title == "left padding & causal":
        for t in empty:
            ax.add_patch(
                plt.Rectangle((-0.45, t - 0.45), T - 0.1, 0.9, fill=False, edgecolor="#d62828", linewidth=2.5)
            )
fig.suptitle("Sequence 1, T = 5: filled = may attend", fontsize=11)
plt.show()

# %% [markdown]
# ## Summary
#
# The user mask is ANDed with the causal mask; the package's polarity is `True` = may attend,
# as in the bool mask of `F.scaled_dot_product_attention` and the opposite of
# `nn.MultiheadAttention`. A masked key gets exactly 0, a fully masked row gets zeros, no NaN.
# Next: [what trained heads see](../../chapters/05-seeing-heads/).

# %% [markdown]
# ## Exercise
#
# Write `attention(q, k, v, mask=None)` with a mask: a bool `(T_q, T_k)` mask, `True` meaning
# "may attend", applied before the softmax. The function returns `(out, weights)`. The grader
# tells a mask read the other way round, a mask after the softmax, a mask filled with zeros
# instead of `-inf` and a mask that does nothing.
#
# The solution is folded at the end of [the chapter](../../chapters/04-masks/#exercise): write yours first.


# %%
def attention(q, k, v, mask=None):
    # your code here
    raise NotImplementedError


# %%
from simple_llm.practice import check_attention

# on the stub: 'not written yet'
print(check_attention(attention, lang="en"))
