# %% [markdown]
# # Positions: the notebook
#
# The notebook of the chapter ["Positions"](../../chapters/09-positions/). We show that attention
# without positions cannot tell the order of the tokens before the query, watch the task of
# chapter 5 fail without positions, then give the model learned, sinusoidal and rotary positions,
# check the property of rotary positions that matters (scores depend only on the distance) and
# measure how a rotary score fades with that distance.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# number of heads (`num_heads`), **hs** head size (`head_size`), **V** vocabulary size.

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
# ## Attention does not see the order
#
# Query $t$ takes a weighted mean of the values of keys $0,\dots,t$. The score of a key depends on
# the query and on that key only; the softmax then normalises the scores over all the keys, and
# neither step looks at where a key stands. Shuffle the tokens before position $t$, and the output
# at $t$ does not move: for one attention layer, the past is a bag of tokens, not a sequence.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # tiny models: float64 is cheap and exact
torch.set_num_threads(1)  # one thread is enough for tiny models
_ = torch.manual_seed(0)
mha = simple_llm.MultiHeadAttention(num_heads=2, emb_size=8, head_size=4, max_seq_len=16, dropout=0.0)
x = torch.randn(1, 6, 8)  # (B, T, C)
shuffled = torch.cat([x[:, torch.tensor([3, 0, 4, 2, 1])], x[:, 5:]], dim=1)  # tokens 0..4 shuffled
diff_last = (mha(x)[:, -1] - mha(shuffled)[:, -1]).abs().max().item()
diff_first = (mha(x)[:, 0] - mha(shuffled)[:, 0]).abs().max().item()
print("last position unchanged (to 1e-12):", diff_last < 1e-12)
print("first position, largest change:", round(diff_first, 2))
assert diff_last < 1e-12

# %% [markdown]
# ## The task of chapter 5 without positions
#
# The same task as in the chapter ["Seeing the heads"](../../chapters/05-seeing-heads/): 12 random
# tokens from a vocabulary of 8; at every $t \ge 3$ the model must name $x_{t-1}$ and $x_{t-3}$. The
# model is the same (an embedding, one attention layer with a residual connection, a linear head),
# and the way it learns positions is a parameter: `"none"`, `"learned"`, `"sinusoidal"` or
# `"rope"`.

# %%
V, T, C, H, hs = 8, 12, 32, 2, 16
OFFSETS = (1, 3)
K = max(OFFSETS)
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (512, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 2): x[t − k]


class Tiny(nn.Module):
    def __init__(self, positions):
        super().__init__()
        self.positions = positions
        self.tok = nn.Embedding(V, C)  # token -> (C,)
        self.pos = simple_llm.LearnedPositions(T, C) if positions == "learned" else None
        self.attn = simple_llm.MultiHeadAttention(H, C, hs, T, dropout=0.0, rope=positions == "rope")
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def forward(self, x):
        h = self.tok(x)  # (B, T, C)
        if self.positions == "learned":
            h = h + self.pos(x.size(1))  # (B, T, C)
        if self.positions == "sinusoidal":
            h = h + simple_llm.sinusoidal_positions(x.size(1), C)  # (B, T, C)
        h = h + self.attn(h)  # (B, T, C): residual connection
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 2, V)


