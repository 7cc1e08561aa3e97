# %% [markdown]
# # Common mistakes: the notebook
#
# Each common mistake here is a small broken function that runs. For each one we run a check from
# the earlier chapters and show that the check catches it: the check raises an `AssertionError`
# with a short message, which we catch and print. The reference is the package's
# `MultiHeadAttention` module and `torch.nn.MultiheadAttention` with the same weights.
# The chapter: [Common mistakes](../../chapters/07-common-mistakes/).
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
# ## The reference
#
# The package module in float64 and its copy in `torch.nn.MultiheadAttention` (`mha.to_torch()`).
# PyTorch's mask has the opposite polarity: `True` means "blocked", so we pass `~causal`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from simple_llm import Decoder, FeedForward, MultiHeadAttention

# show figures (Figure) inline in the notebook
# %matplotlib inline

_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 16, 4, 4
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T), True = may attend
reference = mha.to_torch()(x, x, x, attn_mask=~causal, need_weights=False)[0]  # (B, T, C)
torch.testing.assert_close(mha(x), reference)
print(
    "MultiHeadAttention == nn.MultiheadAttention:", torch.allclose(mha(x), reference), tuple(reference.shape)
)

# %% [markdown]
# ## The correct version, part by part
#
# The same assembly as in chapter 3, split into functions: projection and split into heads,
# attention weights, merging the heads, output projection. The broken variants below replace one
# part each.


