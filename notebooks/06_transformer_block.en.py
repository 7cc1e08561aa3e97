# %% [markdown]
# # The Transformer block: the notebook
#
# We assemble a decoder block from its parts: the feed-forward network with its activation, layer
# normalization (LayerNorm), residual connections and multi-head attention. We check numerically
# that two linear layers without an activation collapse into one, and compare the two orders of
# normalization, post-LN and pre-LN, on the same weights. The chapter:
# [The Transformer block](../../chapters/06-transformer-block/).
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
# ## Sizes and input
#
# Two sequences of 6 tokens, $C = 16$, 4 heads of 4. Everything in float64 so that we can compare
# with a tight tolerance. Dropout is 0 everywhere: we compare deterministic computations.

# %%
import torch
import torch.nn as nn

from simple_llm import Decoder, FeedForward

_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 16, 4, 4
x = torch.randn(B, T, C, dtype=torch.float64)
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## The feed-forward network
#
# `FeedForward` works on every position separately: it expands $C \to 4C$ (`up`), applies ReLU,
# shrinks back $4C \to C$ (`down`) and applies dropout. `nn.Linear` stores its weight as
# `(out_features, in_features)`.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
print("up:  ", tuple(ff.up.weight.shape))  # (4*C, C)
print("down:", tuple(ff.down.weight.shape))  # (C, 4*C)
print("ff(x):", tuple(ff(x).shape))  # (B, T, C)

# %% [markdown]
# ### The same network by hand
#
# $$y = W_2 \operatorname{ReLU}(W_1 x + b_1) + b_2,$$
#
# where $W_1, b_1$ are `up` and $W_2, b_2$ are `down`.

# %%
W1, b1 = ff.up.weight, ff.up.bias  # (4*C, C), (4*C,)
W2, b2 = ff.down.weight, ff.down.bias  # (C, 4*C), (C,)
hidden = torch.relu(x @ W1.T + b1)  # (B, T, 4*C)
by_hand = hidden @ W2.T + b2  # (B, T, C)
torch.testing.assert_close(by_hand, ff(x))
print("the hand-built network equals FeedForward:", torch.allclose(by_hand, ff(x)), tuple(by_hand.shape))

# %% [markdown]
# ## Without an activation two layers collapse into one
#
# Remove the ReLU:
#
# $$W_2 (W_1 x + b_1) + b_2 = (W_2 W_1)\,x + (W_2 b_1 + b_2).$$
#
# That is one linear layer with the matrix $W = W_2 W_1$ of shape $(C, C)$ and the bias
# $b = W_2 b_1 + b_2$. Let us check it on numbers.

# %%
W = W2 @ W1  # (C, C)
b = W2 @ b1 + b2  # (C,)
two_layers = ff.down(ff.up(x))  # (B, T, C), no ReLU
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(two_layers, one_layer)
print("without ReLU: two layers == one layer with W", tuple(W.shape), torch.allclose(two_layers, one_layer))

# %% [markdown]
# ### With the ReLU they do not
#
# With the activation the result no longer matches one linear layer: the ReLU zeroes different
# coordinates for different tokens, and no single matrix can do that.

# %%
diff = (ff(x) - one_layer).abs().max().item()
print(f"with ReLU: largest difference from one layer = {diff:.3f}")
print("parameters in FeedForward:", sum(p.numel() for p in ff.parameters()))
print("parameters in one C×C layer:", W.numel() + b.numel())

# %% [markdown]
# ## Layer normalization
#
# LayerNorm normalizes each token over its $C$ features: it subtracts the mean, divides by the
# standard deviation (biased, with `eps` inside the square root), then multiplies feature $j$ by
# `weight[j]` and adds `bias[j]` (1 and 0 at the start):
#
# $$\operatorname{LN}(x)_j = \gamma_j\,\frac{x_j - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta_j,$$
#
# where $\mu$ and $\sigma^2$ are the mean and the variance over the token's features.

