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
# Two sequences of 6 tokens, `C = 16`, 4 heads of 4. Everything in float64 so that we can compare
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
# `FeedForward` works on every position separately: it expands `C → 4·C` (`up`), applies ReLU,
# shrinks back `4·C → C` (`down`) and applies dropout. `nn.Linear` stores its weight as
# `(out_features, in_features)`.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
print("up:  ", tuple(ff.up.weight.shape))  # (4*C, C)
print("down:", tuple(ff.down.weight.shape))  # (C, 4*C)
print("ff(x):", tuple(ff(x).shape))  # (B, T, C)

# %% [markdown]
# ### The same network by hand
#
# `y = W₂·relu(W₁·x + b₁) + b₂`, where `W₁, b₁` are `up` and `W₂, b₂` are `down`.

# %%
W1, b1 = ff.up.weight, ff.up.bias  # (4*C, C), (4*C,)
W2, b2 = ff.down.weight, ff.down.bias  # (C, 4*C), (C,)
hidden = torch.relu(x @ W1.T + b1)  # (B, T, 4*C)
by_hand = hidden @ W2.T + b2  # (B, T, C)
torch.testing.assert_close(by_hand, ff(x))
print("the hand-built network equals FeedForward:", tuple(by_hand.shape))  # (B, T, C)

# %% [markdown]
# ## Without an activation two layers collapse into one
#
# Remove the ReLU: `W₂·(W₁·x + b₁) + b₂ = (W₂·W₁)·x + (W₂·b₁ + b₂)`. That is one linear layer with
# the matrix `W = W₂·W₁` of shape `(C, C)` and the bias `b = W₂·b₁ + b₂`. Let us check it on numbers.

# %%
W = W2 @ W1  # (C, C)
b = W2 @ b1 + b2  # (C,)
two_layers = ff.down(ff.up(x))  # (B, T, C), no ReLU
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(two_layers, one_layer)
print("without ReLU: two layers == one layer with W", tuple(W.shape))  # (C, C)

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
# LayerNorm normalizes each token over its `C` features: it subtracts the mean, divides by the
# standard deviation (biased, with `eps` inside the square root), then multiplies by `weight` and
# adds `bias` (1 and 0 at the start).

# %%
ln = nn.LayerNorm(C).double()
mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
var = x.var(dim=-1, unbiased=False, keepdim=True)  # (B, T, 1)
normed = (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias  # (B, T, C)
torch.testing.assert_close(normed, ln(x))
print(f"mean over features: {normed.mean(dim=-1).abs().max().item():.3f}")
print(f"standard deviation: {normed.std(dim=-1, unbiased=False).mean().item():.3f}")

# %% [markdown]
# ## The residual connection
#
# A residual connection adds the output of a sublayer to its input: `x + f(x)`. If the sublayer
# outputs zeros, the input passes through unchanged. Let us check: zero `down` in a copy of the network.

# %%
silent = FeedForward(emb_size=C, dropout=0.0).double()
with torch.no_grad():
    silent.down.weight.zero_()
    silent.down.bias.zero_()
torch.testing.assert_close(x + silent(x), x)
print("x + f(x) == x when f outputs zeros:", tuple((x + silent(x)).shape))  # (B, T, C)

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
print("hand-built post-LN equals Decoder:", tuple(post(x).shape))  # (B, T, C)

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
print("hand-built pre-LN equals Decoder:", tuple(pre(x).shape))  # (B, T, C)
gap = (post(x) - pre(x)).abs().max().item()
print(f"post-LN vs pre-LN on the same weights, largest difference: {gap:.3f}")

# %% [markdown]
# ## The gradient at the input of a stack of blocks
#
# Why do GPT-2 and most modern models use pre-LN? In pre-LN the residual stream is a straight road
# from the output back to the input: the gradient travels along it without passing through a
# single normalization. In post-LN every block's LayerNorm sits on that road, and the gradient at
# the input weakens with depth. We build a stack of N blocks, take a random linear loss and measure
# the norm of the gradient at the input divided by the norm of the gradient at the output (the row
# N = 8 is a stack of eight blocks).


# %%
def input_grad(norm_first, N):
    _ = torch.manual_seed(0)
    stack = nn.Sequential(
        *[Decoder(H, C, hs, T, dropout=0.0, norm_first=norm_first) for _ in range(N)]
    ).double()
    x = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)  # the gradient arriving at the output
    (stack(x) * g).sum().backward()
    return (x.grad.norm() / g.norm()).item()


for N in (1, 4, 8, 16, 32):
    print(f"N = {N:2d}: post-LN {input_grad(False, N):.3f}, pre-LN {input_grad(True, N):.3f}")

# %% [markdown]
# ## Parameter count of the block
#
# Attention: `qkv` (`C → 3·H·hs`) and `proj` (`H·hs → C`) with biases. Feed-forward network:
# `C → 4·C → C` with biases. Two normalizations: a `weight` and a `bias` of length `C` each.

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
# - Without an activation the feed-forward network is one linear layer `W = W₂·W₁`, `b = W₂·b₁ + b₂`.
# - `Decoder` is post-LN by default (`norm_first=False`); `norm_first=True` gives pre-LN on the same
#   parameters, and both hand-built versions equal the package.
# - In post-LN the gradient at the input of a stack weakens with depth (0.714 at N = 32), in pre-LN
#   it does not: it travels along the residual stream. The output of a pre-LN stack is not
#   normalized, though, so GPT-2 adds one more LayerNorm after the last block.
#
# Next: [common mistakes](../../chapters/07-common-mistakes/): each of them breaks one of the
# checks of this chapter and the earlier ones.