# %%
def project_and_split(x):
    qkv = mha.qkv(x).view(x.size(0), x.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    return qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each


def scores_of(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(hs)  # (..., T, T)


def weights_of(q, k):
    return scores_of(q, k).masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)


def merge(y):
    return y.transpose(1, 2).reshape(y.size(0), y.size(2), H * hs)  # (B, T, H*hs)


def attention(x, weights_fn=weights_of, merge_fn=merge, after_merge=mha.proj):
    q, k, v = project_and_split(x)  # (B, H, T, hs) each
    return after_merge(merge_fn(weights_fn(q, k) @ v))  # (B, T, C)


torch.testing.assert_close(attention(x), reference)
print("hand-built == reference:", torch.allclose(attention(x), reference), tuple(attention(x).shape))

# %% [markdown]
# ## The checks from the earlier chapters
#
# The rows of the weights sum to 1 (chapter 1); changing the last token does not move earlier
# outputs (chapter 2); the output equals the reference (chapter 3). `run_check` calls a check
# inside `try/except AssertionError` and prints "passed" or "caught: …".


# %%
def check_rows_sum_to_one(weights):
    deviation = (weights.sum(dim=-1) - 1).abs().max().item()
    if not deviation < 1e-9:  # NaN does not pass either
        raise AssertionError(f"rows of the weights do not sum to 1 (deviation {deviation:.3f})")


def check_causal(fn):
    x_changed = x.clone()
    x_changed[:, -1] += 1.0  # change the last token only
    change = (fn(x_changed)[:, :-1] - fn(x)[:, :-1]).abs().max().item()
    if not change < 1e-9:
        raise AssertionError(f"the future leaks into the past (shift {change:.3f})")


def check_equal(out, expected):
    if out.shape != expected.shape:
        raise AssertionError(f"shape {tuple(out.shape)} instead of {tuple(expected.shape)}")
    diff = (out - expected).abs().max().item()
    if not diff < 1e-9:
        raise AssertionError(f"output differs from the reference (by up to {diff:.3f})")


def run_check(label, check, *args):
    try:
        check(*args)
        print(f"{label}: passed")
    except AssertionError as err:
        print(f"{label}: caught: {err}")


q, k, v = project_and_split(x)  # (B, H, T, hs) each
run_check("reference, rows", check_rows_sum_to_one, weights_of(q, k))
run_check("reference, causality", check_causal, attention)
run_check("reference, comparison", check_equal, attention(x), reference)

# %% [markdown]
# ## Mistake 1. Splitting into heads before the projection
#
# The raw input is cut into $H$ pieces of $C/H$ features, and then the `qkv` projection, which
# expects all $C$ features, is applied. The dimensions do not match and PyTorch fails with a
# `RuntimeError`. The right order: first the projection $C \to 3H\,\mathrm{hs}$, then the split.


# %%
def split_then_project(x):
    parts = x.view(B, T, H, C // H)  # (B, T, H, C/H): the raw input cut into heads
    return parts @ mha.qkv.weight.T  # the projection expects C features


try:
    split_then_project(x)
except RuntimeError:
    print(
        f"caught: RuntimeError, a piece has {C // H} features, the projection expects C = {mha.qkv.in_features}"
    )
print("correct:", tuple(mha.qkv(x).shape), "->", tuple(q.shape))  # (B, T, 3*H*hs) -> (B, H, T, hs)

# %% [markdown]
# ## Mistake 1, the silent variant: a projection per slice
#
# The variant that runs: cut the input into $H$ slices of $C/H$ features and give each head its
# own small projection $C/H \to 3\,\mathrm{hs}$. The shapes all fit, but the projection has $H$
# times fewer weights, and each head sees only its slice of the token. The check: the queries of a
# head must depend on all $C$ features of the input (the gradient of head 0's queries with respect
# to each feature).


# %%
def project_each_slice(x, layers):
    parts = x.view(x.size(0), x.size(1), H, C // H)  # (B, T, H, C/H): head h gets its slice only
    qkv = torch.stack([layer(parts[:, :, h]) for h, layer in enumerate(layers)], dim=2)  # (B, T, H, 3*hs)
    return qkv.view(x.size(0), x.size(1), H, 3, hs).permute(3, 0, 2, 1, 4)  # (B, H, T, hs) each


def check_head_sees_all_features(project):
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(project(x_in)[0][:, 0].sum(), x_in)  # head 0's queries
    seen = int((grad.abs().sum(dim=(0, 1)) > 0).sum())  # features that move them
    if seen != C:
        raise AssertionError(f"head 0 sees {seen} of the C = {C} features of a token")


with torch.random.fork_rng():  # new layers, without moving the random numbers of later cells
    _ = torch.manual_seed(1)
    slice_layers = [torch.nn.Linear(C // H, 3 * hs).double() for _ in range(H)]
print("projection parameters: full", sum(p.numel() for p in mha.qkv.parameters()), end=" | ")
print("one per slice", sum(p.numel() for layer in slice_layers for p in layer.parameters()))
print(tuple(project_each_slice(x, slice_layers)[0].shape))  # (B, H, T, hs): the shape is right
run_check("reference", check_head_sees_all_features, project_and_split)
run_check(
    "a projection per slice", check_head_sees_all_features, lambda x: project_each_slice(x, slice_layers)
)

# %% [markdown]
# ## Mistake 2. The scores are not scaled
#
# Without the division by $\sqrt{\mathrm{hs}}$ the variance of the scores grows like
# $\mathrm{hs}$, the softmax gets sharper, and the output drifts from the reference. The variance
# check of chapter 1 catches it: for queries and keys with variance 1 the scores must have a
# variance of about 1.


# %%
def check_score_variance(score_fn):
    g = torch.Generator().manual_seed(1)
    q1, k1 = torch.randn(2, 512, 8, hs, generator=g, dtype=torch.float64)  # (N, T, hs) each
    variance = score_fn(q1, k1).var().item()
    if not abs(variance - 1) < 0.2:
        raise AssertionError(f"score variance {variance:.1f} instead of 1")


def scores_without_scale(q, k):
    return q @ k.transpose(-2, -1)  # (..., T, T), forgot / √hs


def weights_without_scale(q, k):
    return scores_without_scale(q, k).masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)


run_check("with the scale", check_score_variance, scores_of)
run_check("no scale", check_score_variance, scores_without_scale)
run_check("no scale, comparison", check_equal, attention(x, weights_fn=weights_without_scale), reference)

# %% [markdown]
# ## Mistake 3. Softmax over the wrong axis
#
# The softmax must run over the key axis (the last one). Over the batch axis (0) or the head axis
# (1) it mixes independent sequences and heads; where the mask blocked a position everywhere, all
# its scores are $-\infty$ and the softmax divides $0$ by $0$: NaN. Over the query axis (−2) the
# columns sum to 1 instead of the rows, and the denominator collects future queries: earlier
# outputs depend on the future.


# %%
def weights_softmax_over(dim):
    def weights(q, k):
        scores = scores_of(q, k).masked_fill(~causal, float("-inf"))  # (B, H, T, T)
        return scores.softmax(dim=dim)  # only dim=-1 is right

    return weights


for dim in (0, 1, -2):
    run_check(f"dim={dim}, rows", check_rows_sum_to_one, weights_softmax_over(dim)(q, k))
run_check("dim=-2, causality", check_causal, lambda x: attention(x, weights_fn=weights_softmax_over(-2)))

# %% [markdown]
# ## Mistake 4. The mask after the softmax
#
# If you take the softmax over all keys first and zero the future afterwards, the denominator has
# already counted the future keys: the rows sum to less than 1, and the output at position $t$
# depends on tokens after $t$. The $-\infty$ mask goes in **before** the softmax (chapter 2).


# %%
def weights_mask_after_softmax(q, k):
    weights = scores_of(q, k).softmax(dim=-1)  # (B, H, T, T), all keys, the future included
    return weights * causal  # the future is zeroed too late


run_check("rows", check_rows_sum_to_one, weights_mask_after_softmax(q, k))
run_check("causality", check_causal, lambda x: attention(x, weights_fn=weights_mask_after_softmax))

# %% [markdown]
# ## Mistakes 2–4 on the attention map
#
# Mistakes 2, 3 and 4 change the weights themselves, so they show on a map: head 0 of the first
# sequence, correct and broken, on one colour scale. Without $1/\sqrt{\mathrm{hs}}$ the rows are
# sharper; with the
# softmax over the queries the columns sum to 1, and the last query takes the whole weight of the
# last key; with the mask after the softmax the rows are dimmer, because part of their weight went
# to the future and was cut off. Mistake 5 comes after the weights and does not show here.

# %%
variants = {
    "correct": weights_of,
    "no 1/√hs": weights_without_scale,
    "softmax over queries": weights_softmax_over(-2),
    "mask after softmax": weights_mask_after_softmax,
}
maps = torch.stack([fn(q, k)[0, 0] for fn in variants.values()]).detach()  # (4, T, T)
for name, w in zip(variants, maps):
    print(f"{name}: row sums", [round(s, 2) for s in w.sum(dim=-1).tolist()])
fig, axes = plt.subplots(2, 2, figsize=(5.6, 5.6), layout="constrained")  # 2 x 2: readable on a phone
plt.close(fig)  # shown once, as the cell's value
for ax, name, w in zip(axes.flat, variants, maps):
    image = ax.imshow(w.numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set(title=name, xlabel="key", ylabel="query")
fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight")
fig.suptitle("Head 0 of sequence 0")
fig

# %% [markdown]
# ## Mistake 5. view without transpose when merging heads
#
# The heads' output has the shape (B, H, T, hs). `view(B, T, H * hs)` without `transpose(1, 2)`
# gives the same shape as the correct merge, but reads memory in "head, position" order: the row
# of position 0 receives positions 0–3 of head 0. The shape is right, the numbers are scrambled:
# the comparison with `nn.MultiheadAttention` fails, and positions see the future.


# %%
def merge_without_transpose(y):
    return y.view(y.size(0), y.size(2), H * hs)  # (B, H, T, hs) read as (B, T, H*hs): scrambled


print(tuple(attention(x, merge_fn=merge_without_transpose).shape))  # (B, T, C), the shape is right
run_check(
    "comparison with nn.MultiheadAttention",
    check_equal,
    attention(x, merge_fn=merge_without_transpose),
    reference,
)
run_check("causality", check_causal, lambda x: attention(x, merge_fn=merge_without_transpose))

# %% [markdown]
# ## Mistake 6. No output projection
#
# The merged heads go straight out. When $H\,\mathrm{hs} = C$ the shape matches and the mistake
# is silent.
# Inside this layer the heads are not mixed: each output channel carries one head. A later layer
# reads the whole residual stream and mixes them there, but this layer has lost its own mixing. The comparison with the reference catches it. (If
# $H\,\mathrm{hs} \ne C$, the shape check catches the same mistake first.)


# %%
def no_projection(y):
    return y  # (B, T, H*hs), mha.proj forgotten


print(tuple(attention(x, after_merge=no_projection).shape))  # (B, T, H*hs) == (B, T, C)
y_heads = weights_of(q, k) @ v  # (B, H, T, hs)
y_other = y_heads.clone()
y_other[:, 1] += 1.0  # change the output of head 1 only
moved = (merge(y_other) - merge(y_heads)).abs().sum(dim=(0, 1)) > 0  # (H*hs,)
print("without proj, the channels head 1 moves:", moved.nonzero().flatten().tolist())
moved = (mha.proj(merge(y_other)) - mha.proj(merge(y_heads))).abs().sum(dim=(0, 1)) > 0  # (C,)
print("with proj:", int(moved.sum()), "of", C)
run_check(
    "comparison with nn.MultiheadAttention", check_equal, attention(x, after_merge=no_projection), reference
)

# %% [markdown]
# ## Mistake 7. The feed-forward network before merging the heads
#
# The block's feed-forward network works on vectors of size $C$, that is after the heads are
# merged and projected. Applied to the output of a single head ($\mathrm{hs}$ features), it does
# not fit the shape. Inserted between the merge and the projection, it runs but computes something else.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
expected = ff(attention(x))  # (B, T, C): heads -> merge -> proj -> network
per_head = weights_of(q, k) @ v  # (B, H, T, hs)
try:
    ff(per_head)
except (ValueError, RuntimeError) as err:
    print(
        f"caught: {type(err).__name__}, a head has {per_head.size(-1)} features, the network expects C = {C}"
    )
run_check(
    "network between merge and proj, comparison",
    check_equal,
    attention(x, after_merge=lambda y: mha.proj(ff(y))),
    expected,
)

# %% [markdown]
# ## Mistake 8. No residual connection
#
# A block without `x + …` loses the straight road for the gradient. Two checks of chapter 6 catch
# it: the hand-built block must equal `Decoder`, and the gradient at the input of a stack of 8
# blocks must not vanish (the ratio of the gradient norms at the input and at the output is above 0.5).

# %%
block = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()  # post-LN


def check_gradient_reaches_input(step, N=8):
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0).double() for _ in range(N)]
    h = x0 = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)
    for b in blocks:
        h = step(b, h)  # (B, T, C)
    (h * g).sum().backward()
    ratio = (x0.grad.norm() / g.norm()).item()
    if not ratio > 0.5:
        raise AssertionError(f"the gradient does not reach the input (norm ratio {ratio:.3f})")


def block_without_residual(b, x):
    x = b.norm1(b.attention(x))  # (B, T, C), no x + ...
    return b.norm2(b.feed_forward(x))  # (B, T, C)


run_check("Decoder, gradient", check_gradient_reaches_input, lambda b, h: b(h))
run_check("no residual, gradient", check_gradient_reaches_input, block_without_residual)
run_check("no residual, comparison with Decoder", check_equal, block_without_residual(block, x), block(x))

# %% [markdown]
# ## Mistake 9. No layer normalization
#
# In a post-LN block (the default) the output is the output of a LayerNorm: each token has mean 0
# and standard deviation 1 over its features (chapter 6, with `weight = 1`, `bias = 0` as at the
# start). Without normalization this check fails, and the residual stream grows from block to
# block: we measure its standard deviation over a stack of 8 blocks.


# %%
def check_normalized(y):
    mean = y.mean(dim=-1).abs().max().item()
    std = (y.std(dim=-1, unbiased=False) - 1).abs().max().item()
    if not (mean < 1e-6 and std < 1e-3):
        raise AssertionError(f"tokens are not normalized (mean up to {mean:.3f}, std off 1 by {std:.3f})")


def block_without_norm(b, x):
    x = x + b.attention(x)  # (B, T, C), no norm1
    return x + b.feed_forward(x)  # (B, T, C), no norm2


run_check("Decoder, normalization", check_normalized, block(x))
run_check("no LayerNorm, normalization", check_normalized, block_without_norm(block, x))
run_check("no LayerNorm, comparison with Decoder", check_equal, block_without_norm(block, x), block(x))


def stream_std(step, N=8):
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0).double() for _ in range(N)]
    h, stds = x, []
    with torch.no_grad():
        for b in blocks:
            h = step(b, h)  # (B, T, C)
            stds.append(round(h.std().item(), 2))
    return stds