# %%
ln = nn.LayerNorm(C).double()
mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
var = x.var(dim=-1, unbiased=False, keepdim=True)  # (B, T, 1)
normed = (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias  # (B, T, C)
torch.testing.assert_close(normed, ln(x))
print(f"mean over features: {normed.mean(dim=-1).abs().max().item():.3f}")
print(f"standard deviation: {normed.std(dim=-1, unbiased=False).mean().item():.3f}")

# %% [markdown]
# Mean 0 and standard deviation 1 hold only while $\gamma = 1$ and $\beta = 0$, as at the start.
# After training $\gamma$ and $\beta$ differ from feature to feature: they are a per-feature affine
# map applied after the normalization, not a target mean and scale for the token. With a
# different $\gamma_j$ and $\beta_j$ in every feature, the tokens' means and standard deviations
# over the features scatter; what stays exact is that $(y - \beta)/\gamma$ is the normalized token.

# %%
scaled = nn.LayerNorm(C).double()
with torch.no_grad():
    scaled.weight.copy_(torch.linspace(0.5, 2.0, C))  # gamma: a different scale in every feature
    scaled.bias.copy_(torch.linspace(-1.0, 1.0, C))  # beta: a different shift in every feature
y = scaled(x)  # (B, T, C)
x_hat = (x - mean) / torch.sqrt(var + scaled.eps)  # (B, T, C): the normalized token
torch.testing.assert_close(y, x_hat * scaled.weight + scaled.bias)
token_mean, token_std = y.mean(dim=-1), y.std(dim=-1, unbiased=False)  # (B, T) each
print(f"per token, mean over features: {token_mean.min().item():.3f} to {token_mean.max().item():.3f}")
print(f"per token, standard deviation: {token_std.min().item():.3f} to {token_std.max().item():.3f}")
back = (y - scaled.bias) / scaled.weight  # (B, T, C)
print(
    f"(y - beta) / gamma: largest |mean| {back.mean(dim=-1).abs().max().item():.3f},"
    f" mean std {back.std(dim=-1, unbiased=False).mean().item():.3f}"
)

# %% [markdown]
# ## The residual connection
#
# A residual connection adds the output of a sublayer to its input: $x + f(x)$. If the sublayer
# outputs zeros, the input passes through unchanged. Let us check: zero `down` in a copy of the
# network.

# %%
silent = FeedForward(emb_size=C, dropout=0.0).double()
with torch.no_grad():
    silent.down.weight.zero_()
    silent.down.bias.zero_()
torch.testing.assert_close(x + silent(x), x)
print("x + f(x) == x when f outputs zeros:", torch.equal(x + silent(x), x))

# %% [markdown]
# ## Post-LN: the default
#
# By default (`norm_first=False`) `Decoder` is post-LN, as in the project's original code and the
# original Transformer: normalization comes **after** the addition of the residual connection.
#
# ```mermaid
# flowchart LR
#   X[x] --> A[Attention] --> S1(("+")) --> N1[LayerNorm] --> F[Feed-forward] --> S2(("+")) --> N2[LayerNorm] --> Y[output]
#   X --> S1
#   N1 --> S2
# ```

# %%
post = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()
print("default norm_first:", post.norm_first)


def post_ln(block, x):
    x = block.norm1(x + block.attention(x))  # (B, T, C)
    return block.norm2(x + block.feed_forward(x))  # (B, T, C)


torch.testing.assert_close(post_ln(post, x), post(x))
print("hand-built post-LN equals Decoder:", torch.allclose(post_ln(post, x), post(x)), tuple(post(x).shape))

# %% [markdown]
# ## Pre-LN on the same weights
#
# Pre-LN (`norm_first=True`) normalizes the input of each sublayer, and the residual connection
# goes around the normalization. We load the post-LN block's `state_dict` into a pre-LN block: the
# weights are the same, only the order of operations changes.
#
# ```mermaid
# flowchart LR
#   X[x] --> N1[LayerNorm] --> A[Attention] --> S1(("+")) --> N2[LayerNorm] --> F[Feed-forward] --> S2(("+")) --> Y[output]
#   X --> S1
#   S1 --> S2
# ```

# %%
pre = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0, norm_first=True)
pre = pre.double().eval()
pre.load_state_dict(post.state_dict())


def pre_ln(block, x):
    x = x + block.attention(block.norm1(x))  # (B, T, C)
    return x + block.feed_forward(block.norm2(x))  # (B, T, C)


