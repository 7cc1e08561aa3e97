# %% [markdown]
# # Interview questions: the notebook
#
# Each section answers one question of [the chapter](../../chapters/08-interview/) with running code: the answer is not retold, it is checked by an `assert`. Section numbers match the question numbers on the page.
#
# Shape legend: B batch, T sequence length, C embedding size (`emb_size`), H number of heads (`num_heads`), hs head size (`head_size`).

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
# One module for the whole notebook: $C = 16$, $H = 4$, $\mathrm{hs} = 4$, so $H\,\mathrm{hs} = C$. We compute in float64 so that comparisons are tight, and switch dropout off.

# %%
import torch
from torch.utils.flop_counter import FlopCounterMode

from simple_llm import Decoder, FeedForward, MultiHeadAttention, padding_mask

torch.set_default_dtype(torch.float64)
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 5, 16, 4, 4
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=8, dropout=0.0)
x = torch.randn(B, T, C)
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## 1. Shapes at every step
#
# Project first, then split into heads. One matrix `qkv` gives Q, K and V of all heads at once; `view` and `permute` compute nothing, they only rearrange the axes.

# %%
qkv = mha.qkv(x)
print("qkv:", tuple(qkv.shape))  # (B, T, 3·H·hs)
q, k, v = qkv.view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
print("q, k, v:", tuple(q.shape))  # (B, H, T, hs)

# %% [markdown]
# Then attention in every head, the heads concatenated, and the output projection. The result equals the package's module.

# %%
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
scores = q @ k.transpose(-2, -1) / hs**0.5  # (B, H, T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
heads = weights @ v  # (B, H, T, hs)
concat = heads.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H·hs)
out = mha.proj(concat)  # (B, T, C)
for name, tensor in [("scores", scores), ("heads", heads), ("concat", concat), ("out", out)]:
    print(f"{name}: {tuple(tensor.shape)}")
torch.testing.assert_close(out, mha(x))
print("by hand == MultiHeadAttention:", torch.allclose(out, mha(x)))

# %% [markdown]
# ## 2. How many parameters
#
# The Q, K, V projections and the output projection are four $C \times C$ matrices and four bias vectors of length $C$: $4C^2 + 4C$. `nn.MultiheadAttention` has as many.

# %%
n_qkv = mha.qkv.weight.numel() + mha.qkv.bias.numel()
n_proj = mha.proj.weight.numel() + mha.proj.bias.numel()
n_ours = sum(p.numel() for p in mha.parameters())
n_torch = sum(p.numel() for p in torch.nn.MultiheadAttention(C, H).parameters())
print(f"qkv: {n_qkv} (3·C² + 3·C), proj: {n_proj} (C² + C)")
print(f"total: {n_ours}, 4·C² + 4·C = {4 * C * C + 4 * C}, nn.MultiheadAttention: {n_torch}")
assert n_ours == 4 * C * C + 4 * C == n_torch

# %% [markdown]
# ## 3. When emb_size is not divisible by num_heads
#
# `head_size` is the size of one head's Q, K and V, a parameter of its own, not necessarily $C/H$. simple_llm allows $H\,\mathrm{hs} \ne C$ on purpose: `qkv` projects $C \to 3H\,\mathrm{hs}$ and `proj` maps $H\,\mathrm{hs} \to C$ back. Example: $C = 10$, $H = 3$, $\mathrm{hs} = 4$.

# %%
odd = MultiHeadAttention(num_heads=3, emb_size=10, head_size=4, max_seq_len=8, dropout=0.0)
x10 = torch.randn(B, T, 10)  # (B, T, C)
print("qkv.weight:", tuple(odd.qkv.weight.shape), " proj.weight:", tuple(odd.proj.weight.shape))
print("weights:", tuple(odd.get_attention_weights(x10).shape))  # (B, H, T, T)
print("output:", tuple(odd(x10).shape))  # (B, T, C)
n_odd = sum(p.numel() for p in odd.parameters())
assert n_odd == 10 * 36 + 36 + 12 * 10 + 10  # C·3·H·hs + 3·H·hs + H·hs·C + C
print("parameters:", n_odd)

