# %% [markdown]
# # Seeing the heads: the notebook
#
# The notebook of the chapter ["Seeing the heads"](../../chapters/05-seeing-heads/). We plot the
# attention weights of every head of an untrained `MultiHeadAttention`, then train a tiny model
# on a task where different heads gain from looking at different places, and check with numbers
# what each head learned.
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
# ## The task: two offsets
#
# A sequence is $T = 12$ random tokens from a vocabulary of $V = 8$. At every position $t \ge 3$
# the model must name two tokens: $x_{t-1}$ and $x_{t-3}$. The content does not matter, only the
# positions do, so the solution is to look exactly 1 and 3 steps back. Positions 0…2 have no
# answer and are left out of the loss and of the accuracy.

# %%
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # a tiny model: float64 is cheap and stable
torch.set_num_threads(1)  # one thread is enough for a tiny model
V, T, C, H, hs = 8, 12, 32, 2, 16
OFFSETS = (1, 3)  # output 0: token t − 1, output 1: token t − 3
K = max(OFFSETS)  # the first position where both outputs have an answer
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (512, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 2): x[t − k]


print("tokens:       ", x_test[0].tolist())
print("answer t − 1: ", targets(x_test)[0, K:, 0].tolist(), "(from position 3)")
print("answer t − 3: ", targets(x_test)[0, K:, 1].tolist(), "(from position 3)")

# %% [markdown]
# ## The model
#
# A token embedding plus a learned position embedding, one `MultiHeadAttention` layer with a
# residual connection, and a linear head that gives two distributions over the vocabulary. There
# is no feed-forward network: everything the model knows about other tokens comes through
# attention.


# %%
class Tiny(nn.Module):
    def __init__(self, num_heads=H, positions=True):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # token -> (C,)
        self.pos = nn.Embedding(T, C) if positions else None  # position -> (C,)
        self.attn = simple_llm.MultiHeadAttention(
            num_heads=num_heads, emb_size=C, head_size=C // num_heads, max_seq_len=T, dropout=0.0
        )
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def embed(self, x):
        if self.pos is None:
            return self.tok(x)  # (B, T, C) without positions: the token only
        return self.tok(x) + self.pos(torch.arange(x.size(1)))  # (B, T, C)

    def forward(self, x, mask=None):
        h = self.embed(x)  # (B, T, C)
        h = h + self.attn(h, mask=mask)  # (B, T, C): residual connection
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 2, V)


_ = torch.manual_seed(0)
model = Tiny()
print("parameters:", sum(p.numel() for p in model.parameters()))
print(tuple(model(x_test).shape))  # (B, T, 2, V)

# %% [markdown]
# ## Two measures: accuracy and diagonals
#
# Accuracy is the share of right answers at positions $t \ge 3$, for each output separately. To
# describe a head with one number, we average its weight on the diagonal $t - k$: how much
# attention query $t$ gives to the token exactly $k$ steps back, over all test sequences and over
# the queries that have an answer and a key $k$ steps back, $t \ge \max(3, k)$. For $k = 4$ that
# is $t \ge 4$: query 3 has no key four steps back.


# %%
def accuracy(model, x, mask=None):
    with torch.no_grad():
        pred = model(x, mask=mask).argmax(dim=-1)  # (B, T, 2)
    return (pred[:, K:] == targets(x)[:, K:]).double().mean(dim=(0, 1))  # (2,)


def offset_table(model, x, offsets=range(5)):
    with torch.no_grad():
        w = model.attn.get_attention_weights(model.embed(x))  # (B, H, T, T)
    columns = []
    for k in offsets:
        t = torch.arange(max(K, k), T)  # queries with an answer whose key t − k exists
        columns.append(w[:, :, t, t - k].mean(dim=(0, 2)))  # (H,)
    return torch.stack(columns, dim=1)  # (H, 5)


def report(model):
    print("accuracy (t − 1, t − 3):", [round(a, 2) for a in accuracy(model, x_test).tolist()])
    for h, row in enumerate(offset_table(model, x_test).tolist()):
        print(f"head {h}, weight on t − 0…t − 4:", [round(p, 2) for p in row])


