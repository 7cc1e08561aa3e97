# %% [markdown]
# # Induction heads: the notebook
#
# The notebook of the chapter ["Induction heads"](../../chapters/13-induction-heads/). We train
# a two-layer transformer made only of attention on random sequences that repeat themselves,
# watch the loss on the repeat fall suddenly, and check with numbers which heads did it: a
# previous-token head in layer 1 and an induction head in layer 2. A one-layer model trained the
# same way is the control.
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
# ## The data: a random segment and its repeat
#
# Tokens are drawn uniformly from $V = 64$. A test sequence is $L = 10$ random tokens followed by the
# same 10 tokens again ($T = 20$). In the first half the next token cannot be guessed: the best
# loss is $\log V \approx 4.16$. In the second half it can, for a model that finds the earlier copy.
#
# A training sequence is 20 random tokens in which a segment of 4 to 10 tokens (the length is
# drawn for each sequence) is written twice in a row, starting at a random place. The copy is
# never at the same distance nor at the same positions, so "look 9 tokens back" does not solve
# the task: the model has to find the earlier copy by its content.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # float64 and one thread: the same numbers on any machine
torch.set_num_threads(1)
V, L, C, H, hs = 64, 10, 32, 2, 16
T = 2 * L


def repeated(n, generator):
    half = torch.randint(0, V, (n, L), generator=generator)  # (B, L)
    return torch.cat([half, half], dim=1)  # (B, T): the second half repeats the first


def training_batch(n, generator):
    x = torch.randint(0, V, (n, T), generator=generator)  # (B, T)
    seg = torch.randint(4, L + 1, (n, 1), generator=generator)  # (B, 1): segment length
    start = (torch.rand(n, 1, generator=generator) * (T - 2 * seg + 1)).long()  # (B, 1): where it begins
    t = torch.arange(T)  # (T,)
    copy = x.gather(1, (t - seg).clamp(min=0))  # (B, T): the token seg steps back
    second = (t >= start + seg) & (t < start + 2 * seg)  # (B, T): where the segment is written again
    return torch.where(second, copy, x)  # (B, T)


x_test = repeated(256, torch.Generator().manual_seed(1))  # (B, T)
print("test sequence:    ", x_test[0].tolist())
print("training sequence:", training_batch(1, torch.Generator().manual_seed(2))[0].tolist())
print("log V =", round(math.log(V), 2))

# %% [markdown]
# ## The model: attention and nothing else
#
# A token embedding plus a learned position embedding, then `n_layers` layers of
# `MultiHeadAttention` ($H = 2$ heads each) with residual connections, then a linear map to the V
# logits. There is no feed-forward network and no normalization: everything a position learns
# about the others comes through attention. `forward` also returns every layer's weights, and
# `off=(layer, head)` switches one head off with a `(B, H, T, T)` mask.


# %%
class AttentionOnly(nn.Module):
    def __init__(self, n_layers):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # token -> (C,)
        self.pos = nn.Embedding(T, C)  # position -> (C,)
        self.layers = nn.ModuleList(
            simple_llm.MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0)
            for _ in range(n_layers)
        )
        self.out = nn.Linear(C, V)

    def forward(self, x, off=None):
        h = self.tok(x) + self.pos(torch.arange(x.size(1)))  # (B, T, C)
        weights = []
        for number, layer in enumerate(self.layers):
            mask = None
            if off is not None and off[0] == number:
                mask = torch.ones(x.size(0), H, x.size(1), x.size(1), dtype=torch.bool)  # (B, H, T, T)
                mask[:, off[1]] = False  # this head sees no key: its output is zeros
            y, w = layer(h, mask=mask, return_weights=True)  # (B, T, C), (B, H, T, T)
            h = h + y  # residual connection
            weights.append(w)
        return self.out(h), weights  # (B, T, V), n_layers x (B, H, T, T)


_ = torch.manual_seed(0)
model = AttentionOnly(n_layers=2)
logits, weights = model(x_test[:1])
print("parameters:", sum(p.numel() for p in model.parameters()))
print(tuple(logits.shape), [tuple(w.shape) for w in weights])  # (B, T, V), (B, H, T, T) per layer