# %% [markdown]
# In `nn.MultiheadAttention` the head size is always `embed_dim // num_heads`, so `to_torch()` cannot export this module, and says which numbers are wrong:

# %%
try:
    odd.to_torch()
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 4. Why the output projection
#
# After the concatenation every channel belongs to one head. The output projection $W_o$ of shape $C \times H\,\mathrm{hs}$ mixes the heads: its output is a sum of the heads' contributions, each through its own block of columns of $W_o$,
#
# $$\text{out} = \sum_{h} \text{head}_h\, W_o^{(h)\top} + b.$$
#
# It also maps the size $H\,\mathrm{hs}$ back to $C$.

# %%
W_o = mha.proj.weight  # (C, H·hs)
parts = [mha.head(h)(x) @ W_o[:, h * hs : (h + 1) * hs].T for h in range(H)]  # H x (B, T, C)
torch.testing.assert_close(sum(parts) + mha.proj.bias, mha(x))
print(
    "output = sum over h of head_h @ W_o[:, block h].T + b:",
    torch.allclose(sum(parts) + mha.proj.bias, mha(x)),
)
print("without the projection, channels 0..hs-1 are head 0:", torch.equal(concat[..., :hs], heads[:, 0]))

# %% [markdown]
# ## 5. Why softmax over the key axis
#
# Row $t$ of the weights is query $t$'s distribution of attention over the keys: it sums to 1 over the keys (the last axis). A softmax over the query axis would normalize the columns, and the rows would no longer be distributions.

# %%
w = mha.get_attention_weights(x)  # (B, H, T, T)
torch.testing.assert_close(w, weights)
torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T))
print("over keys, row sums:   ", [round(s, 3) for s in w[0, 0].sum(-1).tolist()])
wrong = scores.masked_fill(~causal, float("-inf")).softmax(dim=-2)  # (B, H, T, T)
print("over queries, row sums:", [round(s, 3) for s in wrong[0, 0].sum(-1).tolist()])

# %% [markdown]
# ## 6. Why divide by the square root of hs
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1, then $q \cdot k$ is a sum of $\mathrm{hs}$ terms and its variance is $\mathrm{hs}$. Without the division, a softmax over 16 keys gives almost all the weight to one key; after dividing by $\sqrt{\mathrm{hs}}$ the variance is about 1 for any $\mathrm{hs}$.

# %%
g = torch.Generator().manual_seed(0)
for d in (4, 16, 64, 256):
    q_ = torch.randn(1000, 1, d, generator=g)  # (N, 1, hs)
    k_ = torch.randn(1000, 16, d, generator=g)  # (N, 16, hs)
    dots = (q_ * k_).sum(-1)  # (N, 16)
    scaled = dots / d**0.5
    top, top_scaled = dots.softmax(-1).amax(-1).mean(), scaled.softmax(-1).amax(-1).mean()
    print(
        f"hs={d:3d}: variance {dots.var():5.1f} -> {scaled.var():.2f}, largest weight {top:.2f} -> {top_scaled:.2f}"
    )
    assert abs(scaled.var() - 1) < 0.1

# %% [markdown]
# What does saturation do to the gradient? The gradient that reaches a query is the softmax's Jacobian times the keys, $\partial p/\partial q = (\operatorname{diag}(p) - p\,p^\top)\,K/s$, with $s = \sqrt{\mathrm{hs}}$ or, without the scale, $s = 1$. We measure its norm for 1000 queries, each over 16 keys, and look at the median and the mean.

# %%
g = torch.Generator().manual_seed(0)
grad_norms = {}
for d in (4, 64, 256, 1024):
    q_ = torch.randn(1000, 1, d, generator=g)  # (N, 1, hs)
    k_ = torch.randn(1000, 16, d, generator=g)  # (N, 16, hs)
    for name, s in (("no scale", 1.0), ("scaled", d**0.5)):
        p = ((q_ * k_).sum(-1) / s).softmax(-1)  # (N, 16)
        jacobian = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) @ k_ / s  # (N, 16, hs): dp/dq
        grad_norms[name, d] = jacobian.flatten(1).norm(dim=1)  # (N,)