report(model)
t = torch.arange(K, T)  # queries with an answer: 3…11
uniform = [(1 / (torch.arange(max(K, k), T) + 1)).mean().item() for k in range(5)]  # weight 1 / (t + 1)
print("uniform over t + 1 keys would give, t − 0…t − 4:", [round(u, 2) for u in uniform])

# %% [markdown]
# ## The heads before training
#
# An untrained layer spreads its attention weights over all allowed keys: query $t$ gives each
# of its $t + 1$ keys a weight not far from $1/(t+1)$ (the table above: 0.1 to 0.19 where uniform
# weights would give 0.13 and 0.14). No diagonal stands out; in the picture it is a fade from the
# bright top left corner, where query 0 sees only itself, to the dim bottom row.

# %%
sample = x_test[:1]  # (1, T): one test sequence
labels = [f"{i}:{tok}" for i, tok in enumerate(sample[0].tolist())]  # "position:token"
with torch.no_grad():
    w_before = model.attn.get_attention_weights(model.embed(sample))  # (1, H, T, T)
print(tuple(w_before.shape))  # (B, H, T, T)
print("maximum of row 11 per head:", [round(m, 2) for m in w_before[0, :, -1].amax(dim=-1).tolist()])
fig = simple_llm.plot_attention_heads(w_before, tokens=labels, lang="en", title="Before training")
fig

# %% [markdown]
# ## Training
#
# A full batch of 512 sequences, Adam, 100 steps; the loss is the cross-entropy over both
# outputs at positions $t \ge 3$. Everything is deterministic: the data come from a seeded
# generator, the model was built after `torch.manual_seed(0)`.

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
y_train = targets(x_train)  # (B, T, 2)
for step in range(101):
    logits = model(x_train)  # (B, T, 2, V)
    loss = F.cross_entropy(logits[:, K:].reshape(-1, V), y_train[:, K:].reshape(-1))  # (B·(T−3)·2, V)
    if step % 20 == 0:
        print(f"step {step:3}: loss {loss.item():.3f}")
    if step < 100:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

# %% [markdown]
# ## The heads after training
#
# Now each head has its own diagonal. Head 0 holds the line $t - 3$: query "3:1" looks at key
# "0:0", query "4:4" at "1:1". Head 1 holds the line $t - 1$, just below the main diagonal. These
# are exactly the two answers of the task. Rows 0…2 have no answer, and there the heads look
# wherever they like.

# %%
with torch.no_grad():
    w_after = model.attn.get_attention_weights(model.embed(sample))  # (1, H, T, T)
print("weight on t − 1 per head:", [round(p, 2) for p in w_after[0, :, t, t - 1].mean(dim=-1).tolist()])
print("weight on t − 3 per head:", [round(p, 2) for p in w_after[0, :, t, t - 3].mean(dim=-1).tolist()])
fig = simple_llm.plot_attention_heads(w_after, tokens=labels, lang="en", title="After training")
fig

# %% [markdown]
# ## Checking with numbers
#
# The same table as before training. The asserts check that the accuracy is above 0.95 and that
# the two offsets are served by **different** heads, each with a weight above 0.8 on its
# diagonal.

# %%
report(model)
acc = accuracy(model, x_test)  # (2,)
table = offset_table(model, x_test)  # (H, 5)
owner = [int(table[:, k].argmax()) for k in OFFSETS]  # the head that serves offset k
assert (acc > 0.95).all()
assert all(table[h, k] > 0.8 for h, k in zip(owner, OFFSETS))
assert owner[0] != owner[1]
print("offset 1: head", owner[0], "| offset 3: head", owner[1])

# %% [markdown]
# ## Checking against a hand computation
#
# The map is not a picture "from the package" but the causal softmax of the scaled scores,
#
# $$w = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{\mathrm{hs}}} + M\right),$$
#
# where the mask $M$ holds $-\infty$ above the diagonal and 0 elsewhere. Compute it ourselves from
# `model.attn.qkv` and compare with `get_attention_weights`.

