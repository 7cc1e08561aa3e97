"""Attention masks: key padding from lengths, the causal mask combined with a user mask, and after a cache.

Polarity in this package: ``True`` (or ``1``) means "may attend". This is the convention of
``F.scaled_dot_product_attention`` and the opposite of ``nn.MultiheadAttention``, whose
``attn_mask`` and ``key_padding_mask`` use ``True`` for "masked out".

Accepted user mask shapes, checked in this order:

- ``(T, T)``: one pattern for every batch item and head (queries x keys).
- ``(B, T)``: key padding, one flag per key. When ``B == T`` a 2-D mask is read as the
  ``(T, T)`` pattern above; pass key padding as ``(B, 1, T)`` to be unambiguous.
- ``(B, 1, T)``: key padding.
- ``(B, T, T)``: one pattern per batch item.
- ``(B, H, T, T)``: one pattern per batch item and head.

The causal mask is always applied on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from simple_llm._checks import check_size


def padding_mask(lengths: torch.Tensor | Sequence[int], max_len: int | None = None) -> torch.Tensor:
    """Key-padding mask from sequence lengths (sequences padded at the end).

    Args:
        lengths: ``(B,)`` integer tensor or a sequence of ints, each in ``[0, max_len]``.
        max_len: Length ``T`` of the padded batch. Default: ``None`` (the largest length).

    Returns:
        ``(B, T)`` bool tensor, ``True`` for a real token (may be attended to).

    Examples:
        >>> padding_mask([3, 1], max_len=4)
        tensor([[ True,  True,  True, False],
                [ True, False, False, False]])
    """
    if not isinstance(lengths, torch.Tensor):
        if not isinstance(lengths, (list, tuple)) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in lengths
        ):
            raise TypeError(f"lengths must be a 1-D integer tensor or a sequence of ints, got {lengths!r}")
        if any(not 0 <= n < 2**63 for n in lengths):
            raise ValueError(f"lengths must be >= 0 (and fit in int64), got {list(lengths)}")
        lengths = torch.tensor(lengths, dtype=torch.long)
    elif lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths must have an integer dtype, got {lengths.dtype}")
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths must be 1-D and non-empty, got shape {tuple(lengths.shape)}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    if max_len is None:
        max_len = longest
    elif isinstance(max_len, bool) or not isinstance(max_len, int):
        raise TypeError(f"max_len must be an int or None, got {max_len!r}")
    if max_len < max(longest, 1):
        raise ValueError(f"max_len={max_len} must be >= 1 and >= the longest length {longest}")
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]  # (B, T)


def combine_masks(
    mask: torch.Tensor | None, batch_size: int, seq_len: int, num_heads: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check a user mask, bring it to 4-D and combine it with the causal mask.

    Validates the mask's type, device, values and shape (naming what was expected; the values of
    an int or float mask are not checked on the meta device, which has none), views it as
    ``(B|1, H|1, T, T)``, ANDs it with the causal mask, and marks the query rows left with no key.

    Args:
        mask: ``None`` or a user mask (see the module docstring for shapes and polarity).
        batch_size: ``B``.
        seq_len: ``T``.
        num_heads: ``H``.
        device: Device of the attention input; the mask must be on it.

    Returns:
        ``(allowed, keep)``: ``allowed`` is a 4-D bool mask broadcastable to ``(B, H, T, T)``,
        ``True`` = may attend. A query row that may attend to no key is set to all ``True`` so
        that softmax stays finite; ``keep`` (broadcastable to ``(B, H, T, 1)``) is ``False`` on
        exactly those rows, whose output must be zeroed. ``keep`` is ``None`` when no row is
        fully masked by construction (``mask is None``).
    """
    B, T, H = batch_size, seq_len, num_heads
    causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
    if mask is None:
        return causal.view(1, 1, T, T), None  # (1, 1, T, T)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.device != device:
        raise ValueError(f"mask is on {mask.device} but x is on {device}; move it with mask.to(x.device)")
    if mask.dtype != torch.bool:
        bad = (mask != 0) & (mask != 1)
        if mask.device.type != "meta" and bad.any():  # a meta tensor has no values to check
            raise ValueError(
                f"mask must be bool or contain only 0 and 1 (True/1 = may attend), found the value "
                f"{mask[bad][0].item()!r}; convert an additive mask (0 = attend, -inf = blocked) "
                f"with mask = additive_mask == 0"
            )
        mask = mask != 0
    # --8<-- [start:combine]
    shape = tuple(mask.shape)
    if shape == (T, T):
        mask = mask.view(1, 1, T, T)  # (1, 1, T, T)
    elif shape == (B, T) or shape == (B, 1, T):
        mask = mask.view(B, 1, 1, T)  # (B, 1, 1, T)
    elif shape == (B, T, T):
        mask = mask.view(B, 1, T, T)  # (B, 1, T, T)
    elif shape != (B, H, T, T):
        raise ValueError(
            f"mask has shape {shape}; expected (T, T)={(T, T)}, (B, T)={(B, T)}, "
            f"(B, 1, T)={(B, 1, T)}, (B, T, T)={(B, T, T)} or (B, H, T, T)={(B, H, T, T)}"
        )
    allowed = mask & causal  # (B|1, H|1, T, T)
    keep = allowed.any(dim=-1, keepdim=True)  # (B|1, H|1, T, 1)
    return allowed | ~keep, keep
    # --8<-- [end:combine]