print("std of the stream after blocks 1…8, Decoder:     ", stream_std(lambda b, h: b(h)))
print("std of the stream after blocks 1…8, no LayerNorm:", stream_std(block_without_norm))

# %% [markdown]
# ### The pre-LN case
#
# A correct pre-LN block (`norm_first=True`) has an unnormalized output by design, so the check
# above raises a false alarm on it and cannot find a missing norm there. In pre-LN what is
# normalized is the **input of each sublayer**: we catch it with forward pre-hooks on
# `attention` and `feed_forward`. The broken variant forgets `norm1`.

# %%
pre_block = Decoder(H, C, hs, T, dropout=0.0, norm_first=True).double().eval()


def check_sublayer_inputs_normalized(forward):
    inputs = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        for m in (pre_block.attention, pre_block.feed_forward)
    ]
    try:
        forward(pre_block, x)
    finally:
        for hook in hooks:
            hook.remove()
    for sublayer_input in inputs:  # (B, T, C) each
        check_normalized(sublayer_input)


def pre_ln_without_norm1(b, x):
    x = x + b.attention(x)  # (B, T, C), norm1 forgotten
    return x + b.feed_forward(b.norm2(x))  # (B, T, C)


run_check("pre-LN Decoder, output normalization", check_normalized, pre_block(x))
run_check("pre-LN Decoder, sublayer inputs", check_sublayer_inputs_normalized, lambda b, x: b(x))
run_check("pre-LN without norm1, sublayer inputs", check_sublayer_inputs_normalized, pre_ln_without_norm1)