for d in (4, 64, 256, 1024):
    raw, scaled = grad_norms["no scale", d], grad_norms["scaled", d]
    print(
        f"hs={d:4d}: no scale median {raw.median():.2g}, mean {raw.mean():.2g}, share under 1e-3 {(raw < 1e-3).double().mean():.2f}"
        f" | scaled median {scaled.median():.2f}, mean {scaled.mean():.2f}"
    )
raw = grad_norms["no scale", 1024]
assert raw.median() < 0.01 < 1 < raw.mean() and (raw < 1e-3).double().mean() > 0.4

# %% [markdown]
# Without the scale the typical gradient does vanish as $\mathrm{hs}$ grows: the median falls from 0.58 to about $10^{-3}$, and at $\mathrm{hs} = 1024$ half of the rows pass less than $10^{-3}$. The mean does not fall, it grows: the rare rows where two scores nearly tie get very large gradients. Training without the scale is therefore erratic rather than simply slow. With the scale both the median and the mean stay near 0.3 for every $\mathrm{hs}$. Vaswani et al. (2017) only "suspect" this effect; here it is measured.

# %% [markdown]
# ## 7. Computational cost
#
# Attention costs $O(T^2 C)$, the projections $O(T C^2)$. We count FLOPs with PyTorch's counter (`FlopCounterMode`), separately for the projections and for attention. Projections: $2TC \cdot 3C + 2TC \cdot C = 8TC^2$. Scores and the weighted sum: $2T^2C + 2T^2C = 4T^2C$. The scale and the mask are elementwise operations, which the counter does not count.


