# %% [markdown]
# # Generation and the KV cache: the notebook
#
# The notebook of the chapter ["Generation and the KV cache"](../../chapters/10-generation/). We
# train a small GPT on one line of text, generate from it greedily and by sampling, then follow the
# KV cache step by step and check that cached decoding gives exactly the tokens of recomputation.
#
# Shape legend: **B** batch, **T** sequence length, **C** embedding size (`emb_size`), **H**
# number of heads, **H_kv** number of key/value heads, **hs** head size, **V** vocabulary size.

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
# ## A small GPT
#
# `GPT(vocab_size, max_seq_len, emb_size, num_heads, head_size, num_layers)` has the signature of
# the original project: a token embedding, positions, a stack of pre-LN decoder blocks, a final
# LayerNorm and a linear head. Its vocabulary here is the characters of one line of text.

# %%
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

# show figures (Figure) inline in the notebook
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # a small model: float64 is cheap, and outputs repeat on any machine
torch.set_num_threads(1)  # one thread is enough for a small model
text = "the quick brown fox jumps over the lazy dog. " * 4
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}


def encode(s):
    return torch.tensor([[stoi[c] for c in s]])  # (1, T)


def decode(ids):
    return "".join(chars[i] for i in ids.tolist())


_ = torch.manual_seed(0)
model = simple_llm.GPT(
    len(chars), max_seq_len=32, emb_size=32, num_heads=4, head_size=8, num_layers=2, dropout=0.0
)
print("V =", len(chars), "| parameters:", sum(p.numel() for p in model.parameters()))
print(tuple(model(encode("the quick")).shape))  # (B, T, V)

# %% [markdown]
# ## Training on one line
#
# Next-character prediction on random windows of 32 characters: 200 Adam steps, a batch of 32.

# %%
data = encode(text)[0]  # (N,)
gen = torch.Generator().manual_seed(0)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for step in range(201):
    starts = torch.randint(0, len(data) - 33, (32,), generator=gen)
    batch = torch.stack([data[s : s + 33] for s in starts.tolist()])  # (B, T + 1)
    logits = model(batch[:, :-1])  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, len(chars)), batch[:, 1:].reshape(-1))
    if step % 100 == 0:
        print(f"step {step:3}: loss {loss.item():.3f}")
    if step < 200:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()

# %% [markdown]
# ## Greedy and sampled decoding
#
# `generate(x, max_new_tokens, do_sample)` appends one token at a time. Greedy decoding takes the
# most likely token. Sampling draws token $i$ with probability
#
# $$
# p_i = \frac{\exp(z_i / \tau)}{\sum_j \exp(z_j / \tau)},
# $$
#
# where $z$ are the logits of the last position and $\tau$ is `temperature`, optionally among the
# `top_k` most likely tokens only, or among the nucleus of `top_p` (below).

# %%
prompt = encode("the quick")  # (1, 9)
print("greedy:               ", repr(decode(model.generate(prompt, 40, do_sample=False)[0])))
samplers = [
    ("τ = 1.0", {}),
    ("τ = 2.0", {"temperature": 2.0}),
    ("τ = 2.0, top_k = 3", {"temperature": 2.0, "top_k": 3}),
    ("τ = 2.0, top_p = 0.9", {"temperature": 2.0, "top_p": 0.9}),
]
for name, kwargs in samplers:
    _ = torch.manual_seed(1)
    out = model.generate(prompt, 40, do_sample=True, **kwargs)  # (1, 49)
    print(f"{name + ':':22}", repr(decode(out[0])))

# %% [markdown]
# ## Temperature, top-k and top-p on one distribution
#
# After a single "o" the line can go on in several ways, so the model's next-token distribution is
# spread over a few tokens. Dividing the logits by $\tau < 1$ sharpens it, $\tau > 1$ flattens it.
# `top_k = 3` keeps the three most likely tokens whatever their probabilities; `top_p = 0.9` keeps
# the nucleus: sort the probabilities $p_{(1)} \ge p_{(2)} \ge \dots$ and keep the smallest $n$ with
#
# $$
# \sum_{j=1}^{n} p_{(j)} \ge \mathrm{top\_p},
# $$
#
# so its size follows the temperature.

# %%
probe = encode("o")  # (1, 1)
with torch.no_grad():
    z = model(probe)[0, -1]  # (V,): logits of the next token
