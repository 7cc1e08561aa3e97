# %% [markdown]
# # Long context: notebook
#
# The notebook of the chapter ["Long context"](../../chapters/14-long-context/). We draw the band
# mask of a sliding window and the rolling cache with attention sinks, ALiBi's biases per head and
# RoPE's frequencies before and after scaling, then train the same small model with each way of
# giving positions at one length $L$ and measure it at $L$, $2L$ and $4L$.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# number of heads (`num_heads`), **hs** head size (`head_size`), **V** vocabulary size; **W** the
# window, **S** the number of sinks.

# %%
# In Colab simple_llm is not installed yet: install it from the project's repository (does nothing locally).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("simple_llm") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/simple-llm/simple-llm"],
        check=True,
    )

# %% [markdown]
# ## The band mask and the rolling cache
#
# With a window $W$ query $t$ sees the keys $s$ with $t - W < s \le t$: $W$ keys, itself
# included. With $S$ attention sinks it also sees the first $S$ positions. Row $t$ of the mask is
# what a rolling cache must hold when token $t$ is generated: `RollingKVCache` keeps exactly those
# positions, whatever the number of tokens generated.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # float64 and one thread: the same numbers on any machine
torch.set_num_threads(1)
T_demo, W_demo, S_demo = 12, 4, 2
band = simple_llm.sliding_window_mask(T_demo, W_demo)  # (T, T), True = may attend
sinks = simple_llm.sliding_window_mask(T_demo, W_demo, sink_tokens=S_demo)  # (T, T)
cache = simple_llm.RollingKVCache(W_demo, S_demo)
same = []
for t in range(T_demo):  # one token at a time, as in generation
    held = cache.positions().tolist()  # what the cache holds before token t
    cache.append(torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))  # (B, H, 1, hs): token t
    same.append(held + [t] == sinks[t].nonzero().flatten().tolist())
print("keys per query, window:", band.sum(-1).tolist())
print("keys per query, window + sinks:", sinks.sum(-1).tolist())
print("the cache holds row t of the mask at every step:", all(same))
print(
    "cache after the last token:",
    cache.positions().tolist(),
    "| S + W - 1 positions:",
    len(cache) == S_demo + W_demo - 1,
)

# %% [markdown]
# The two masks side by side: blue is a key the query may read.

# %%
fig, axes = plt.subplots(1, 2, figsize=(5.0, 2.9), layout="constrained")
for ax, mask, title in [
    (axes[0], band, f"window W = {W_demo}"),
    (axes[1], sinks, f"W = {W_demo}, S = {S_demo}"),
]:
    ax.imshow(mask.numpy(), cmap="Blues", vmin=0, vmax=1.4)
    ax.set(
        title=title, xlabel="key s", ylabel="query t", xticks=range(0, T_demo, 3), yticks=range(0, T_demo, 3)
    )
plt.close(fig)
fig

# %% [markdown]
# ## ALiBi's biases per head
#
# ALiBi adds no vector to the tokens: head $h$ adds $-m_h\,(t - s)$ to the score of query $t$ and
# key $s$. The slopes form a geometric sequence, $m_h = 2^{-8h/H}$ for $h = 1, \dots, H$, so one
# head looks only at its neighbours and another almost everywhere.

# %%
slopes = simple_llm.alibi_slopes(4)  # (H,)
print("slopes, H = 2:", simple_llm.alibi_slopes(2).tolist(), "| H = 4:", slopes.tolist())
print("H = 8:", [round(m, 4) for m in simple_llm.alibi_slopes(8).tolist()])
t = torch.arange(T_demo)
bias = -slopes.double()[:, None, None] * (t[:, None] - t[None, :])  # (H, T, T)
bias = bias.masked_fill(t[None, :] > t[:, None], float("nan"))  # (H, T, T): the future is masked
fig, axes = plt.subplots(2, 2, figsize=(5.2, 5.0), layout="constrained")
for h, ax in enumerate(axes.flat):
    image = ax.imshow(bias[h].numpy(), cmap="viridis", vmin=-3, vmax=0)
    ax.set(title=f"head {h + 1}: m = 1/{round(1 / slopes[h].item())}", xticks=[], yticks=[])
fig.colorbar(image, ax=axes, shrink=0.7, label="bias")
plt.close(fig)
fig

# %% [markdown]
# ## RoPE's frequencies before and after scaling
#
# Pair $i$ of a head turns by $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ per position, a full turn
# every $2\pi/\theta_i$ positions. Over a training length $L$ the slow pairs never finish a turn:
# past $L$ they reach angles the model has never seen. Position interpolation (Chen et al., 2023)
# divides every frequency by the factor $s$, $\theta_i / s$, so that position $sL$ gets the angles
# of position $L$. YaRN (Peng et al., 2023) interpolates only the slow pairs:
#
# $$\theta_i' = (1 - \gamma_i)\,\theta_i + \gamma_i\,\frac{\theta_i}{s}, \qquad \gamma_i = \operatorname{clamp}\!\left(\frac{i - i_\beta}{i_\alpha - i_\beta}, 0, 1\right),$$
#
# where pair $i_\beta$ makes $\beta = 32$ turns over $L$ positions and pair $i_\alpha$ makes
# $\alpha = 1$ turn (rounded down and up to whole pairs); it also multiplies the scores by
# $(0.1 \ln s + 1)^2$. The
# picture uses Llama's head size, $\mathrm{hs} = 128$, $L = 4096$ and $s = 4$.