torch.testing.assert_close(pre_ln(pre, x), pre(x))
print("hand-built pre-LN equals Decoder:", torch.allclose(pre_ln(pre, x), pre(x)), tuple(pre(x).shape))
gap = (post(x) - pre(x)).abs().max().item()
print(f"post-LN vs pre-LN on the same weights, largest difference: {gap:.3f}")

# %% [markdown]
# ## The gradient at the input of a stack of blocks
#
# In pre-LN the residual stream is a straight road from the output back to the input: the
# gradient travels along it without passing through a single normalization. In post-LN every
# block's LayerNorm sits on that road. We build a stack of $N$ blocks at initialization, take a
# random linear loss and measure the norm of the gradient at the input divided by the norm of the
# gradient at the output, for depths from 1 to 32.


# %%
def run_stack(norm_first, N, final_norm=False):
    """N blocks at initialization and a random linear loss; returns the blocks, the stream and g."""
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0, norm_first=norm_first).double() for _ in range(N)]
    x = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)  # the gradient arriving at the output
    stream = [x]  # the residual stream: the input, then the output of every block
    for block in blocks:
        stream.append(block(stream[-1]))  # (B, T, C)
        stream[-1].retain_grad()
    out = nn.functional.layer_norm(stream[-1], (C,)) if final_norm else stream[-1]  # (B, T, C)
    (out * g).sum().backward()
    return blocks, stream, g


def input_grad(norm_first, N):
    _, stream, g = run_stack(norm_first, N)
    return (stream[0].grad.norm() / g.norm()).item()


for N in (1, 2, 4, 8, 16, 32):
    print(f"N = {N:2d}: post-LN {input_grad(False, N):.3f}, pre-LN {input_grad(True, N):.3f}")

# %% [markdown]
# Post-LN drifts down, and not monotonically: at initialization the gradient loses little on its
# way down the stack. Pre-LN grows.
#
# ## Why the pre-LN gradient grows
#
# A pre-LN block passes the gradient along its identity path and adds the part that goes through
# its branch, so its gain (the gradient norm at its input over the norm at its output) is above 1
# on average, though not in every block, and the gains of the blocks multiply. Nothing normalizes the pre-LN stream: every block adds
# its output to it, and its standard deviation grows with depth. Each branch reads the stream
# through a LayerNorm, which divides by that standard deviation, so the later a block, the smaller
# its branch's part and the closer its gain to 1. In post-LN the stream is normalized after
# every block.

# %%
_, stream, g = run_stack(True, 32)
std = [h.std().item() for h in stream]  # after 0, 1, ..., 32 blocks
gain = [(stream[i].grad.norm() / stream[i + 1].grad.norm()).item() for i in range(32)]  # block i + 1
print("pre-LN, std of the stream after 0, 8, 16, 24, 32 blocks:", [round(s, 2) for s in std[::8]])
print("pre-LN, gain of blocks 1, 2, 4, 8, 16, 32:", [round(gain[i - 1], 3) for i in (1, 2, 4, 8, 16, 32)])
print(f"pre-LN, product of the 32 gains: {torch.tensor(gain).prod().item():.3f}")
_, post_stream, _ = run_stack(False, 32)
print(
    "post-LN, std of the stream after 0, 8, 16, 24, 32 blocks:",
    [round(h.std().item(), 2) for h in post_stream[::8]],
)
early, late = sum(gain[:8]) / 8, sum(gain[-8:]) / 8
print("pre-LN, mean gain of blocks 1–8 and 25–32:", [round(early, 3), round(late, 3)])
assert std[-1] > 2 * std[0] and early > late

# %% [markdown]
# ## The gradient block by block
#
# The same two stacks of 32 blocks, now with the gradient at every point of the residual stream:
# its norm after $k$ blocks divided by its norm at the output ($k = 32$). At $k = 0$ these are the
# values of the table above for $N = 32$. The vertical axis is logarithmic, because the gains of
# the blocks multiply.

# %%
import matplotlib.pyplot as plt

# show figures (Figure) inline in the notebook
# %matplotlib inline