# %% [markdown]
# ## Mistake 10. No activation
#
# Without the ReLU the two layers of the feed-forward network are one linear layer $W = W_2 W_1$,
# $b = W_2 b_1 + b_2$ (chapter 6). The check builds that layer from the `up` and `down` weights and
# requires the network to differ from it.


# %%
def check_not_one_linear_layer(fn):
    W = ff.down.weight @ ff.up.weight  # (C, C)
    b = ff.down.weight @ ff.up.bias + ff.down.bias  # (C,)
    diff = (fn(x) - (x @ W.T + b)).abs().max().item()
    if not diff > 1e-6:
        raise AssertionError(f"the network collapsed into one linear layer (difference {diff:.3f})")


def ff_without_activation(x):
    return ff.dropout(ff.down(ff.up(x)))  # (B, T, C), ReLU forgotten


run_check("FeedForward", check_not_one_linear_layer, ff)
run_check("no ReLU", check_not_one_linear_layer, ff_without_activation)

# %% [markdown]
# ## Summary
#
# Each of the ten mistakes was caught by a check from the earlier chapters: the row sums of the
# weights, causality, the score variance, the comparison with the reference, the gradient at the
# input of a stack, the normalization of the tokens and the check for a collapse into one linear
# layer. The summary table is in the [chapter text](../../chapters/07-common-mistakes/); next
# come the [interview](../../chapters/08-interview/) questions.
