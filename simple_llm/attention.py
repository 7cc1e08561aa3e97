"""Scaled dot-product attention: the formula written out, and the one function that picks the kernel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simple_llm.masks import causal_after, combine_masks


# --8<-- [start:attend]
def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor,
    keep: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention written out, returning the weights too.

    Args:
        q: Queries ``(..., T, hs)``.
        k: Keys ``(..., T, hs)``.
        v: Values ``(..., T, hs)``.
        allowed: Bool mask broadcastable to ``(..., T, T)``, ``True`` = may attend; every row
            has at least one ``True``.
        keep: ``None``, or bool ``(..., T, 1)``: ``False`` rows get zero weights.

    Returns:
        ``(out, weights)`` of shapes ``(..., T, hs)`` and ``(..., T, T)``, in the dtype of ``q``.
        float16 and bfloat16 are computed in float32, as SDPA's kernels do: an unscaled float16
        score ``q . k`` overflows past 65,504.
    """
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T, T)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # (..., T, T)
    if keep is not None:
        weights = weights.masked_fill(~keep, 0.0)
    return (weights @ v).to(dtype), weights.to(dtype)  # (..., T, hs), (..., T, T)


# --8<-- [end:attend]


# --8<-- [start:dispatch]
def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    return_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal attention of ``H`` query heads over ``H_kv`` key/value heads: the one place that picks the kernel.

    The ``T`` queries are the last ``T`` of the ``T_k`` keys (``start = T_k - T`` positions come
    from a cache), so query ``t`` sees keys ``0 .. start+t``. Without a mask and without weights
    the work goes to ``F.scaled_dot_product_attention`` (SDPA): with ``is_causal=True`` when
    ``start == 0``, with no mask for a single new query, with the bottom-right mask
    ``causal_after`` otherwise (``is_causal`` aligns top-left when ``T != T_k``, pytorch#108108).
    A user mask goes to SDPA combined with the causal one; ``return_weights=True`` takes the
    explicit path, ``attend``, which materialises the weights.

    Args:
        q: Queries ``(B, H, T, hs)``.
        k: Keys ``(B, H_kv, T_k, hs)``, ``H_kv`` dividing ``H``; query head ``h`` reads key/value
            head ``h // (H // H_kv)``.
        v: Values ``(B, H_kv, T_k, hs)``.
        mask: Optional user mask, ``True``/1 = may attend (shapes: ``simple_llm.masks``); only
            with ``T == T_k``. Default: ``None``.
        return_weights: Also return the weights ``(B, H, T, T_k)``. Default: ``False``.

    Returns:
        ``(out, weights)``: ``out`` ``(B, H, T, hs)``; ``weights`` is ``None`` unless
        ``return_weights``. A query that may attend to no key outputs zeros.

    Examples:
        >>> import torch
        >>> q, k, v = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
        >>> out, weights = causal_attention(q, k, v, return_weights=True)  # 3 new queries, 2 cached keys
        >>> out.shape, weights.shape
        (torch.Size([1, 4, 3, 8]), torch.Size([1, 4, 3, 5]))
        >>> weights[0, 0].gt(0).int()  # query t sees keys 0 .. 2+t
        tensor([[1, 1, 1, 0, 0],
                [1, 1, 1, 1, 0],
                [1, 1, 1, 1, 1]], dtype=torch.int32)
        >>> torch.allclose(causal_attention(q, k, v)[0], out, atol=1e-6)
        True
    """
    B, H, T, _ = q.shape
    H_kv, T_k = k.size(1), k.size(2)
    start = T_k - T
    gqa = H_kv != H  # SDPA repeats each key/value head for its group of query heads
    if mask is None and not return_weights:
        if start == 0:  # T == T_k: the top-left causal mask of is_causal is the right one
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)  # (B, H, T, hs)
        elif T == 1:  # one new query sees every cached key: no mask at all
            y = F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)  # (B, H, 1, hs)
        else:  # is_causal=True would align top-left (pytorch#108108): pass the mask explicitly
            allowed = causal_after(T, start, q.device)  # (T, T_k)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=gqa)  # (B, H, T, hs)
        return y, None
    if start == 0:
        allowed, keep = combine_masks(mask, B, T, H, q.device)  # (B|1, H|1, T, T)
    elif mask is None:
        allowed, keep = causal_after(T, start, q.device), None  # (T, T_k)
    else:
        raise ValueError(f"a mask needs as many queries as keys, got T={T} queries and T_k={T_k} keys")
    if return_weights:
        g = H // H_kv
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # (B, H, T_k, hs)
        return attend(q, k, v, allowed, keep)  # (B, H, T, hs), (B, H, T, T_k)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=gqa)  # (B, H, T, hs)
    return (y if keep is None else y.masked_fill(~keep, 0.0)), None


# --8<-- [end:dispatch]