# %% [markdown]
# ## Three numbers
#
# - **Loss per half.** Position $t$ predicts token $t + 1$. The first half is the loss on tokens
#   1 to 9, the repeat the loss on tokens 11 to 19 (token 10, where the repeat starts, cannot be
#   foreseen and is left out).
# - **Prefix-matching score** of a head: in the second half, query $t$ holds token $x_t$, whose
#   earlier copy sits at $t - L$; the score is the weight on the key right after that copy,
#   $t - L + 1$, averaged over the queries. The induction stripe lies $L - 1 = 9$ cells below the
#   diagonal.
# - **Previous-token score**: the weight on key $t - 1$, averaged over $t = 1, \dots, 19$.


# %%
def half_losses(model, x, off=None):
    with torch.no_grad():
        logits, _ = model(x, off)  # (B, T, V)
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")  # (B, T − 1)
    return loss[:, : L - 1].mean().item(), loss[:, L:].mean().item()  # first half, repeat


def head_scores(model, x):
    with torch.no_grad():
        _, weights = model(x)  # n_layers x (B, H, T, T)
    q, p = torch.arange(L, T), torch.arange(1, T)  # queries of the repeat; queries with a previous token
    prefix = [w[:, :, q, q - L + 1].mean(dim=(0, 2)) for w in weights]  # n_layers x (H,)
    previous = [w[:, :, p, p - 1].mean(dim=(0, 2)) for w in weights]  # n_layers x (H,)
    return torch.stack(prefix), torch.stack(previous)  # (n_layers, H) each


def rounded(t):
    return [[round(v, 2) for v in row] for row in t.tolist()]


prefix, previous = head_scores(model, x_test)
print("loss (first half, repeat):", [round(v, 2) for v in half_losses(model, x_test)])
print("prefix matching, layer x head:", rounded(prefix))
print("previous token, layer x head: ", rounded(previous))

# %% [markdown]
# ## Training: the phase change
#
# Adam, 800 steps of 64 fresh training sequences, the loss over all positions. Every 100 steps
# we measure the three numbers on the test sequences. Watch the column "repeat": for the first
# 300 steps it goes down the way the one-layer control's does (the model learns that the next
# token is one of those already seen), then within 200 steps it falls by two thirds, at the same
# steps as the prefix-matching scores of layer 2 and the previous-token score of one layer-1
# head jump.