taus = (0.5, 1.0, 2.0)
probs = torch.stack([(z / tau).softmax(dim=-1) for tau in taus])  # (3, V)
ranked = probs.sort(dim=-1, descending=True).values  # (3, V)
nuclei = ((ranked.cumsum(dim=-1) - ranked) < 0.9).sum(dim=-1).tolist()  # up to the token reaching 0.9
shown = max(nuclei) + 2
order = z.argsort(descending=True)[:shown]  # the most likely tokens, two past the largest nucleus
labels = [repr(chars[i])[1:-1].replace(" ", "␣") for i in order.tolist()]
fig, axes = plt.subplots(3, 1, figsize=(4.8, 6.4), sharex=True, sharey=True, layout="constrained")
fig.suptitle("Next-token probabilities after “o” at three temperatures")
for ax, tau, row, nucleus in zip(axes, taus, probs, nuclei):
    top = row[order]  # (shown,)
    print(
        f"τ = {tau}:",
        "top-4 probabilities",
        [round(v, 2) for v in top[:4].tolist()],
        "| nucleus of top_p = 0.9:",
        nucleus,
    )
    ax.bar(range(shown), top.numpy(), color=["C0" if r < nucleus else "lightgrey" for r in range(shown)])
    ax.axvline(2.5, color="C3", linestyle="--", label="top_k = 3")
    ax.axvline(nucleus - 0.5, color="C2", linestyle=":", linewidth=2, label="top_p = 0.9")
    ax.set_title(f"τ = {tau}: the top_p nucleus holds {nucleus} tokens", fontsize=11)
    ax.set_ylabel("probability")
axes[0].legend(fontsize=10)
axes[-1].set_xticks(range(shown), labels)
axes[-1].set_xlabel("token, most likely first")
plt.close(fig)
fig

# %% [markdown]
# The nucleus is what Holtzman et al. (2019) defined and what Hugging Face's `TopPLogitsWarper`
# keeps: the token that crosses `top_p` is kept. On probabilities 0.5, 0.3, 0.2 with `top_p = 0.6`
# that is tokens 0 and 1. The original project kept the tokens whose cumulative probability stays
# at most `top_p`, which stops before the crossing token: token 0 alone, greedy decoding in
# disguise. `pick_next_token` samples the nucleus:

# %%
probs = torch.tensor([[0.5, 0.3, 0.2]])  # (B, V)
_ = torch.manual_seed(0)
drawn = {simple_llm.pick_next_token(probs.log(), do_sample=True, top_p=0.6).item() for _ in range(200)}
original_rule = (probs.cumsum(dim=-1) <= 0.6).nonzero()[:, 1].tolist()  # cumulative probability <= top_p
print("tokens drawn with top_p = 0.6:", sorted(drawn), "| the original's rule keeps:", original_rule)
assert drawn == {0, 1} and original_rule == [0]

# %% [markdown]
# Logits in float16 or bfloat16 are sampled in float32: a small temperature would push them past
# float16's largest number, 65504, and the softmax of infinities is not a distribution.

# %%
z16 = torch.tensor([[10.0, 9.0, 1.0]], dtype=torch.float16)  # (B, V)
print("float16 logits / 1e-4:", (z16 / 1e-4).tolist())
token = simple_llm.pick_next_token(z16, do_sample=True, temperature=1e-4)  # (B, 1)
print("sampled at temperature 1e-4 from float16 logits:", token.item())
assert token.item() == 0

# %% [markdown]
# ## The cache step by step
#
# Each attention layer keeps a `KVCache`: the keys and values of the tokens already read,
# (B, H_kv, T, hs). The prompt fills it; each new token adds one position and needs only its own
# query. Its logits must equal those of a full forward over the whole sequence.

# %%
cache = model.new_cache()  # one KVCache per block
logits = model(prompt, cache)  # (B, T, V)
print(len(cache), "caches; block 0 keys after the prompt:", tuple(cache[0].keys.shape))  # (B, H_kv, T, hs)
next_id = logits[:, -1:].argmax(-1)  # (B, 1)
step_logits = model(next_id, cache)  # (B, 1, V): one new position
print("after one token:", tuple(cache[0].keys.shape))  # (B, H_kv, T + 1, hs)
full = model(torch.cat([prompt, next_id], dim=1))  # (B, T + 1, V): everything recomputed
torch.testing.assert_close(step_logits[:, -1], full[:, -1], rtol=1e-10, atol=1e-10)
print(
    "cached logits == full-forward logits (to 1e-10):",
    (step_logits[:, -1] - full[:, -1]).abs().max().item() < 1e-10,
)

# %% [markdown]
# ## The trap of `is_causal`
#
# A new token is one query against $T$ cached keys. `scaled_dot_product_attention(is_causal=True)`
# aligns its mask to the top left (pytorch#108108): the single query would see only key 0. The
# mask we need is aligned to the bottom right; `causal_after(T_new, T_cached)` builds it.

# %%
q, k, v = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)  # T_q = 1, T_k = 5
wrong = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, 1, hs)
print("is_causal=True returns value 0 alone:", torch.allclose(wrong, v[:, :, :1]))
print(simple_llm.causal_after(2, 3).int())  # (T_new, T_cached + T_new)

# %% [markdown]
# ## Cached decoding equals recomputation
#
# 60 new tokens after a 9-token prompt go past `max_seq_len = 32`. From then on the model reads
# the last 32 tokens, every kept token moves one position to the left, and the cache is rebuilt
# from the window. With and without the cache the tokens are the same.

