"""Scaled dot-product attention: the formula written out, and the one function that picks the kernel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simple_llm.masks import band_mask, causal_after, check_window, combine_masks


# --8<-- [start:attend]
def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor,
    keep: torch.Tensor | None,
    *,
    bias: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention written out, returning the weights too.

    Args:
        q: Queries ``(..., T, hs)``.
        k: Keys ``(..., T, hs)``.
        v: Values ``(..., T, hs)``.
        allowed: Bool mask broadcastable to ``(..., T, T)``, ``True`` = may attend; every row
            has at least one ``True``.
        keep: ``None``, or bool ``(..., T, 1)``: ``False`` rows get zero weights.
        bias: Optional float tensor broadcastable to ``(..., T, T)`` added to the scaled scores
            (ALiBi's ``-m * (t - j)``). Default: ``None``.
        scale: Factor on ``q . k``. Default: ``None``, meaning ``1 / sqrt(hs)`` with ``hs`` from ``q``.

    Returns:
        ``(out, weights)`` of shapes ``(..., T, hs)`` and ``(..., T, T)``, in the dtype of ``q``.
        float16 and bfloat16 are computed in float32, as SDPA's kernels do: an unscaled float16
        score ``q . k`` overflows past 65,504.
    """
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
    scores = q @ k.transpose(-2, -1)  # (..., T, T)
    scores = scores / math.sqrt(q.size(-1)) if scale is None else scores * scale
    if bias is not None:
        scores = scores + bias.to(scores.dtype)  # (..., T, T)
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
    *,
    window: int | None = None,
    sink_tokens: int = 0,
    slopes: torch.Tensor | None = None,
    key_positions: torch.Tensor | None = None,
    q_sink: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal attention of ``H`` query heads over ``H_kv`` key/value heads: the one place that picks the kernel.

    The ``T`` queries are the last ``T`` of the ``T_k`` keys (``start = T_k - T`` positions come
    from a cache), so query ``t`` sees keys ``0 .. start+t``. Without a mask and without weights
    the work goes to ``F.scaled_dot_product_attention`` (SDPA): with ``is_causal=True`` when
    ``start == 0``, with no mask for a single new query, with the bottom-right mask
    ``causal_after`` otherwise (``is_causal`` aligns top-left when ``T != T_k``, pytorch#108108).
    A user mask goes to SDPA combined with the causal one; ``return_weights=True`` takes the
    explicit path, ``attend``, which materialises the weights.

    Long context: a ``window`` restricts the causal mask to the band of ``simple_llm.masks.band_mask``
    (keys ``p-W+1 .. p`` of the query at position ``p``, plus the ``sink_tokens`` first positions),
    applied on top of a user mask too (a mask cannot widen the window). ``slopes`` adds ALiBi's
    bias ``-m_h * (p - j)`` to head ``h``'s score of the key at position ``j``: a float
    ``attn_mask`` for SDPA, ``bias`` for ``attend``. With sinks, the distance from a query to a
    sink key is measured as StreamingLLM does, from the query's place in a cache of ``S + W``
    positions: ``min(p, S+W-1) - j``; ``q_sink`` gives the queries rotated at ``min(p, S+W-1)``
    for the same rule with RoPE (the sink keys' scores use them: ``q`` and ``q_sink`` are
    concatenated against keys zeroed in the half that does not apply to them).

    Args:
        q: Queries ``(B, H, T, hs)``.
        k: Keys ``(B, H_kv, T_k, hs)``, ``H_kv`` dividing ``H``; query head ``h`` reads key/value
            head ``h // (H // H_kv)``.
        v: Values ``(B, H_kv, T_k, hs)``.
        mask: Optional user mask, ``True``/1 = may attend (shapes: ``simple_llm.masks``); only
            with ``T == T_k``. Default: ``None``.
        return_weights: Also return the weights ``(B, H, T, T_k)``. Default: ``False``.
        window: Sliding window ``W``: a query sees its ``W`` latest keys, itself included.
            Default: ``None`` (no window).
        sink_tokens: Number ``S`` of first positions every query sees too, ``0 <= S < W``; only
            with ``window``. Default: ``0``.
        slopes: ALiBi slopes ``(H,)`` (``simple_llm.alibi_slopes``). Default: ``None``.
        key_positions: Positions ``(T_k,)`` (int64) of the keys, the queries being the last
            ``T`` of them (a ``RollingKVCache`` drops positions). Default: ``None``, meaning
            ``0 .. T_k-1``.
        q_sink: Queries ``(B, H, T, hs)`` rotated at ``min(p, S+W-1)`` instead of ``p``, for the
            scores of the sink keys (RoPE with ``sink_tokens``). Default: ``None``.

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
        >>> causal_attention(q, k, v, return_weights=True, window=2)[1][0, 0].gt(0).int()
        tensor([[0, 1, 1, 0, 0],
                [0, 0, 1, 1, 0],
                [0, 0, 0, 1, 1]], dtype=torch.int32)
    """
    B, H, T, hs = q.shape
    H_kv, T_k = k.size(1), k.size(2)
    start = T_k - T
    gqa = H_kv != H  # SDPA repeats each key/value head for its group of query heads
    long_context = window is not None or slopes is not None or key_positions is not None or q_sink is not None
    if mask is None and not return_weights and not long_context:
        if start == 0:  # T == T_k: the top-left causal mask of is_causal is the right one
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)  # (B, H, T, hs)
        elif T == 1:  # one new query sees every cached key: no mask at all
            y = F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)  # (B, H, 1, hs)
        else:  # is_causal=True would align top-left (pytorch#108108): pass the mask explicitly
            allowed = causal_after(T, start, q.device)  # (T, T_k)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=gqa)  # (B, H, T, hs)
        return y, None
    bias, scale = None, None
    if long_context:  # the band of a window, ALiBi's bias, the sinks' queries (hs -> 2*hs)
        allowed, keep, bias, q, k, scale = _long_context_terms(
            q, k, mask, window, sink_tokens, slopes, key_positions, q_sink
        )  # (B|1, H|1, T, T_k), (B|1, H|1, T, 1) or None, (H, T, T_k) or None
    elif start == 0:
        allowed, keep = combine_masks(mask, B, T, H, q.device)  # (B|1, H|1, T, T)
    elif mask is None:
        allowed, keep = causal_after(T, start, q.device), None  # (T, T_k)
    else:
        raise ValueError(f"a mask needs as many queries as keys, got T={T} queries and T_k={T_k} keys")
    if return_weights:
        g = H // H_kv
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # (B, H, T_k, hs)
        return attend(q, k, v, allowed, keep, bias=bias, scale=scale)  # (B, H, T, hs), (B, H, T, T_k)
    if bias is not None:  # an additive float mask: the bias where allowed, -inf elsewhere
        allowed = bias.masked_fill(~allowed, float("-inf")).to(q.dtype)  # (B|1, H, T, T_k)
    y = F.scaled_dot_product_attention(
        q, k, v, attn_mask=allowed, scale=scale, enable_gqa=gqa
    )  # (B, H, T, hs)
    return (y if keep is None else y.masked_fill(~keep, 0.0)), None


# --8<-- [end:dispatch]


def _long_context_terms(
    q: torch.Tensor,
    k: torch.Tensor,
    mask: torch.Tensor | None,
    window: int | None,
    sink_tokens: int,
    slopes: torch.Tensor | None,
    key_positions: torch.Tensor | None,
    q_sink: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor, float | None]:
    """The band mask, ALiBi's bias and the sink queries of ``causal_attention``, checked.

    Returns:
        ``(allowed, keep, bias, q, k, scale)``: ``allowed`` bool broadcastable to
        ``(B, H, T, T_k)``, every row with a ``True``; ``keep`` ``None`` or ``(B|1, H|1, T, 1)``
        (``False``: the row is masked out); ``bias`` ``None`` or ``(H, T, T_k)``; ``q`` and ``k``
        with the sink half concatenated when ``q_sink`` is given, and then ``scale = 1/sqrt(hs)``
        (else ``None``).
    """
    B, H, T, hs = q.shape
    T_k = k.size(2)
    start = T_k - T
    check_window(window, sink_tokens)
    if key_positions is None:
        key_positions = torch.arange(T_k, device=q.device)  # (T_k,)
    elif not isinstance(key_positions, torch.Tensor) or tuple(key_positions.shape) != (T_k,):
        raise ValueError(
            f"key_positions must be a tensor of shape (T_k,)=({T_k},), got {key_positions!r:.80}"
        )
    query_positions = key_positions[start:]  # (T,): the queries are the last T keys
    allowed = band_mask(query_positions, key_positions, window, sink_tokens)  # (T, T_k)
    keep = None
    if mask is not None:
        if start != 0:
            raise ValueError(f"a mask needs as many queries as keys, got T={T} queries and T_k={T_k} keys")
        user, user_keep = combine_masks(mask, B, T, H, q.device)  # (B|1, H|1, T, T)
        allowed = user & allowed if user_keep is None else user & user_keep & allowed  # (B|1, H|1, T, T)
        keep = allowed.any(dim=-1, keepdim=True)  # (B|1, H|1, T, 1)
        allowed = allowed | ~keep  # a row left with no key attends to all, then is zeroed
    bias = None
    if slopes is not None:
        if not isinstance(slopes, torch.Tensor) or tuple(slopes.shape) != (H,):
            raise ValueError(f"slopes must be a tensor of shape (H,)=({H},), got {slopes!r:.80}")
        work = torch.float64 if q.dtype == torch.float64 else torch.float32
        distance = (query_positions[:, None] - key_positions[None, :]).to(work)  # (T, T_k)
        if sink_tokens and window is not None:  # StreamingLLM: at most S+W-1 from query to a sink
            nearest = query_positions.clamp(max=sink_tokens + window - 1)  # (T,)
            to_sink = (nearest[:, None] - key_positions[None, :]).to(work)  # (T, T_k)
            distance = torch.where(key_positions[None, :] < sink_tokens, to_sink, distance)  # (T, T_k)
        bias = -slopes.to(work)[:, None, None] * distance  # (H, T, T_k)
    scale = None
    if q_sink is not None:
        if not sink_tokens:
            raise ValueError("q_sink needs sink_tokens > 0")
        if q_sink.shape != q.shape:
            raise ValueError(f"q_sink must have the shape of q {tuple(q.shape)}, got {tuple(q_sink.shape)}")
        is_sink = (key_positions < sink_tokens).to(k.dtype)[:, None]  # (T_k, 1)
        q = torch.cat([q, q_sink], dim=-1)  # (B, H, T, 2*hs): the second half scores the sinks
        k = torch.cat([k * (1 - is_sink), k * is_sink], dim=-1)  # (B, H_kv, T_k, 2*hs)
        scale = 1 / math.sqrt(hs)
    return allowed, keep, bias, q, k, scale
