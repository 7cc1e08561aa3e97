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
# Small sizes so that everything stays visible: 2 sequences of 6 tokens, $C = 32$, 4 heads of 8.
# We compute in float64, so comparisons can use a tight tolerance.

# %%
import math

import torch
from IPython.display import Markdown

from simple_llm import MultiHeadAttention, plot_attention_heads

# %matplotlib inline
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 32, 4, 8


def same(a, b):
    """assert_close with the tolerance of this notebook, then the same comparison as a boolean to print."""
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    return torch.allclose(a, b, rtol=1e-12, atol=1e-12)


mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=16, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
shapes = [("x", tuple(x.shape), "(B, T, C)")]
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## Step 1. Project first
#
# One matrix, `qkv`, projects every token into the queries, keys and values of all heads at once:
# $C \to 3H\,\mathrm{hs}$. The projection comes **before** the split into heads.

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
# Attention scores $QK^\top/\sqrt{\mathrm{hs}}$ for all heads at once. The causal mask forbids looking into the
# future; the softmax runs over the key axis (the last one), so every row of weights sums to 1.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
shapes.append(("weights = softmax(q·kᵀ/√hs)", tuple(weights.shape), "(B, H, T, T)"))
print("rows of weights sum to 1:", same(weights.sum(dim=-1), torch.ones(B, H, T, dtype=torch.float64)))

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
# ## Merging the heads: why `transpose` comes first
#
# `y` of shape `(B, H, T, hs)` lies in memory head after head: all $T\,\mathrm{hs}$ numbers of head 0, then
# head 1, and so on. `view(B, T, H·hs)` does not move anything, it only cuts that memory into rows
# of `H·hs` numbers. So row 0 of the "merged" tensor gets several positions of head 0, not
# position 0 of every head. `transpose(1, 2)` puts the positions first, and `reshape` then copies
# the numbers into the right order. Let us label each number of a small `y` ($H = 3$, $T = 4$, $\mathrm{hs} = 2$)
# with its head and position and look at both results.

# %%
import matplotlib.pyplot as plt

nH, nT, nhs = 3, 4, 2
head_of = torch.arange(nH).view(1, nH, 1, 1).expand(1, nH, nT, nhs)  # (B, H, T, hs)
pos_of = torch.arange(nT).view(1, 1, nT, 1).expand(1, nH, nT, nhs)  # (B, H, T, hs)
label = (10 * head_of + pos_of).contiguous()  # (B, H, T, hs): 10·head + position
right = label.transpose(1, 2).reshape(1, nT, nH * nhs)[0]  # (T, H*hs)
wrong = label.view(1, nT, nH * nhs)[0]  # (T, H*hs): memory order, heads and positions mixed
for name, merged in (("transpose + reshape, row 0:", right), ("view without transpose, row 0:", wrong)):
    print(name, [f"h{v // 10}t{v % 10}" for v in merged[0].tolist()])