def causal_after(T: int, start: int, device: torch.device | None = None) -> torch.Tensor:
    """Causal mask of ``T`` queries at positions ``start .. start+T-1`` over keys ``0 .. start+T-1``.

    Aligned to the bottom right: query ``t`` may attend to keys ``0 .. start+t``. (With
    ``T_q != T_k``, ``scaled_dot_product_attention(is_causal=True)`` aligns its mask to the top
    left instead, pytorch#108108: a one-token query would see key 0 only.)

    Returns:
        Bool ``(T, start+T)``, ``True`` = may attend.

    Examples:
        >>> causal_after(2, 3).int()
        tensor([[1, 1, 1, 1, 0],
                [1, 1, 1, 1, 1]], dtype=torch.int32)
    """
    check_size("T", T)
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    return torch.ones(T, start + T, dtype=torch.bool, device=device).tril(diagonal=start)  # (T, T_k)


def check_window(window: object, sink_tokens: object) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the value unless ``window`` and ``sink_tokens`` fit together.

    ``window`` is ``None`` or an ``int >= 1`` (not a ``bool``); ``sink_tokens`` an ``int`` in
    ``[0, window)``, and ``0`` when ``window`` is ``None``.
    """
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, int):
            raise TypeError(f"window must be an int >= 1 or None, got {window!r} ({type(window).__name__})")
        if window < 1:
            raise ValueError(f"window must be an int >= 1 or None, got {window!r}")
    if isinstance(sink_tokens, bool) or not isinstance(sink_tokens, int):
        raise TypeError(
            f"sink_tokens must be an int >= 0, got {sink_tokens!r} ({type(sink_tokens).__name__})"
        )
    if sink_tokens < 0:
        raise ValueError(f"sink_tokens must be an int >= 0, got {sink_tokens!r}")
    if window is None and sink_tokens:
        raise ValueError(f"sink_tokens={sink_tokens} needs a window (sinks are kept besides the window)")
    if window is not None and sink_tokens >= window:
        raise ValueError(f"sink_tokens must be < window, got sink_tokens={sink_tokens} and window={window}")


def band_mask(
    query_positions: torch.Tensor, key_positions: torch.Tensor, window: int | None, sink_tokens: int = 0
) -> torch.Tensor:
    """Causal mask of queries over keys at the given positions, restricted to a window and sinks.

    Query at position ``p`` may attend to the key at position ``j`` if ``j <= p`` and, with a
    ``window``, ``j > p - window`` or ``j < sink_tokens``.

    Args:
        query_positions: ``(T,)`` integer positions of the queries.
        key_positions: ``(T_k,)`` integer positions of the keys.
        window: ``None`` (causal only) or the number ``W`` of latest keys seen, itself included.
        sink_tokens: Number ``S`` of first positions every later query sees too. Default: ``0``.

    Returns:
        Bool ``(T, T_k)``, ``True`` = may attend.
    """
    p, j = query_positions[:, None], key_positions[None, :]  # (T, 1), (1, T_k)
    allowed = j <= p  # (T, T_k)
    if window is not None:
        allowed = allowed & ((j > p - window) | (j < sink_tokens))  # (T, T_k)
    return allowed


def sliding_window_mask(
    T: int, window: int, sink_tokens: int = 0, *, device: torch.device | None = None
) -> torch.Tensor:
    """Band mask ``(T, T)`` of a sliding window (Mistral) with attention sinks (StreamingLLM), ``True`` = may attend.

    Query ``t`` sees keys ``max(0, t-W+1) .. t`` and the sinks ``0 .. S-1`` that are ``<= t``.

    Args:
        T: Number of positions.
        window: Window ``W >= 1``.
        sink_tokens: Number ``S`` of sinks, ``0 <= S < W``. Default: ``0``.
        device: Device of the mask. Default: ``None`` (CPU).

    Examples:
        >>> sliding_window_mask(4, window=2, sink_tokens=1).int()
        tensor([[1, 0, 0, 0],
                [1, 1, 0, 0],
                [1, 1, 1, 0],
                [1, 0, 1, 1]], dtype=torch.int32)
    """
    check_size("T", T)
    if window is None:
        raise TypeError("window must be an int >= 1, got None")
    check_window(window, sink_tokens)
    positions = torch.arange(T, device=device)  # (T,)
    return band_mask(positions, positions, window, sink_tokens)  # (T, T)
