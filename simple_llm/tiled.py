"""FlashAttention's tiled online softmax in plain PyTorch: attention without the (T, T) matrix.

Queries are taken in blocks of ``block_size`` rows, and for each block the keys and values are
visited in blocks of ``block_size`` too. Per query the loop keeps a running maximum ``m`` of the
scores seen so far, a running sum ``d`` of their exponentials (taken relative to ``m``) and a
running output ``o`` (the values weighted by those exponentials). When a new key block raises the
maximum, ``d`` and ``o`` are rescaled by ``exp(m_old - m_new)``; after the last key block the
output is ``o / d``. The scores exist only one ``(..., block_size, block_size)`` tile at a time.

The result does not depend on ``m`` (it cancels between ``o`` and ``d``), so ``m`` is a constant
for autograd. Gradients flow through the loop by autograd, which keeps every tile for the backward
pass: training memory is still ``O(T_q * T_k)``. Real kernels recompute the tiles in the backward
pass from the saved log-sum-exp instead.
"""

from __future__ import annotations

import math

import torch

from simple_llm._checks import check_size


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Clear errors for inputs that are not three matching float tensors ``(..., T, hs)``."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (..., T, hs), got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
        if t.dim() < 2:
            raise ValueError(
                f"{name} must have at least 2 dimensions (..., T, hs), got shape {tuple(t.shape)}"
            )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must have the same dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v must be on the same device, got {q.device}, {k.device} and {v.device}")
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(
            f"q, k and v must have the same leading dimensions (...), got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}"
        )
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k must have the same head size hs, got {q.size(-1)} and {k.size(-1)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v must have the same length T_k, got {k.size(-2)} and {v.size(-2)}")
    if q.size(-2) == 0 or k.size(-2) == 0:
        raise ValueError(
            f"q and k must hold at least one position, got shapes {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if q.size(-1) == 0:
        raise ValueError(
            f"q and k must have head size hs >= 1, got shapes {tuple(q.shape)} and {tuple(k.shape)}"
        )


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    is_causal: bool = False,
    block_size: int = 64,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention computed block by block with the online softmax.

    Equal to ``F.scaled_dot_product_attention(q, k, v)`` (scale ``1/sqrt(hs)``) without the
    ``(..., T_q, T_k)`` matrix: queries are taken in blocks of ``block_size`` rows and, for each,
    keys and values in blocks of ``block_size``, so the scores exist one
    ``(..., block_size, block_size)`` tile at a time.
    float16 and bfloat16 inputs are computed in float32, float32 in float32, float64 in float64;
    the output has the input dtype.

    With ``is_causal=True`` the mask is aligned to the bottom right: query ``i`` is at position
    ``T_k - T_q + i`` and sees the keys up to it (for ``T_q == T_k`` this is the usual lower
    triangle and equals SDPA's ``is_causal=True``; for ``T_q < T_k`` it is what decoding with a
    key-value cache needs, like ``torch.nn.attention.bias.causal_lower_right``). Key blocks that
    lie entirely after every query of a block are skipped. When ``T_q > T_k`` the first
    ``T_q - T_k`` queries see no key: their output is zeros and their log-sum-exp is ``-inf``.

    Args:
        q: Queries ``(..., T_q, hs)``.
        k: Keys ``(..., T_k, hs)``.
        v: Values ``(..., T_k, hs_v)``.
        is_causal: Apply the causal mask (bottom-right aligned). Default: ``False``.
        block_size: Rows per query block and per key block, a positive int. Default: 64.
        return_lse: Also return the log-sum-exp of each query's scaled scores. Default: ``False``.

    Returns:
        The output ``(..., T_q, hs_v)`` in the input dtype; with ``return_lse=True`` the pair
            ``(output, lse)``, ``lse`` of shape ``(..., T_q)`` in the computation dtype (float32
            or float64).

    Shape:
        With the package's legend: ``(B, H, T, hs)`` in, ``(B, H, T, hs)`` out.

    Examples:
        >>> import torch.nn.functional as F
        >>> q, k, v = torch.randn(3, 2, 4, 10, 8, dtype=torch.float64).unbind(0)  # (B, H, T, hs)
        >>> out = tiled_attention(q, k, v, is_causal=True, block_size=4)
        >>> out.shape
        torch.Size([2, 4, 10, 8])
        >>> torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
        True
    """
    # --8<-- [start:tiled]
    _check_qkv(q, k, v)
    check_size("block_size", block_size)
    for name, flag in (("is_causal", is_causal), ("return_lse", return_lse)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r} ({type(flag).__name__})")
    compute = torch.float64 if q.dtype == torch.float64 else torch.float32
    T_q, T_k, scale = q.size(-2), k.size(-2), 1.0 / math.sqrt(q.size(-1))
    shift = T_k - T_q  # bottom-right alignment: query i sits at key position i + shift
    out = q.new_empty((*q.shape[:-1], v.size(-1)))  # (..., T_q, hs_v), in the input dtype
    lse = q.new_empty(q.shape[:-1], dtype=compute)  # (..., T_q)
    for i0 in range(0, T_q, block_size):
        i1 = min(i0 + block_size, T_q)
        q_blk = q[..., i0:i1, :].to(compute) * scale  # (..., Bq, hs)
        m = q_blk.new_full(q_blk.shape[:-1], float("-inf"))  # (..., Bq) running maximum
        d = q_blk.new_zeros(q_blk.shape[:-1])  # (..., Bq) running sum of exponentials
        o = q_blk.new_zeros((*q_blk.shape[:-1], v.size(-1)))  # (..., Bq, hs_v) running output
        k_end = min(T_k, i1 + shift) if is_causal else T_k  # keys after this are seen by no query here
        for j0 in range(0, max(k_end, 0), block_size):
            j1 = min(j0 + block_size, T_k)
            s = q_blk @ k[..., j0:j1, :].to(compute).transpose(-2, -1)  # (..., Bq, Bk) one tile
            if is_causal and j1 - 1 > i0 + shift:  # the tile crosses the diagonal
                rows = torch.arange(i0, i1, device=q.device)[:, None] + shift  # (Bq, 1)
                s = s.masked_fill(torch.arange(j0, j1, device=q.device) > rows, float("-inf"))
            m_new = torch.maximum(m, s.detach().amax(dim=-1))  # (..., Bq); a constant for autograd
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)  # no key yet: avoid (-inf) - (-inf)
            p = torch.exp(s - m_safe[..., None])  # (..., Bq, Bk)
            alpha = torch.exp(m - m_safe)  # (..., Bq) rescales what was summed under the old maximum
            d = alpha * d + p.sum(dim=-1)  # (..., Bq)
            o = alpha[..., None] * o + p @ v[..., j0:j1, :].to(compute)  # (..., Bq, hs_v)
            m = m_new
        empty = d == 0  # a query that saw no key
        d_safe = d.masked_fill(empty, 1.0)  # (..., Bq)
        out[..., i0:i1, :] = o / d_safe[..., None]  # (..., Bq, hs_v), zeros for a query with no key
        lse[..., i0:i1] = torch.where(empty, float("-inf"), m + torch.log(d_safe))  # (..., Bq)
    return (out, lse) if return_lse else out
    # --8<-- [end:tiled]