# %%
with torch.no_grad():
    e = model.embed(sample)  # (1, T, C)
    qkv = model.attn.qkv(e).view(1, T, 3, H, hs)  # (B, T, 3, H, hs)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    by_hand = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
torch.testing.assert_close(by_hand, w_after)
print("weights", tuple(by_hand.shape), "equal get_attention_weights:", torch.allclose(by_hand, w_after))

# %% [markdown]
# ## Switching a head off
#
# The last check is causal: if head $h$ serves offset $k$, then without it that output must drop
# to guessing (chance is $1/V$, that is 0.125) while the other stays accurate. A mask of shape
# (B, H, T, T) from the [masks chapter](../../chapters/04-masks/) switches a head off: all keys
# of head $h$ are masked, its rows are fully masked, and its output is zeros.

# %%
for h in range(H):
    off = torch.ones(len(x_test), H, T, T, dtype=torch.bool)  # (B, H, T, T)
    off[:, h] = False  # head h sees no key at all
    acc_off = accuracy(model, x_test, mask=off)  # (2,)
    print(f"without head {h}: accuracy (t − 1, t − 3) =", [round(a, 2) for a in acc_off.tolist()])
    assert acc_off[owner.index(h)] < 0.5  # this head's output is at guessing level

# %% [markdown]
# ## One head against two
#
# Why several heads at all? One softmax gives each query **one** weighted average of the values,
# and this task asks for two tokens at once, $x_{t-1}$ and $x_{t-3}$. We train the same model with
# one head of size 32 instead of two heads of size 16: $C = 32$ stays, and so does the number of
# parameters. Same data, same seed, same 100 steps.