assert torch.equal(right // 10, torch.arange(nH).repeat_interleave(nhs).expand(nT, -1))  # columns by head
assert not torch.equal(wrong, right)

colours = ["#a6cee3", "#fdbf6f", "#b2df8a"]  # head 0, 1, 2
fig, axes = plt.subplots(2, 1, figsize=(3.9, 4.6), layout="constrained")
for ax, merged, title in zip(
    axes,
    (right, wrong),
    (
        "transpose(1, 2).reshape: row t = position t of every head",
        "view without transpose: rows mix positions",
    ),
):
    for t in range(nT):
        for c in range(nH * nhs):
            h, pos = divmod(merged[t, c].item(), 10)
            ax.add_patch(plt.Rectangle((c, t), 1, 1, facecolor=colours[h], edgecolor="white", linewidth=2))
            ax.text(c + 0.5, t + 0.5, f"h{h}\nt{pos}", ha="center", va="center", fontsize=10)
    ax.set_xlim(0, nH * nhs)
    ax.set_ylim(nT, 0)
    ax.set_xticks(
        [nhs * h + nhs / 2 for h in range(nH)] if merged is right else [],
        [f"head {h}" for h in range(nH)] if merged is right else [],
    )
    ax.set_yticks([t + 0.5 for t in range(nT)], [f"row {t}" for t in range(nT)])
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    for side in ax.spines.values():
        side.set_visible(False)
plt.show()

# %% [markdown]
# The colour is the head, `t` the position. After `transpose` + `reshape` each row is one
# position, and the columns of head h are the same for every row: `proj` can learn what each
# head's columns mean. After a bare `view`, row 0 holds positions 0, 1 and 2 of head 0 and no other
# head: the output of position 0 now depends on tokens 1 and 2, the future leaks in, and the shape is
# still `(B, T, H·hs)`, so nothing fails. Chapter 7 catches this mistake with a causality check.

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
print("hand-built == MultiHeadAttention:", same(out, mha(x)) and same(weights, mha.get_attention_weights(x)))

# %% [markdown]
# ## When the fast path creates no `(T, T)` matrix
#
# `F.scaled_dot_product_attention` picks a kernel at run time. A fused kernel (flash attention)
# goes through the keys block by block and never stores a whole `(T, T)` matrix; the math
# fallback computes the scores, softmax and weights as ordinary tensors, `(B, H, T, T)` each.
# Which one runs depends on the device, the dtype, the mask and dropout. We ask the profiler which
# kernel ran and compare the peak memory of the call with the size of one `(B, H, T, T)` tensor,
# for $T = 2048$ and 4 heads.

# %%
import contextlib
import itertools
import os

import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile


@contextlib.contextmanager
def quiet_stderr():
    """The profiler's C++ library logs start and stop lines with timestamps to stderr: hide them."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def kernel_and_peak(q, k, v, **kwargs):
    """The SDPA kernel that ran and the peak of the tensor memory it allocated, in bytes."""
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    kernel = next(e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product"))
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    return kernel.removeprefix("aten::_scaled_dot_product_"), max(
        itertools.accumulate(e.nbytes() for e in events)
    )


_ = torch.manual_seed(0)
nT = 2048
allowed = torch.ones(nT, nT, dtype=torch.bool).tril()  # (T, T): True = may attend
print(f"{'dtype, arguments':30} | {'kernel':24} | {'peak >= one (B, H, T, T)'}")
for dtype in (torch.float32, torch.bfloat16, torch.float64):
    q, k, v = (torch.randn(1, 4, nT, 16, dtype=dtype) for _ in range(3))  # (B, H, T, hs) each
    weights_bytes = q.numel() // 16 * nT * q.element_size()  # one (B, H, T, T) tensor
    cases = {"is_causal=True": {"is_causal": True}}
    if dtype == torch.float32:
        cases["attn_mask=(T, T) bool"] = {"attn_mask": allowed}
        cases["dropout_p=0.1"] = {"is_causal": True, "dropout_p": 0.1}
    for case, kwargs in cases.items():
        kernel, peak = kernel_and_peak(q, k, v, **kwargs)
        print(f"{str(dtype)[6:] + ', ' + case:30} | {kernel:24} | {peak >= weights_bytes}")
with sdpa_kernel(SDPBackend.MATH):  # the fused kernel switched off by hand
    kernel, peak = kernel_and_peak(q, k, v, is_causal=True)
print(f"{'float64, MATH forced':30} | {kernel:24} | {peak >= weights_bytes}")

# %% [markdown]
# On the CPU, with this PyTorch, the flash kernel runs for float32, bfloat16 and float64, with or
# without a mask; only dropout inside SDPA (`dropout_p > 0`) or a kernel switched off by hand sends
# it to the math path, which does hold `(B, H, T, T)` tensors. A mask does not switch the kernel,
# but it is itself a `(T, T)` matrix (the kernel converts it to floats): memory is then $O(T^2)$,
# though one copy for all heads rather than one per head. Our module never passes `dropout_p`
# (its dropout acts after the output projection), so without a mask its memory grows linearly in
# `T`. On a GPU the rules differ (there the flash kernel accepts only float16 and bfloat16, and
# other kernels take the rest): ask the profiler on your machine.

# %% [markdown]
# ## Separate heads and the fused projection: the same parameters
#
# `mha.heads` (`mha._heads` in the original project, which still works) are views of the
# heads: each reads its own rows of `mha.qkv.weight`, there is no copy of the weights. The
# heads' outputs, concatenated and passed through `proj`, give the same result. And a loss
# computed from head 0 alone sends its gradient into the rows of `mha.qkv.weight` that belong to
# head 0 (its query, key and value rows) and into no other row.

# %%
per_head = torch.cat([head(x) for head in mha.heads], dim=-1)  # (B, T, H*hs)
w_q0 = mha.heads[0].weights[0]  # (hs, C)
shares = w_q0.untyped_storage().data_ptr() == mha.qkv.weight.untyped_storage().data_ptr()
print("separate heads == fused path:", same(mha.proj(per_head), mha(x)))
print("head 0 weights live in mha.qkv.weight:", shares)
mha.heads[0](x).pow(2).sum().backward()  # a loss of head 0 alone
reached = mha.qkv.weight.grad.abs().sum(dim=-1).view(3, H, hs).sum(dim=-1) > 0  # (3, H): q, k, v × heads
print("rows of mha.qkv.weight with a gradient from head 0 (q, k, v by head):", reached.int().tolist())
mha.zero_grad()

# %% [markdown]
# ## Equal to `torch.nn.MultiheadAttention`
#
# `to_torch()` moves our weights into PyTorch's module, `from_torch()` builds ours from one of
# PyTorch's. Each direction is compared with the module it started from: `mha` with its copy
# `mha.to_torch()`, and a freshly initialised `nn.MultiheadAttention` (the source) with the
# module `from_torch` built from it; outputs and per-head weights. PyTorch's mask has the
# opposite polarity: `True` means "masked out".

# %%
torch_mha = mha.to_torch()
future = ~causal  # True = masked out, the PyTorch convention
theirs, their_weights = torch_mha(
    x, x, x, attn_mask=future, average_attn_weights=False
)  # (B, T, C), (B, H, T, T)
to_torch_equal = same(theirs, mha(x)) and same(their_weights, mha.get_attention_weights(x))

source = torch.nn.MultiheadAttention(C, H, batch_first=True).double().eval()  # PyTorch's own initialisation
loaded = MultiHeadAttention.from_torch(source, max_seq_len=16).eval()
theirs, their_weights = source(
    x, x, x, attn_mask=future, average_attn_weights=False
)  # (B, T, C), (B, H, T, T)
ours, our_weights = loaded(x, return_weights=True)  # (B, T, C), (B, H, T, T)
from_torch_equal = (
    same(ours, theirs) and same(loaded(x), theirs) and same(our_weights, their_weights)
)  # the fast path too
print(
    "to_torch and from_torch: outputs and weights equal to the module they came from:",
    to_torch_equal and from_torch_equal,
)

# %% [markdown]
# ## Parameter count
#
# $4C^2 + 4C$: three projections $C \to C$ and the output projection $C \to C$, each a $C \times C$ matrix and a bias of length $C$.

# %%
n_params = sum(p.numel() for p in mha.parameters())
assert n_params == 4 * C**2 + 4 * C
print(f"C = {C}: {n_params} parameters = 4·{C}² + 4·{C}")

# %% [markdown]
# ## Cost: the same for any number of heads
#
# We count multiply-adds (2 FLOPs each): projections $2 \cdot T \cdot C \cdot 4C$, scores and weighting
# $2 \cdot 2 \cdot H T^2 \mathrm{hs}$. With $H\,\mathrm{hs} = C$ the second term is $4T^2C$ whatever the number of heads.


# %%
def flops(T, C, H):
    hs = C // H
    return {"projections": 2 * T * C * 4 * C, "attention": 2 * 2 * H * T * T * hs}


for heads in (1, 2, 4, 8):
    print(f"H = {heads}:", flops(T=256, C=512, H=heads))
assert len({flops(256, 512, h)["attention"] for h in (1, 2, 4, 8)}) == 1
print("T doubled: attention ×", flops(512, 512, 8)["attention"] // flops(256, 512, 8)["attention"])

# %% [markdown]
# The same multiplications, but not the same work. Every head has its own `(T, T)` matrix of
# weights: the `(B, H, T, T)` tensor, the exponentials of softmax and the masking grow with `H`.
# And a weight of a small head is cheap to compute ($4\,\mathrm{hs}$ FLOPs for the score and its share of
# the output), so a larger and larger share of the work is writing, softmaxing and reading the
# weights, and thin matrix products usually run less efficiently than one wide product. For $B = 1$, $T = 256$, $C = 512$:

# %%
print("  H |  hs | weights float32, MiB | exp() in softmax | FLOPs per weight")
for heads in (1, 2, 4, 8):
    n = heads * 256 * 256  # elements of the (B=1, H, T, T) weights
    per_weight = flops(256, 512, heads)["attention"] // n
    print(f"{heads:>3} | {512 // heads:>3} | {n * 4 / 2**20:24.2f} | {n:>16} | {per_weight:>16}")

# %% [markdown]
# ## The heads' weights in a figure
#
# The weights of every head, obtained as in the original project:
# `[head.get_attention_weights(x) for head in mha.heads]`. The module is untrained, and the
# "tokens" are random vectors `x` with the words only as labels, so the values mean nothing:
# chapter 5 shows how heads specialise after training. Row 0 is 1.0 in every head (the first token
# sees only itself); on a scale from 0 to 1 the other rows would be dark and the heads would look
# alike. So the shared colour scale stops at the largest weight outside row 0 (`vmax=`), and row 0
# shows in the top colour.

# %%
with torch.no_grad():
    per_head_weights = [head.get_attention_weights(x) for head in mha.heads]  # H x (B, T, T)
tokens = ["the", "cat", "sat", "on", "the", "mat"]
print(
    "weights of the last query, per head:", [[round(float(v), 2) for v in w[0, -1]] for w in per_head_weights]
)
vmax = max(w[0, 1:].max().item() for w in per_head_weights)  # the largest weight outside row 0
print("largest weight outside row 0:", round(vmax, 2))
plot_attention_heads(
    per_head_weights, tokens=tokens, lang="en", title="Attention weights of an untrained module", vmax=vmax
)

# %% [markdown]
# ## Exercise
#
# Write `multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True)` as one
# function: x `(B, T, C)`, weights in the `nn.Linear` convention, the rows of `w_qkv` in blocks
# `[Q | K | V]`, head h at rows `h*hs:(h+1)*hs` of each block, `w_o` `(C, C)`; the result is
# `(B, T, C)`. The grader tells, for example, splitting into heads before the projection from
# `view` without `transpose` and from a missing output projection.
#
# The solution is folded at the end of [the chapter](../../chapters/03-multi-head/#exercise): write yours first.


# %%
def multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
    # your code here
    raise NotImplementedError


# %%
from simple_llm.practice import check_multi_head_attention

# on the stub: 'not written yet'
print(check_multi_head_attention(multi_head_attention, lang="en"))