# %%
def count_flops(T, C, H):
    """FLOPs of the projections and of attention for one sequence of length T."""
    m, hs = MultiHeadAttention(H, C, C // H, max_seq_len=T, dropout=0.0), C // H
    x = torch.randn(1, T, C)  # (B, T, C)
    with torch.no_grad(), FlopCounterMode(display=False) as qkv_count:
        q, k, v = m.qkv(x).view(1, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
    with torch.no_grad(), FlopCounterMode(display=False) as attention_count:
        y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v  # (B, H, T, hs)
    with torch.no_grad(), FlopCounterMode(display=False) as proj_count:
        m.proj(y.transpose(1, 2).reshape(1, T, C))  # (B, T, C)
    return qkv_count.get_total_flops() + proj_count.get_total_flops(), attention_count.get_total_flops()


# %% [markdown]
# Double $T$, then $C$, and see by how much each term grows.

# %%
base, longer, wider = count_flops(64, 32, 4), count_flops(128, 32, 4), count_flops(64, 64, 4)
assert base == (8 * 64 * 32**2, 4 * 64**2 * 32)
print(f"T=64, C=32: projections {base[0]}, attention {base[1]}")
print(f"T x2: projections x{longer[0] / base[0]}, attention x{longer[1] / base[1]}")
print(f"C x2: projections x{wider[0] / base[0]}, attention x{wider[1] / base[1]}")

# %% [markdown]
# ## 8. Do more heads add FLOPs
#
# With the same $C$ and $\mathrm{hs} = C/H$, heads only cut $C$ into parts: the projections stay the same ($C \to 3C$ and $C \to C$), and $H$ score matrices $T \times T$ of $\mathrm{hs}$ columns each are the same $T^2 C$ multiplications. Only the weights grow in number, $H T^2$ of them, and they take memory only where they are materialised: a fused kernel such as FlashAttention never stores them (chapter 3 measures it).

# %%
for n_heads in (1, 4, 8):
    proj_flops, attention_flops = count_flops(64, 64, n_heads)
    print(f"H={n_heads}: projections {proj_flops}, attention {attention_flops}")
assert count_flops(64, 64, 1) == count_flops(64, 64, 4) == count_flops(64, 64, 8)

# %% [markdown]
# ## 9. Leaking the future
#
# The causal mask forbids query $t$ to look at keys after $t$. We check it by behaviour: change the last token, and the outputs of all earlier positions must not move.

# %%
x_changed = x.clone()
x_changed[:, -1] = torch.randn(B, C)  # (B, C): a new last token
before, after = mha(x), mha(x_changed)
torch.testing.assert_close(after[:, :-1], before[:, :-1])  # positions 0..T-2 did not move
unchanged = torch.allclose(after[:, :-1], before[:, :-1])
moved = not torch.allclose(after[:, -1], before[:, -1])
assert moved
print("positions 0..T-2 unchanged:", unchanged, "| position T-1 changed:", moved)

# %% [markdown]
# ## 10. Padding mask and causal mask
#
# The causal mask (T, T) is one for all: query $t$ sees keys $0, \dots, t$. The padding mask (B, T) is per example: it hides the padding tokens at the end of a shorter sequence. In simple_llm `True` means "may attend", and the causal mask is always applied.

# %%
pad = padding_mask([5, 3], max_len=T)  # (B, T)
print("padding mask (B, T):", pad.long(), sep="\n")
print("causal mask (T, T):", causal.long(), sep="\n")
w_pad = mha.get_attention_weights(x, mask=pad)  # (B, H, T, T)
assert (w_pad[1, :, :, 3:] == 0).all()  # keys 3 and 4 of the second example are padding
print("weight > 0, example 1, head 0:", (w_pad[1, 0] > 0).long(), sep="\n")

# %% [markdown]
# With padding on the right, the causal mask already hides the padding keys from every real token: they stand after it. The outputs of the real tokens are then bit for bit the same with and without the padding mask; the mask changes only the rows of the padding queries, which nobody reads. It matters where a real token could see a padding key: with padding on the **left**, as in batched generation, and in a bidirectional encoder, which has no causal mask.

# %%
right = torch.equal(mha(x, mask=pad)[1, :3], mha(x)[1, :3])  # real tokens 0..2, padding at 3, 4
left_pad = torch.tensor([[True] * T, [False, False, True, True, True]])  # (B, T): padding at 0, 1
left = torch.equal(mha(x, mask=left_pad)[1, 2:], mha(x)[1, 2:])  # real tokens 2..4
print(
    "real tokens, the same with and without the padding mask: padding on the right",
    right,
    "| on the left",
    left,
)
assert right and not left

# %% [markdown]
# ## 11. What dropout does in eval mode
#
# In training, dropout zeroes a share $p$ of the outputs and divides the rest by $1 - p$. After `eval()` it is the identity.

# %%
noisy = MultiHeadAttention(H, C, hs, max_seq_len=8, dropout=0.5)
noisy.load_state_dict(mha.state_dict())
noisy.train()
print("train: two calls equal?", torch.equal(noisy(x), noisy(x)))
noisy.eval()
torch.testing.assert_close(noisy(x), mha(x))
print("eval: output the same as without dropout:", torch.allclose(noisy(x), mha(x)))

# %% [markdown]
# ## 12. Post-LN or pre-LN
#
# Post-LN (the original Transformer, `Decoder`'s default): $x \leftarrow \operatorname{LN}(x + f(x))$. Pre-LN (GPT-2, GPT-3, `norm_first=True`): $x \leftarrow x + f(\operatorname{LN}(x))$. Most current models are pre-norm with RMSNorm in place of LayerNorm.

# %%
post = Decoder(H, C, hs, max_seq_len=8, dropout=0.0)
pre = Decoder(H, C, hs, max_seq_len=8, dropout=0.0, norm_first=True)
pre.load_state_dict(post.state_dict())
h = post.norm1(x + post.attention(x))  # (B, T, C)
post_by_hand = post.norm2(h + post.feed_forward(h))  # (B, T, C)
torch.testing.assert_close(post_by_hand, post(x))
h = x + pre.attention(pre.norm1(x))  # (B, T, C)
pre_by_hand = h + pre.feed_forward(pre.norm2(h))  # (B, T, C)
torch.testing.assert_close(pre_by_hand, pre(x))
print(
    "LN(x + f(x)) == post-LN Decoder:",
    torch.allclose(post_by_hand, post(x)),
    "| x + f(LN(x)) == pre-LN Decoder:",
    torch.allclose(pre_by_hand, pre(x)),
)
print(
    "largest |mean over C| of the output: post-LN",
    round(post(x).mean(-1).abs().max().item(), 3),
    "pre-LN",
    round(pre(x).mean(-1).abs().max().item(), 3),
)

# %% [markdown]
# ## 13. Why an activation in the feed-forward network
#
# Two linear layers in a row without a nonlinearity are one linear layer:
#
# $$W_2 (W_1 x + b_1) + b_2 = (W_2 W_1)\,x + (W_2 b_1 + b_2).$$
#
# A ReLU between them breaks this.

# %%
ff = FeedForward(C, dropout=0.0)
W = ff.down.weight @ ff.up.weight  # (C, C)
b = ff.down.weight @ ff.up.bias + ff.down.bias  # (C,)
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(ff.down(ff.up(x)), one_layer)
print("without ReLU: two layers == one C×C layer:", torch.allclose(ff.down(ff.up(x)), one_layer))
print("with ReLU: FeedForward == one layer?", torch.allclose(ff(x), one_layer))

# %% [markdown]
# ## 14. What does a KV cache store
#
# The keys and values of the tokens already read, per layer, (B, H_kv, T, hs); queries are not cached. A new token brings only its own query, key and value, and its logits equal those of a full forward. Past `max_seq_len` the window slides, every position changes, and the cache is rebuilt: the tokens stay those of recomputation, which the last line checks with `torch.equal`.

# %%
from simple_llm import GPT, RotaryEmbedding

_ = torch.manual_seed(0)
gpt = GPT(20, max_seq_len=8, emb_size=C, num_heads=H, head_size=hs, num_layers=2, dropout=0.0).eval()
ids = torch.randint(0, 20, (B, T))  # (B, T)
cache = gpt.new_cache()
gpt(ids[:, :-1], cache)  # the prompt: T − 1 positions
last = gpt(ids[:, -1:], cache)  # (B, 1, V): one new position
torch.testing.assert_close(last[:, -1], gpt(ids)[:, -1])
print("cached keys of block 0:", tuple(cache[0].keys.shape))  # (B, H_kv, T, hs)
cached, recomputed = (gpt.generate(ids, 10, do_sample=False, use_cache=c) for c in (True, False))
same = torch.equal(cached, recomputed)
assert same
print("10 tokens past max_seq_len, same with and without the cache:", same)

# %% [markdown]
# ## 15. What are MQA and GQA
#
# Several query heads share one key/value head: $H_{kv}$ groups instead of $H$ heads (1 group: multi-query attention). Query head $h$ reads key/value head $\lfloor h / (H / H_{kv}) \rfloor$. The cache shrinks by $H / H_{kv}$; the queries stay as many as before.

# %%
for H_kv in (4, 2, 1):
    model = GPT(20, 8, C, H, hs, 2, dropout=0.0, num_kv_heads=H_kv).eval()
    kv = model.new_cache()
    model(ids, kv)
    heads = [h.kv_index for h in model.decoders[0].attention.heads]
    print(
        f"H_kv = {H_kv}: key/value head of each query head {heads}, cache",
        sum(c.nbytes() for c in kv) // ids.numel(),
        "bytes per token",
    )

# %% [markdown]
# ## 16. How does RoPE encode positions
#
# It rotates every pair $i$ of coordinates of the query and of the key by the angle $p\,\theta_i$ at position $p$, with its own frequency $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ per pair ($\mathrm{base} = 10000$); the values are not rotated. The lengths do not change, and the score of a query at $p$ and a key at $s$ depends on $p - s$ only.

# %%
rope = RotaryEmbedding(head_size=hs)
q1, k1 = torch.randn(2, 1, hs)  # (T, hs) each
scores = [(rope(q1, start=s + 3) @ rope(k1, start=s).T).item() for s in (0, 5, 50)]
print("offset 3, the key at 0, 5, 50:", [round(v, 6) for v in scores])
assert max(scores) - min(scores) < 1e-12
print("length unchanged by the rotation:", torch.allclose(rope(q1, start=7).norm(), q1.norm()))
theta = rope.angles(2, dtype=torch.float64)[1]  # (hs/2,): the angles at position 1 are the frequencies
expected = 10000.0 ** (-torch.arange(0, hs, 2) / hs)  # base^(-2i/hs), i = 0 .. hs/2 - 1
torch.testing.assert_close(theta, expected)
print(
    "frequency of each pair:",
    [round(t, 4) for t in theta.tolist()],
    "== base^(-2i/hs):",
    torch.allclose(theta, expected),
)

# %% [markdown]
# ## 17. Softmax without the whole row
#
# The online softmax reads the scores in blocks and keeps a running maximum $m$ and a running sum $d$ of $e^{x - m}$; when the maximum grows, $d$ is multiplied by $e^{m_{\text{old}} - m_{\text{new}}}$. After the last block, $m + \log d$ is the log-sum-exp of the whole row. `tiled_attention` does this per query, with a running output as well.

# %%
from simple_llm import tiled_attention

row = torch.randn(1000) * 5
m, d = torch.tensor(float("-inf")), torch.tensor(0.0)
for block in row.split(100):  # ten blocks of 100 scores
    m_new = torch.maximum(m, block.max())
    d = d * torch.exp(m - m_new) + torch.exp(block - m_new).sum()
    m = m_new
torch.testing.assert_close(m + d.log(), torch.logsumexp(row, dim=0))
print(
    "online, 10 blocks: m + log d == torch.logsumexp(row):",
    torch.allclose(m + d.log(), torch.logsumexp(row, dim=0)),
)
q_, k_, v_ = torch.randn(3, 1, 2, 50, 8).unbind(0)  # (B, H, T, hs) each
out_tiled = tiled_attention(q_, k_, v_, is_causal=True, block_size=16)
fused = torch.nn.functional.scaled_dot_product_attention(q_, k_, v_, is_causal=True)  # (B, H, T, hs)
torch.testing.assert_close(out_tiled, fused)
print("tiled_attention, blocks of 16 == scaled_dot_product_attention:", torch.allclose(out_tiled, fused))

# %% [markdown]
# ## 18. A query with no allowed key
#
# If every key of a query is masked, its whole row of scores is $-\infty$ and the softmax divides 0 by 0: NaN, which then spreads through every later layer. In a hand-written kernel the same NaN comes from $(-\infty) - (-\infty)$ when the running maximum is still $-\infty$. simple_llm returns zeros for such a query.

# %%
blocked = torch.full((4,), float("-inf"))  # the scores of a query that may see no key
print("softmax of a row of -inf:", blocked.softmax(dim=-1).tolist())
q9, k4, v4 = torch.randn(9, 8), torch.randn(4, 8), torch.randn(4, 8)  # (T_q, hs), (T_k, hs), (T_k, hs)
out9 = tiled_attention(q9, k4, v4, is_causal=True, block_size=4)  # queries 0..4 come before every key
assert not out9.isnan().any() and (out9[:5] == 0).all()
print("tiled_attention, queries 0..4 without keys: zeros, no NaN:", bool((out9[:5] == 0).all()))

# %% [markdown]
# PyTorch's own modules disagree here. `F.scaled_dot_product_attention` (torch 2.13) returns zeros for a query with no allowed key, with its math kernel and with its flash kernel alike; `nn.MultiheadAttention` returns NaN for it. Query 2 below may see no key:

# %%
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

no_key = torch.ones(4, 4, dtype=torch.bool).tril()  # (T, T): True = may attend
no_key[2] = False  # query 2 may see no key
q4, k4, v4 = torch.randn(3, 1, 1, 4, 8).float().unbind(0)  # (B, H, T, hs) each
for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
    with sdpa_kernel(backend):
        row = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=no_key)[0, 0, 2]  # (hs,)
    print(f"scaled_dot_product_attention, {backend.name}: query 2 all zeros:", bool((row == 0).all()))
torch_mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).float().eval()
x4 = torch.randn(1, 4, 8).float()  # (B, T, C)
with torch.no_grad():
    # True = masked out in nn.MultiheadAttention
    out4 = torch_mha(x4, x4, x4, attn_mask=~no_key, need_weights=False)[0]  # (B, T, C)
    row = out4[0, 2]  # (C,)
print("nn.MultiheadAttention: query 2 all NaN:", bool(row.isnan().all()))