# %%
def train(model, steps=800, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []  # (step, first half, repeat, prefix (n_layers, H), previous (n_layers, H))
    for step in range(steps + 1):
        if step % 100 == 0:
            history.append((step, *half_losses(model, x_test), *head_scores(model, x_test)))
        if step == steps:
            break
        x = training_batch(64, generator)  # (B, T)
        logits, _ = model(x)  # (B, T, V)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))  # (B·(T − 1), V)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return history


history = train(model)
print("step | loss: first half, repeat | prefix matching, layer 2 | previous token, layer 1")
for step, first, repeat, prefix, previous in history:
    print(f"{step:4} | {first:.2f} {repeat:.2f} | {rounded(prefix)[-1]} | {rounded(previous)[0]}")

# %% [markdown]
# The same history as a picture: the loss of each half (the dashed line is $\log V$) and the
# prefix-matching score of the two layer-2 heads.

# %%
steps = [row[0] for row in history]
# the two plots stacked: readable on a phone
fig, (left, right) = plt.subplots(2, 1, figsize=(5.6, 5.2), layout="constrained")
left.plot(steps, [row[1] for row in history], label="first half")
left.plot(steps, [row[2] for row in history], label="repeat")
left.axhline(math.log(V), color="grey", linestyle="--", linewidth=1)
left.set(xlabel="training step", ylabel="loss", title="Loss per half")
left.legend()
for h in range(H):
    right.plot(steps, [row[3][-1, h].item() for row in history], label=f"layer 2, head {h}")
right.set(xlabel="training step", ylabel="score", ylim=(0, 1), title="Prefix matching")
right.legend()
plt.close(fig)
fig

# %% [markdown]
# ## Checking the phase change with numbers
#
# Find the induction head (the layer-2 head with the highest final prefix-matching score) and
# the previous-token head (the layer-1 head with the highest previous-token score), then assert
# what the table shows: the loss on the repeat starts near $\log V$ and ends far below it; the drop
# is sudden (most of it within 300 steps); the first half stays near $\log V$; the induction head's
# score rises from near 0 past 0.5, and so do the other layer-2 head's and the previous-token head's;
# and the induction head and the previous-token head pass 0.5 inside the window of the largest drop.

# %%
first = torch.tensor([row[1] for row in history])  # (checkpoints,)
repeat = torch.tensor([row[2] for row in history])  # (checkpoints,)
induction = int(history[-1][3][1].argmax())  # layer 2 head
prev_head = int(history[-1][4][0].argmax())  # layer 1 head
score = torch.tensor([row[3][1, induction].item() for row in history])  # (checkpoints,)
fall = repeat[:-3] - repeat[3:]  # (checkpoints − 3,): drop over 300 steps
print("induction head: layer 2, head", induction, "| previous-token head: layer 1, head", prev_head)
print("repeat loss: start", round(repeat[0].item(), 2), "end", round(repeat[-1].item(), 2))
print(
    "largest drop in 300 steps:", round(fall.max().item(), 2), "ending at step", steps[int(fall.argmax()) + 3]
)
print("share of the whole drop:", round((fall.max() / (repeat[0] - repeat[-1])).item(), 2))
assert repeat[0] > math.log(V) - 0.5 and repeat[-1] < 1.5
assert fall.max() > 0.6 * (repeat[0] - repeat[-1])  # a sudden drop, not a steady slope
assert (first - math.log(V)).abs().max() < 0.5  # the first half stays unpredictable
assert score[0] < 0.1 and score[-1] > 0.5
previous_score = torch.tensor([row[4][0, prev_head].item() for row in history])  # (checkpoints,)
window = (steps[int(fall.argmax())], steps[int(fall.argmax()) + 3])  # the 300 steps of the largest drop
passed = {
    name: steps[int((s > 0.5).nonzero()[0])]
    for name, s in (("induction", score), ("previous", previous_score))
}
print("window of the largest drop:", window, "| first checkpoint past 0.5:", passed)
print("both layer-2 heads past 0.5 at the end:", bool((history[-1][3][1] > 0.5).all()))
assert all(window[0] < step <= window[1] for step in passed.values())  # at the same steps as the drop
assert (history[-1][3][1] > 0.5).all() and previous_score[0] < 0.2 and previous_score[-1] > 0.5

# %% [markdown]
# ## The heads on a repeated sequence
#
# The attention maps of both layers on one test sequence. In layer 1 the previous-token head
# holds the line right below the diagonal. In layer 2 the induction head draws a stripe
# $L - 1 = 9$ cells below the diagonal, but only in the second half: query $t$ looks at position
# $t - 9$, the token after the earlier copy of $x_t$.

# %%
sample = x_test[:1]  # (1, T)
labels = [str(tok) for tok in sample[0].tolist()]
with torch.no_grad():
    _, weights = model(sample)  # 2 x (1, H, T, T)
q, p = torch.arange(L, T), torch.arange(1, T)  # queries of the repeat; queries with a previous token
print(
    "layer 1, weight on t − 1 per head:", [round(v, 2) for v in weights[0][0, :, p, p - 1].mean(-1).tolist()]
)
print(
    "layer 2, weight on t − 9 per head:",
    [round(v, 2) for v in weights[1][0, :, q, q - L + 1].mean(-1).tolist()],
)
simple_llm.plot_attention_heads(weights[0], tokens=labels, lang="en", title="Layer 1")

# %%
simple_llm.plot_attention_heads(weights[1], tokens=labels, lang="en", title="Layer 2")

# %% [markdown]
# ## The same heads, interactive
#
# Choose a token in the second half (by click, tap, or Tab and Enter; the arrow keys move along
# the tokens) and see where each head looks. In layer 2 the induction head points at the token
# after the earlier copy of the chosen one; switch to layer 1 to see the previous-token head
# pointing one step back. The last token is chosen at first.

# %%
simple_llm.attention_view(weights, labels, lang="en")

# %% [markdown]
# ## Switching heads off
#
# The maps show where heads look; switching a head off shows what the model needs. We remove one
# head at a time (its output becomes zeros) and measure the loss on the repeat again. Both heads
# of layer 2 have become induction heads here, so without one of them the other still helps;
# without the previous-token head neither can work.

# %%
ablation = {}
for layer in range(2):
    for h in range(H):
        ablation[layer, h] = half_losses(model, x_test, off=(layer, h))[1]
        print(f"without layer {layer + 1}, head {h}: loss on the repeat {ablation[layer, h]:.2f}")
print("all heads:", round(repeat[-1].item(), 2))
print(
    "loss without a layer-2 head over the full model's:",
    [round(ablation[1, h] / repeat[-1].item(), 1) for h in range(H)],
)
assert ablation[1, induction] > 2 * repeat[-1]  # without the induction head the loss at least doubles
assert ablation[0, prev_head] > math.log(V) - 0.5  # without the previous-token head it is back near log V

# %% [markdown]
# The same losses as bars, one per head switched off. The dashed line is $\log V$ (nothing
# learned), the dotted one $\log L$ (the best a model without induction heads can do).

# %%
names = ["none (full model)"] + [f"layer {layer + 1}, head {h}" for layer in range(2) for h in range(H)]
losses = [repeat[-1].item()] + [ablation[layer, h] for layer in range(2) for h in range(H)]
fig, ax = plt.subplots(figsize=(4.8, 3.2), layout="constrained")
ax.barh(names, losses, color=["C2"] + ["C0"] * (len(names) - 1))
ax.axvline(math.log(V), color="grey", linestyle="--", linewidth=1)
ax.axvline(math.log(L), color="grey", linestyle=":", linewidth=1)
ax.text(math.log(L) + 0.05, 0.03, "log L", transform=ax.get_xaxis_transform())
ax.text(math.log(V) - 0.05, 0.03, "log V", ha="right", transform=ax.get_xaxis_transform())
ax.invert_yaxis()
ax.set(xlabel="loss on the repeat", title="Switching one head off")
plt.close(fig)
fig

# %% [markdown]
# ## The control: one layer
#
# The same model with one attention layer, trained in exactly the same way (same seeds, same
# steps). A single layer can find the earlier copy of $x_t$, but its keys know only their own
# token and position: nothing in key $t - L + 1$ says "the token before me equals $x_t$". That
# information needs a previous-token head in an earlier layer. What one layer can learn is "the
# next token is one of the tokens already seen": in the repeat that is one of $L = 10$ tokens, a
# loss of about $\log L \approx 2.3$ at best, and nowhere near the two-layer model.

# %%
_ = torch.manual_seed(0)
control = AttentionOnly(n_layers=1)
control_history = train(control)
for step, first_c, repeat_c, prefix_c, _ in control_history[::2]:
    print(f"{step:4} | {first_c:.2f} {repeat_c:.2f} | prefix matching {rounded(prefix_c)[0]}")
control_repeat = torch.tensor([row[2] for row in control_history])  # (checkpoints,)
control_score = torch.stack([row[3][0] for row in control_history])  # (checkpoints, H)
print(
    "repeat loss, lowest: one layer",
    round(control_repeat.min().item(), 2),
    "| two layers",
    round(repeat.min().item(), 2),
)
print("prefix matching, highest with one layer:", round(control_score.max().item(), 2))
print("log L =", round(math.log(L), 2))
assert control_repeat.min() > math.log(L) and control_score.max() < 0.5

# %% [markdown]
# Both models on one plot: the loss on the repeat, checkpoint by checkpoint. The one-layer model
# goes down slowly and stays above $\log L$; the two-layer model follows it for 300 steps and then
# drops.

# %%
fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
ax.plot(steps, repeat, "o-", label="two layers")
ax.plot(steps, control_repeat, "s-", label="one layer")
ax.axhline(math.log(V), color="grey", linestyle="--", linewidth=1)
ax.axhline(math.log(L), color="grey", linestyle=":", linewidth=1)
ax.text(steps[-1], math.log(V) - 0.1, "log V", ha="right", va="top")
ax.text(steps[-1], math.log(L) - 0.1, "log L", ha="right", va="top")
ax.set(xlabel="training step", ylabel="loss on the repeat", ylim=(0, 5), title="One layer against two")
ax.legend(loc="lower left")
plt.close(fig)
fig

# %% [markdown]
# ## Summary
#
# With two layers the loss on the repeat falls suddenly from near $\log V$ to far below it, at the
# same steps as a layer-2 head starts matching prefixes; a layer-1 head looks at the previous
# token. Switching off either of them sends the loss back up; one layer never gets there. The
# circuit, step by step, is in the [chapter](../../chapters/13-induction-heads/).