# %%
with_cache = model.generate(prompt, 60, do_sample=False)  # (1, 69)
without = model.generate(prompt, 60, do_sample=False, use_cache=False)  # (1, 69)
assert torch.equal(with_cache, without)
print("same 60 tokens with and without the cache:", torch.equal(with_cache, without))
print(repr(decode(with_cache[0])))

# %% [markdown]
# ## How much work the cache saves
#
# Count the positions that go through the model: a hook records the length of every call, one
# call per new token. Within the window, recomputation reads 9, 10, 11, … positions, the cache
# 9, 1, 1, …. Once the text is longer than `max_seq_len = 32` the cache is rebuilt from the window
# at every step, and both read 32. Every cached step still attends over all the cached keys:
# one position through the projections and the feed-forward layers, but $O(T)$ work in attention.

# %%
lengths, calls = {}, []
hook = model.register_forward_pre_hook(lambda module, args: calls.append(args[0].size(1)))
for use_cache in (True, False):
    calls.clear()
    model.generate(prompt, 60, do_sample=False, use_cache=use_cache)
    lengths[use_cache] = list(calls)
    print(
        "cache" if use_cache else "no cache",
        "| positions read, 20 new tokens:",
        sum(calls[:20]),
        "| 60 new tokens:",
        sum(calls),
        "| calls:",
        calls[:4],
        "...",
        calls[-2:],
    )
hook.remove()
fig, ax = plt.subplots(figsize=(4.8, 3.2), layout="constrained")
steps = range(1, 61)
ax.step(steps, lengths[False], where="mid", label="without the cache")
ax.step(steps, lengths[True], where="mid", label="with the cache")
ax.axvline(24, color="grey", linestyle=":", linewidth=1)
ax.text(25, 16, "window full", fontsize=10, color="grey")
ax.set(xlabel="new token", ylabel="positions read", title="Positions through the model per new token")
ax.legend(loc="lower right", fontsize=10)
plt.close(fig)
fig

# %% [markdown]
# And in time, on a larger model with a long window (the precise numbers are in the
# [benchmark](../../benchmark/)): we print only whether the cache is faster.

# %%
_ = torch.manual_seed(0)
big = simple_llm.GPT(
    64, max_seq_len=256, emb_size=128, num_heads=4, head_size=32, num_layers=2, dropout=0.0
).eval()
start_ids = torch.randint(0, 64, (1, 8))  # (B, T)
seconds = {}
for use_cache in (True, False, True, False):
    start = time.perf_counter()
    big.generate(start_ids, 200, do_sample=False, use_cache=use_cache)
    seconds[use_cache] = min(seconds.get(use_cache, float("inf")), time.perf_counter() - start)
print("the cache is faster at 200 new tokens:", seconds[True] < seconds[False])

# %% [markdown]
# ## Memory
#
# The cache holds keys and values of every layer and every key/value head:
#
# $$
# \text{bytes per token} = 2 \cdot L \cdot H_{kv} \cdot \mathrm{hs} \cdot b,
# $$
#
# where $b$ is the size of one number in bytes: 8 in float64, 2 in float16.

# %%
cache = model.new_cache()
model(encode(text[:32]), cache)
L, H_kv, hs = len(cache), cache[0].keys.size(1), cache[0].keys.size(3)
measured = sum(c.nbytes() for c in cache) // 32
print(f"2 · {L} · {H_kv} · {hs} · 8 =", 2 * L * H_kv * hs * 8, "bytes per token; measured:", measured)
assert measured == 2 * L * H_kv * hs * 8

# %% [markdown]
# The same formula for a 7B-class model: Llama 2 7B has $L = 32$ layers of $H = 32$ heads
# of size $\mathrm{hs} = 128$, every head with its own keys and values ($H_{kv} = H$), and
# 6.74 billion parameters.

# %%
L7, H_kv7, hs7 = 32, 32, 128  # Llama 2 7B: layers, key/value heads, head size
per_token = 2 * L7 * H_kv7 * hs7 * 2  # float16: 2 bytes per number
weights_gib = 6.74e9 * 2 / 2**30
print(f"(L, H_kv, hs) = {(L7, H_kv7, hs7)}: {per_token} bytes per token = {per_token / 2**20} MiB in float16")
print(f"4096 tokens: {per_token * 4096 / 2**30} GiB per sequence; weights: {weights_gib:.1f} GiB")
print(f"a batch of 8 such sequences: {8 * per_token * 4096 / 2**30} GiB of cache")
assert 8 * per_token * 4096 / 2**30 > weights_gib

# %% [markdown]
# ## Summary
#
# The cache keeps what does not change (keys and values of the tokens already read), so each new
# token goes through the model as one position instead of the whole window (its attention still
# reads every cached key), and the tokens are those of recomputation. Its memory per token is
# $2 \cdot L \cdot H_{kv} \cdot \mathrm{hs}$ numbers: the next chapter shrinks the factor $H_{kv}$,
# [multi-query and grouped-query attention](../../chapters/11-gqa/).
