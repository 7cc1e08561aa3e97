"""Model solutions of the exercises, one function per task (the book shows them collapsed, answer first)."""

from __future__ import annotations

import math

import torch


# --8<-- [start:attention]
def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention: ``(out, weights)``; mask True = may attend."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # before the softmax
    weights = scores.softmax(dim=-1)  # (B, H, T_q, T_k): each row sums to 1
    return weights @ v, weights  # (B, H, T_q, hs), (B, H, T_q, T_k)


# --8<-- [end:attention]


# --8<-- [start:causal_mask]
def causal_mask(T: int) -> torch.Tensor:
    """``(T, T)`` bool: query t may see keys 0..t, itself included."""
    return torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)


# --8<-- [end:causal_mask]


# --8<-- [start:multi_head_attention]
def multi_head_attention(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    b_qkv: torch.Tensor,
    w_o: torch.Tensor,
    b_o: torch.Tensor,
    num_heads: int,
    causal: bool = True,
) -> torch.Tensor:
    """Multi-head self-attention ``(B, T, C) -> (B, T, C)``: project, split, attend, merge, project."""
    B, T, C = x.shape
    hs = C // num_heads
    q, k, v = (x @ w_qkv.T + b_qkv).split(C, dim=-1)  # (B, T, C) each: project first
    q, k, v = (t.view(B, T, num_heads, hs).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
    mask = causal_mask(T) if causal else None
    y, _ = attention(q, k, v, mask)  # (B, H, T, hs)
    y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): transpose before merging
    return y @ w_o.T + b_o  # (B, T, C)


# --8<-- [end:multi_head_attention]


# --8<-- [start:rope]
def rope(x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Rotary positions, rotate_half convention, base 10000: row t of ``x`` is position ``start + t``."""
    T, hs = x.size(-2), x.size(-1)
    p = torch.arange(start, start + T, dtype=x.dtype)  # (T,)
    freq = 10000.0 ** (-torch.arange(0, hs, 2, dtype=x.dtype) / hs)  # (hs/2,)
    angles = (p[:, None] * freq).repeat(1, 2)  # (T, hs): coordinate i and i + hs/2 share an angle
    x1, x2 = x.chunk(2, dim=-1)  # (..., T, hs/2) each
    return x * angles.cos() + torch.cat([-x2, x1], dim=-1) * angles.sin()  # (..., T, hs)


# --8<-- [end:rope]


# --8<-- [start:tiled_attention]
def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int) -> torch.Tensor:
    """Attention by the online softmax over key blocks: no ``(T_q, T_k)`` matrix."""
    q = q / math.sqrt(q.size(-1))
    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype)  # (B, H, T_q) running maximum
    d = torch.zeros(q.shape[:-1], dtype=q.dtype)  # (B, H, T_q) running sum of exponentials
    o = torch.zeros_like(q)  # (B, H, T_q, hs) running output
    for j in range(0, k.size(-2), block_size):
        s = q @ k[..., j : j + block_size, :].transpose(-2, -1)  # (B, H, T_q, Bk) one tile
        m_new = torch.maximum(m, s.amax(dim=-1))  # (B, H, T_q)
        p = torch.exp(s - m_new[..., None])  # (B, H, T_q, Bk)
        alpha = torch.exp(m - m_new)  # (B, H, T_q): rescales what was summed under the old maximum
        d = alpha * d + p.sum(dim=-1)
        o = alpha[..., None] * o + p @ v[..., j : j + block_size, :]  # (B, H, T_q, hs)
        m = m_new
    return o / d[..., None]  # (B, H, T_q, hs)


# --8<-- [end:tiled_attention]