def train(positions, steps=150):
    _ = torch.manual_seed(0)
    model = Tiny(positions)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = targets(x_train)[:, K:].reshape(-1)  # (B·(T−3)·2,)
    for _ in range(steps):
        loss = F.cross_entropy(model(x_train)[:, K:].reshape(-1, V), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(x_test).argmax(dim=-1)  # (B, T, 2)
    return model, (pred[:, K:] == targets(x_test)[:, K:]).double().mean(dim=(0, 1))  # (2,)


_, acc_none = train("none")
print("no positions, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_none.tolist()])
assert (acc_none < 0.5).all()

# %% [markdown]
# Far from 1 and not much above guessing: the model knows which tokens came before, but not
# which of them was one step back and which three steps.
#
# ## Learned positions
#
# The simplest remedy, the one of GPT-2 and of the original project: one trained vector per
# position, added to the token embedding. `LearnedPositions(T, C)(n)` returns the vectors of
# positions $0,\dots,n-1$, shape (n, C). It knows nothing about positions beyond `max_seq_len`.

# %%
print(tuple(simple_llm.LearnedPositions(T, C)(5).shape))  # (T, C)
model_learned, acc_learned = train("learned")
print("learned positions, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_learned.tolist()])
assert (acc_learned > 0.95).all()

# %% [markdown]
# ## Sinusoidal positions
#
# Vaswani et al. (2017) add fixed vectors: the coordinate pair $(2i, 2i+1)$ of position $p$ holds
#
# $$
# \mathrm{PE}_{p,\,2i} = \sin(p\,\omega_i), \quad \mathrm{PE}_{p,\,2i+1} = \cos(p\,\omega_i),
# $$
#
# with $\omega_i = 10000^{-2i/C}$. The first pairs turn fast, the last ones slowly: every position
# gets its own combination of phases, and nothing has to be learned.

# %%
pe = simple_llm.sinusoidal_positions(64, 16)  # (T, C)
p, i = 5, 3
closed = [math.sin(p / 10000 ** (2 * i / 16)), math.cos(p / 10000 ** (2 * i / 16))]
assert torch.allclose(pe[p, 2 * i : 2 * i + 2], torch.tensor(closed))
print(tuple(pe.shape), "PE[5, 6:8] =", [round(v, 4) for v in pe[p, 6:8].tolist()])
fig, (left, right) = plt.subplots(2, 1, figsize=(5, 5), layout="constrained")
for pair in (0, 2, 4):
    left.plot(pe[:, 2 * pair].numpy(), label=f"sin, pair {pair}")
left.set(xlabel="position p", title="Three coordinates")
left.legend(fontsize=10)
right.imshow(pe.T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
right.set(xlabel="position p", ylabel="coordinate", title="All 16 coordinates")
plt.close(fig)
fig

# %%
_, acc_sin = train("sinusoidal")
print("sinusoidal positions, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_sin.tolist()])
assert (acc_sin > 0.95).all()

# %% [markdown]
# ## Rotary positions
#
# RoPE (Su et al., 2021) adds nothing to the tokens. Inside attention it rotates every query and
# every key by an angle proportional to its position $p$: in the `rotate_half` convention of
# GPT-NeoX and Hugging Face, which we use, the pair of coordinates $(i, i + \mathrm{hs}/2)$ turns by
# $p\,\theta_i$,
#
# $$
# \begin{pmatrix} x'_i \\ x'_j \end{pmatrix}
# = \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
# \begin{pmatrix} x_i \\ x_j \end{pmatrix},
# $$
#
# where $j = i + \mathrm{hs}/2$, $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ for $i = 0, \dots, \mathrm{hs}/2 - 1$ and
# $\mathrm{base} = 10000$ by default. The picture shows one pair of a query: the same vector at
# positions 0…7.

# %%
rope = simple_llm.RotaryEmbedding(head_size=2, base=4.0)  # one pair, θ = 1: one radian per position
q = torch.tensor([[1.0, 0.0]]).expand(8, 2)  # (T, hs): the same query at positions 0..7
rotated = rope(q)  # (T, hs)
print("angle at positions 0..7:", [round(math.atan2(b, a), 2) for a, b in rotated.tolist()])
fig, ax = plt.subplots(figsize=(3.5, 3.5), layout="constrained")
for t, (a, b) in enumerate(rotated.tolist()):
    ax.annotate("", xy=(a, b), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": plt.cm.viridis(t / 7)})
    ax.text(1.12 * a, 1.12 * b, str(t), ha="center", va="center")
ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", title="Query at positions 0…7")
plt.close(fig)
fig

# %% [markdown]
# ## Scores depend only on the distance
#
# Write $R(\alpha)$ for the rotation of every pair by its angle. The transpose of a rotation is the
# rotation back, so the score of a query at position $p$ and a key at position $s$ is
#
# $$
# \begin{aligned}
# \big(R(p\theta)\,q\big)^\top R(s\theta)\,k &= q^\top R(p\theta)^\top R(s\theta)\,k \\
# &= q^\top R\big((s - p)\,\theta\big)\,k
# \end{aligned}
# $$
#
# and depends on $p - s$ only. Check: the same pair of vectors, the key at positions 0, 10 and 100,
# the query 0…3 steps after it.

# %%
rope = simple_llm.RotaryEmbedding(head_size=8)
q, k = torch.randn(2, 1, 8)  # (T, hs) each: one query, one key


def score(p, s):
    return (rope(q, start=p) @ rope(k, start=s).T).item()


for offset in range(4):
    row = [score(s + offset, s) for s in (0, 10, 100)]  # the key at 0, 10, 100
    print(f"offset {offset}:", [round(v, 4) for v in row])
    assert max(row) - min(row) < 1e-12

# %% [markdown]
# ## The other convention
#
# The RoFormer and Meta code pairs neighbouring coordinates $(2i, 2i+1)$ and writes the rotation
# as a product of complex numbers. It is the same rotation applied to other coordinates: reorder
# the query and key rows of each head as [0, 2, 4, …, 1, 3, 5, …], and the attention is equal.


# %%
def rope_interleaved(x):
    hs = x.size(-1)
    theta = 10000.0 ** (-torch.arange(0, hs, 2) / hs)  # (hs/2,)
    angles = torch.arange(x.size(-2))[:, None] * theta  # (T, hs/2)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], hs // 2, 2))  # (..., T, hs/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2)  # (..., T, hs)


qs, ks = torch.randn(2, 5, 8)  # (T, hs) each
order = torch.cat([torch.arange(0, 8, 2), torch.arange(1, 8, 2)])  # [0, 2, 4, 6, 1, 3, 5, 7]
meta = rope_interleaved(qs) @ rope_interleaved(ks).T  # (T, T)
ours = rope(qs[:, order]) @ rope(ks[:, order]).T  # (T, T)
torch.testing.assert_close(ours, meta)
print("interleaved == rotate_half after reordering (to 1e-12):", (ours - meta).abs().max().item() < 1e-12)

# %% [markdown]
# ## The score fades with the distance
#
# Su et al. point out a second property: the farther apart a query and a key stand, the smaller
# their score tends to be, even when they carry the same vector. Take $q = k$, all ones, in a head
# of Llama's size ($\mathrm{hs} = 128$, $\mathrm{base} = 10000$): each pair contributes
# $2\cos\big((p - s)\,\theta_i\big)$, and the fast pairs stop agreeing first. A random $q = k$ gives the
# same curve on average.

# %%
rope128 = simple_llm.RotaryEmbedding(head_size=128)  # Llama-7B's head size and base
u = rope128(torch.ones(4097, 128))  # (T, hs): the same vector at positions 0..4096
decay = (u @ u[0]) / 128  # (T,): score of position d against position 0, divided by hs
print(
    "score / hs at distance 0, 10, 100, 1000, 4000:",
    [round(decay[d].item(), 2) for d in (0, 10, 100, 1000, 4000)],
)
bands = [decay[a:b].abs().mean().item() for a, b in ((1, 10), (10, 100), (100, 1000), (1000, 4097))]
print("mean |score| / hs at distances 1–9, 10–99, 100–999, 1000–4096:", [round(b, 2) for b in bands])
assert bands == sorted(bands, reverse=True)
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(range(1, 4097), decay[1:].numpy(), linewidth=1)
ax.axhline(0, color="grey", linewidth=0.8)
ax.set(
    xscale="log",
    xlabel="distance p − s",
    ylabel="score / hs",
    title="RoPE: a vector scored against itself",
)
plt.close(fig)
fig

# %% [markdown]
# ## The task with rotary positions
#
# Rotary positions enter only through the scores, and that is enough here. How do the heads use
# them? For each head we measure its mean weight on the two keys the task asks for, $t - 1$ and
# $t - 3$, and compare with the model with learned positions.


# %%
def weight_on_targets(model, x):
    h = model.tok(x)  # (B, T, C)
    if model.positions == "learned":
        h = h + model.pos(x.size(1))  # (B, T, C)
    with torch.no_grad():
        w = model.attn.get_attention_weights(h)  # (B, H, T, T)
    t = torch.arange(K, x.size(1))
    return torch.stack([w[:, :, t, t - k].mean(dim=(0, 2)) for k in OFFSETS], dim=-1)  # (H, 2)


model_rope, acc_rope = train("rope")
print("rotary positions, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_rope.tolist()])
assert (acc_rope > 0.95).all()
for name, model in (("learned", model_learned), ("rotary", model_rope)):
    on = weight_on_targets(model, x_test)  # (H, 2)
    print(
        f"{name}: weight of heads 0, 1 on keys (t − 1, t − 3):",
        [[round(v, 2) for v in row] for row in on.tolist()],
    )
sharp = weight_on_targets(model_learned, x_test)  # (H, 2)
spread = weight_on_targets(model_rope, x_test)  # (H, 2)
assert (sharp.max(dim=1).values > 0.95).all() and (spread.max() < 0.5).item()

# %% [markdown]
# With learned positions each head finds its key: one puts almost all its weight on $t - 1$, the
# other on $t - 3$. With rotary positions neither does: each head leans towards one of the two keys
# but spreads its weight over several, and the linear head still reads both tokens out of the two
# mixtures: accuracy 1 does not need a head that looks at exactly one key.

# %% [markdown]
# ## Summary
#
# Without positions, one attention layer sees the past as a bag of tokens and fails the task;
# learned, sinusoidal and rotary positions all fix it. Rotary positions make the scores depend on
# the distance only, and a score tends to fade as the distance grows. Next: [generation and the KV
# cache](../../chapters/10-generation/).

# %% [markdown]
# ## Exercise
#
# Write `rope(x, start=0)`: rotary positions in the rotate_half convention with base 10000,
# x `(..., T, hs)`, row t at position `start + t`, coordinate i paired with `i + hs/2`. The
# grader tells neighbouring pairs and a forgotten `start`.
#
# The solution is folded at the end of [the chapter](../../chapters/09-positions/#exercise): write yours first.


# %%
def rope(x, start=0):
    # your code here
    raise NotImplementedError


# %%
from simple_llm.practice import check_rope

# on the stub: 'not written yet'
print(check_rope(rope, lang="en"))