# %%
hs_big, L_big, s = 128, 4096, 4.0
kinds = {
    "RoPE": simple_llm.RotaryEmbedding(hs_big),
    "linear (PI)": simple_llm.RotaryEmbedding(hs_big, scaling={"rope_type": "linear", "factor": s}),
    "YaRN": simple_llm.RotaryEmbedding(
        hs_big, scaling={"rope_type": "yarn", "factor": s, "original_max_position_embeddings": L_big}
    ),
}
wavelengths = {name: 2 * math.pi / rope.inv_freq() for name, rope in kinds.items()}  # (hs/2,) each
turns = L_big / wavelengths["RoPE"]  # (hs/2,): turns over L positions
print("pairs with fewer than one turn over L:", int((turns < 1).sum()), "of", hs_big // 2)
yarn_kept = torch.isclose(wavelengths["YaRN"], wavelengths["RoPE"])  # (hs/2,)
yarn_divided = torch.isclose(wavelengths["YaRN"], wavelengths["linear (PI)"])  # (hs/2,)
print(
    "YaRN keeps",
    int(yarn_kept.sum()),
    "pairs, divides",
    int(yarn_divided.sum()),
    "by s, ramps",
    int((~yarn_kept & ~yarn_divided).sum()),
)
print("YaRN's score factor:", round(kinds["YaRN"].attention_factor ** 2, 3))

# %%
fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
for name, style in zip(wavelengths, ["-", "--", ":"]):
    ax.plot(wavelengths[name].numpy(), style, linewidth=2, label=name)
ax.axhline(L_big, color="grey", linewidth=1)
ax.annotate("L = 4096", (1, L_big * 1.4), color="grey")
ax.set(yscale="log", xlabel="pair i", ylabel="positions per turn", title=f"hs = {hs_big}, s = {s:g}")
ax.legend()
plt.close(fig)
fig

# %% [markdown]
# ## The task and the model
#
# Sequences of random tokens out of $V = 64$ that repeat with a period $n$; from the second period on
# every token is predictable, provided the model finds where it stood $n$ steps back and copies its
# successor. Training: length $L = 16$, periods from 2 to $L/2$. Two tests at lengths $L$, $2L$ and
# $4L$: **copy**, a random half followed by its copy, so the period grows with the length and the
# model must read $kL/2$ steps back; and **period**, the period fixed at $L/2$, where nothing farther
# is needed but the positions go beyond $L$. The score is the accuracy of the argmax on the
# predictable tokens, guessing gives $1/64$.

# %%
V, L, C, H, hs = 64, 16, 32, 2, 16
STEPS, BATCH = 300, 32


def periodic(n_seq, T, generator, low=2, high=L // 2):
    x = torch.randint(0, V, (n_seq, T), generator=generator)  # (B, T)
    period = torch.randint(low, high + 1, (n_seq, 1), generator=generator)  # (B, 1)
    return x.gather(1, torch.arange(T) % period)  # (B, T): x[t] = x[t mod period]


def copy_test(k):
    half = torch.randint(0, V, (64, k * L // 2), generator=torch.Generator().manual_seed(k))  # (B, T/2)
    return torch.cat([half, half], dim=1)  # (B, T)


tests = {("copy", k): (copy_test(k), k * L // 2) for k in (1, 2, 4)}  # (B, T), where the repeat starts
for k in (1, 2, 4):
    tests["period", k] = (periodic(64, k * L, torch.Generator().manual_seed(10 + k), L // 2, L // 2), L // 2)
print("training sequence:", periodic(1, L, torch.Generator().manual_seed(0))[0].tolist())
print("copy test, 2L:", tests["copy", 2][0].shape, "| period test, 4L:", tests["period", 4][0].shape)

# %% [markdown]
# The model is the book's `GPT` (2 blocks, $C = 32$, $H = 2$, $\mathrm{hs} = 16$), built with
# `max_seq_len` $= 4L$ so that it accepts the long tests. With learned positions the rows past $L$
# of its table are never trained: they keep their random initial values. Training: 300 steps of
# Adam on batches of 32 sequences, the same seed and data for every model.


# %%
def build(positions, **options):
    _ = torch.manual_seed(0)
    return simple_llm.GPT(V, 4 * L, C, H, hs, num_layers=2, dropout=0.0, positions=positions, **options)


def train(model):
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        x = periodic(BATCH, L, generator)  # (B, T)
        loss = F.cross_entropy(model(x)[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))  # (B·(T − 1), V)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def accuracy(model, test):
    x, start = tests[test]  # (B, T)
    with torch.no_grad():
        guess = model(x)[:, start:-1].argmax(-1)  # (B, T − start − 1)
    return round((guess == x[:, start + 1 :]).double().mean().item(), 2)


# %% [markdown]
# ## Training each kind of positions
#
# Five models are trained: learned, sinusoidal, rotary, ALiBi and no positions at all (NoPE).

# %%
trained = {name: train(build(name)) for name in ["learned", "sinusoidal", "rope", "alibi", "none"]}
for name, model in trained.items():
    print(f"{name:10} copy at L: {accuracy(model, ('copy', 1))}")

# %% [markdown]
# ## Scaling and windows on the trained RoPE model
#
# The other four rows need no training: they run the RoPE model's weights in another `GPT`.
# Position interpolation and YaRN get the factor $s = k$ at length $kL$ (at $L$ they are plain
# RoPE); the window $W = L/2$, with or without 2 sinks, is applied at inference to the model
# trained with full attention, as StreamingLLM does. A sink is scored as StreamingLLM scores it,
# as if the query stood at $\min(t, S + W - 1)$: the distance to a sink never exceeds the
# cache's size, however long the text.


# %%
def with_rope_weights(**options):
    model = build("rope", **options)
    model.load_state_dict(trained["rope"].state_dict())
    return model.eval()


def scaled(rope_type, k):
    scaling = {"rope_type": rope_type, "factor": float(k)}
    if rope_type == "yarn":
        scaling["original_max_position_embeddings"] = L
    return with_rope_weights(rope_scaling=scaling)


runs = {name: dict.fromkeys((1, 2, 4), model) for name, model in trained.items()}
runs["rope + linear"] = {k: scaled("linear", k) for k in (1, 2, 4)}
runs["rope + yarn"] = {k: scaled("yarn", k) for k in (1, 2, 4)}
runs["window"] = dict.fromkeys((1, 2, 4), with_rope_weights(window=L // 2))
runs["window + sinks"] = dict.fromkeys((1, 2, 4), with_rope_weights(window=L // 2, sink_tokens=2))
print("models:", list(runs))

# %% [markdown]
# ## The measurement
#
# Accuracy on the predictable tokens, per test and length.

# %%
table = {
    name: {(test, k): accuracy(by_k[k], (test, k)) for test in ("copy", "period") for k in (1, 2, 4)}
    for name, by_k in runs.items()
}
print(f"{'positions':15} {'copy L':>6} {'2L':>5} {'4L':>5} | {'period L':>8} {'2L':>5} {'4L':>5}")
for name, row in table.items():
    copy, period = [row["copy", k] for k in (1, 2, 4)], [row["period", k] for k in (1, 2, 4)]
    print(
        f"{name:15} {copy[0]:6.2f} {copy[1]:5.2f} {copy[2]:5.2f} | {period[0]:8.2f} {period[1]:5.2f} {period[2]:5.2f}"
    )

# %% [markdown]
# The same numbers as lines: each model at $L$, $2L$ and $4L$.

# %%
fig, axes = plt.subplots(2, 1, figsize=(5.2, 7.2), layout="constrained", sharex=True)
styles = ["-", "--", ":", "-."]
for i, (name, row) in enumerate(table.items()):
    for ax, test in zip(axes, ("copy", "period")):
        ax.plot([1, 2, 4], [row[test, k] for k in (1, 2, 4)], styles[i % 4], marker="os^D"[i % 4], label=name)
for ax, title in zip(axes, ("copy: read kL/2 steps back", "period L/2: positions past L")):
    ax.set(title=title, ylabel="accuracy", ylim=(-0.03, 1.03), xticks=[1, 2, 4])
    ax.axhline(1 / V, color="grey", linewidth=0.8)
axes[1].set(xticklabels=["L", "2L", "4L"], xlabel="length of the test")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
plt.close(fig)
fig

# %% [markdown]
# ## Why sinks change nothing here
#
# A sink helps a model that puts much of its attention on the first token. How much does our RoPE
# model put there? The weight of token 0 for the queries that a window of $L/2$ cuts off from it,
# averaged over the period test at $L$, per layer and head, against an even share over the keys
# $0, \dots, t$.

# %%
rope_model = trained["rope"]
inputs = []  # what each block's attention receives
hooks = [
    b.attention.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for b in rope_model.decoders
]
with torch.no_grad():
    rope_model(tests["period", 1][0])  # (B, T, V)
    weights = [
        b.attention.get_attention_weights(h) for b, h in zip(rope_model.decoders, inputs)
    ]  # (B, H, T, T) each
for hook in hooks:
    hook.remove()
late = torch.arange(L // 2, L)  # queries that a window of L/2 cuts off from token 0
for layer, w in enumerate(weights):
    print(
        f"layer {layer + 1}, weight of token 0 per head:",
        [round(v, 3) for v in w[:, :, late, 0].mean(dim=(0, 2)).tolist()],
    )
print("an even share:", round((1 / (late + 1.0)).mean().item(), 3))
