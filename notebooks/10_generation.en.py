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

import torch
import torch.nn.functional as F

import simple_llm

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
# most likely token; sampling draws from the softmax of the logits divided by the temperature,
# optionally among the `top_k` most likely tokens only or within the probability mass `top_p`.

# %%
prompt = encode("the quick")  # (1, 9)
print("greedy:               ", repr(decode(model.generate(prompt, 40, do_sample=False)[0])))
samplers = [
    ("T = 1.0", {}),
    ("T = 2.0", {"temperature": 2.0}),
    ("T = 2.0, top_k = 3", {"temperature": 2.0, "top_k": 3}),
    ("T = 2.0, top_p = 0.9", {"temperature": 2.0, "top_p": 0.9}),
]
for name, kwargs in samplers:
    _ = torch.manual_seed(1)
    out = model.generate(prompt, 40, do_sample=True, **kwargs)  # (1, 49)
    print(f"{name + ':':22}", repr(decode(out[0])))

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
print("cached logits == full-forward logits:", True)

# %% [markdown]
# ## The trap of `is_causal`
#
# A new token is one query against T cached keys. `scaled_dot_product_attention(is_causal=True)`
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
print("same 60 tokens with and without the cache:", True)
print(repr(decode(with_cache[0])))

# %% [markdown]
# ## How much work the cache saves
#
# Count the positions that go through the model: a hook records the length of every call. Within
# the window, recomputation reads 9, 10, 11, … positions, the cache 9, 1, 1, ….

# %%
lengths = []
hook = model.register_forward_pre_hook(lambda module, args: lengths.append(args[0].size(1)))
for use_cache in (True, False):
    lengths.clear()
    model.generate(prompt, 20, do_sample=False, use_cache=use_cache)
    print(
        "cache" if use_cache else "no cache",
        "| positions read:",
        sum(lengths),
        "| calls:",
        lengths[:5],
        "...",
    )
hook.remove()

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
# The cache holds keys and values of every layer and every key/value head: 2 · L · H_kv · hs
# numbers per token, times the bytes of one number (8 in float64, 2 in float16).

# %%
cache = model.new_cache()
model(encode(text[:32]), cache)
L, H_kv, hs = len(cache), cache[0].keys.size(1), cache[0].keys.size(3)
measured = sum(c.nbytes() for c in cache) // 32
print(f"2 · {L} · {H_kv} · {hs} · 8 =", 2 * L * H_kv * hs * 8, "bytes per token; measured:", measured)
assert measured == 2 * L * H_kv * hs * 8

# %% [markdown]
# ## Summary
#
# The cache keeps what does not change (keys and values of the tokens already read), so each new
# token costs one position instead of the whole window, and the tokens are those of recomputation.
# Its memory grows with layers × key/value heads × head size: the next chapter shrinks the middle
# factor, [multi-query and grouped-query attention](../../chapters/11-gqa/).