# %%
def train(model, steps=100):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        logits = model(x_train)  # (B, T, 2, V)
        loss = F.cross_entropy(logits[:, K:].reshape(-1, V), y_train[:, K:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


_ = torch.manual_seed(0)
one_head = Tiny(num_heads=1)  # H = 1, hs = 32
print(
    "parameters, H = 1 and H = 2:",
    sum(p.numel() for p in one_head.parameters()),
    sum(p.numel() for p in model.parameters()),
)
print(f"H = 1, loss after training: {train(one_head):.3f}")
acc_one = accuracy(one_head, x_test)  # (2,)
print("H = 1, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_one.tolist()])
print("H = 1, weight on t − 0…t − 4:", [round(p, 2) for p in offset_table(one_head, x_test)[0].tolist()])
assert acc_one.max() > 0.95 and acc_one.min() < 0.5  # one offset learned, the other not

# %% [markdown]
# The single head splits its weight between the two offsets (0.42 on $t - 1$, 0.52 on $t - 3$)
# and returns their mix: one average of two value vectors. The linear readout cannot tell which
# token stood where; only the unequal weights help, so the token at $t - 3$, which has the larger
# weight, is read back, and the one at $t - 1$ mostly is not. Two heads are two weighted averages
# per query, one for each offset.

# %% [markdown]
# ## Without the position embedding
#
# Now two heads again, but without `pos`: the model sees only the tokens. The scores depend on
# the contents of the query and the key, not on where they stand. With the causal mask query $t$
# sees its prefix $x_0, \dots, x_t$ as a **set**: shuffling the earlier tokens does not change its
# answer.

# %%
_ = torch.manual_seed(0)
no_positions = Tiny(positions=False)
print(f"without positions, loss after training: {train(no_positions):.3f}")
acc_blind = accuracy(no_positions, x_test)  # (2,)
print("without positions, accuracy (t − 1, t − 3):", [round(a, 2) for a in acc_blind.tolist()])
last = x_test[:1]  # (1, T)
order = torch.randperm(T - 1, generator=torch.Generator().manual_seed(1))  # the earlier positions, shuffled
shuffled = torch.cat([last[:, order], last[:, -1:]], dim=1)  # (1, T): the last token stays in place
with torch.no_grad():
    same = [torch.allclose(m(last)[:, -1], m(shuffled)[:, -1]) for m in (no_positions, model)]
print("last answer unchanged by shuffling the prefix (without / with positions):", same)
assert same == [True, False]

# %% [markdown]
# So the model can at best guess from the set of earlier tokens. The best such guess is the token
# that occurs most often in $x_0, \dots, x_{t-1}$; it is right in about a third of the cases, well
# above the chance level $1/V$, and that is where the model without positions ends up.

# %%
hits = []
for q in range(K, T):
    counts = F.one_hot(x_test[:, :q], V).sum(dim=1)  # (B, V): how often each token occurs before q
    guess = counts.argmax(dim=-1)  # (B,)
    hits.append([(guess == x_test[:, q - k]).double().mean() for k in OFFSETS])
order_blind = torch.tensor(hits).mean(dim=0)  # (2,)
print("most frequent earlier token, accuracy (t − 1, t − 3):", [round(a, 2) for a in order_blind.tolist()])
print("chance 1 / V:", round(1 / V, 3))
assert (acc_blind < order_blind + 0.05).all()  # no better than an order-blind guess

# %% [markdown]
# ## Unmasked and causal attention without positions
#
# Without a mask, attention is *permutation-equivariant*: permute the tokens and the outputs are
# permuted the same way, nothing else changes. The causal mask breaks that: query $t$ sees
# $t + 1$ keys, so the same token is diluted more in a longer prefix, and the output still
# depends on how long the prefix is. We run the attention layer of the model without positions
# by hand, with and without the causal mask, on two inputs: the test sequence and its random
# permutation, and a sequence of one token 0 followed by eleven tokens 1.


# %%
def attend(model, tokens, is_causal):
    """The attention layer of `model`, computed by hand with or without the causal mask."""
    e = model.embed(tokens)  # (B, T, C)
    qkv = model.attn.qkv(e).view(tokens.size(0), tokens.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
    y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)  # (B, H, T, hs)
    return model.attn.proj(y.transpose(1, 2).reshape(tokens.size(0), tokens.size(1), H * hs))  # (B, T, C)


perm = torch.randperm(T, generator=torch.Generator().manual_seed(2))  # a permutation of the positions
ab = torch.tensor([[0] + [1] * (T - 1)])  # (1, T): token 0, then token 1 eleven times
with torch.no_grad():
    torch.testing.assert_close(attend(no_positions, last, True), no_positions.attn(no_positions.embed(last)))
    permuted = [
        torch.allclose(attend(no_positions, last[:, perm], c), attend(no_positions, last, c)[:, perm])
        for c in (False, True)
    ]
    spread = [
        (attend(no_positions, ab, c)[0, 1:] - attend(no_positions, ab, c)[0, 1]).abs().max().item()
        for c in (False, True)
    ]
print("permuting the tokens permutes the outputs (unmasked / causal):", permuted)
print(
    "positions 1…11, all token 1: largest difference of their outputs (unmasked / causal):",
    [round(d, 3) for d in spread],
)
assert permuted == [True, False] and spread[0] < 1e-9 < 0.01 < spread[1]

# %% [markdown]
# Without the mask the eleven equal tokens get eleven equal outputs; with the causal mask they
# differ, because each sees a different number of tokens 1 beside the one token 0. A causal model
# without positions can therefore sense the length of its prefix, and deeper causal models
# without any position encoding learn positional information from it (Haviv et al., 2022,
# "Transformer Language Models without Positional Encodings Still Learn Positional
# Information"). What one layer cannot do on this task is tell which token stood exactly $k$
# steps back: for that it needs the position embedding.

# %% [markdown]
# ## Summary
#
# Before training the heads are equally spread out; after training each holds its own diagonal,
# and this shows both in the map and in the numbers: a weight above 0.8 on its offset, and
# without the head its output drops to guessing. Next: [the transformer
# block](../../chapters/06-transformer-block/).

# %% [markdown]
# ## The trained heads, interactive
#
# The same weights as in the map "After training", as a view you can explore: choose a query
# token (click, tap, or Tab and Enter; the arrow keys move along the tokens) and see where each
# head looks, with the weights as numbers. Query "11:…" in head 0 points three tokens back, in
# head 1 one token back. "All heads" switches between the two heads side by side and one at a
# time.

# %%
simple_llm.attention_view(w_after, labels, lang="en")