depth = list(range(33))  # after 0, 1, ..., 32 blocks
post_norm = [(h.grad.norm() / post_stream[-1].grad.norm()).item() for h in post_stream]
pre_norm = [(h.grad.norm() / stream[-1].grad.norm()).item() for h in stream]
print("after 0, 8, 16, 24, 32 blocks, post-LN:", [round(v, 3) for v in post_norm[::8]])
print("after 0, 8, 16, 24, 32 blocks, pre-LN: ", [round(v, 3) for v in pre_norm[::8]])
fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
ax.plot(depth, post_norm, "o-", markersize=3, label="post-LN")
ax.plot(depth, pre_norm, "s-", markersize=3, label="pre-LN")
ax.axhline(1.0, color="grey", linewidth=0.8)
ax.set(
    yscale="log",
    xlabel="k: blocks from the input",
    ylabel="gradient norm / norm at the output",
    title="Gradient along a stack of 32 blocks",
)
ax.set_xticks(range(0, 33, 8))
ax.set_yticks([0.5, 1, 2, 3], ["0.5", "1", "2", "3"])
ax.minorticks_off()
ax.set_ylim(0.45, 3.2)
ax.legend()
ax.grid(True, alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## Gradients near the output: why post-LN needs a warm-up
#
# The usual finding (Xiong et al., 2020) is about the parameters near the output. At
# initialization the gradient of the last post-LN block does not shrink with depth. In pre-LN with
# a final LayerNorm after the last block (as in GPT-2) it does: the final LayerNorm divides by the
# standard deviation of the stream, which grows with depth. So a learning rate that suits pre-LN
# takes steps that are too large near the output of a deep post-LN model, and post-LN is trained
# with a learning-rate warm-up: the rate starts small and grows over the first steps. In Xiong et
# al.'s experiments pre-LN trained well without a warm-up; large pre-LN models such as GPT-3 and
# LLaMA are still trained with one.


# %%
def last_block_grad(norm_first, N):
    blocks, _, _ = run_stack(norm_first, N, final_norm=norm_first)  # pre-LN ends with a LayerNorm
    return torch.cat([p.grad.flatten() for p in blocks[-1].parameters()]).norm().item()


last = {N: (last_block_grad(False, N), last_block_grad(True, N)) for N in (1, 2, 4, 8, 16, 32)}
for N, (post_grad, pre_grad) in last.items():
    print(f"N = {N:2d}: last block, post-LN {post_grad:.1f}, pre-LN with a final LayerNorm {pre_grad:.1f}")
assert last[32][1] < 0.6 * last[1][1] and last[32][0] > 0.8 * last[1][0]

# %% [markdown]
# ## Parameter count of the block
#
# Attention: `qkv` ($C \to 3H\,\mathrm{hs}$) and `proj` ($H\,\mathrm{hs} \to C$) with biases.
# Feed-forward network: $C \to 4C \to C$ with biases. Two normalizations: a `weight` and a `bias`
# of length $C$ each.

# %%
attention = (C * 3 * H * hs + 3 * H * hs) + (H * hs * C + C)
feed_forward = (C * 4 * C + 4 * C) + (4 * C * C + C)
norms = 2 * (C + C)
total = attention + feed_forward + norms
assert total == sum(p.numel() for p in post.parameters())
print(f"attention {attention} + feed-forward {feed_forward} + norms {norms} = {total}")

# %% [markdown]
# ## Summary
#
# - Without an activation the feed-forward network is one linear layer $W = W_2 W_1$,
#   $b = W_2 b_1 + b_2$.
# - LayerNorm normalizes each token over its features; $\gamma$ and $\beta$ are a per-feature
#   affine map after it.
# - `Decoder` is post-LN by default (`norm_first=False`); `norm_first=True` gives pre-LN on the same
#   parameters, and both hand-built versions equal the package.
# - At initialization the gradient at the input of a post-LN stack drifts down with depth (0.714 at
#   $N = 32$); in pre-LN it grows (2.617), because every block adds its branch's part, less and less
#   as the unnormalized stream grows.
# - Near the output the post-LN gradient does not shrink with depth, the pre-LN one (with a final
#   LayerNorm, as in GPT-2) does: that is why post-LN needs a learning-rate warm-up. Pre-LN can do
#   without one in Xiong et al.'s experiments; large pre-LN models still use it.
#
# Next: [common mistakes](../../chapters/07-common-mistakes/): each of them breaks one of the
# checks of this chapter and the earlier ones.
