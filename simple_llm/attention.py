"""Scaled dot-product attention written out: the formula that every module of the package uses."""

from __future__ import annotations

import math

import torch


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
        ``(out, weights)`` of shapes ``(..., T, hs)`` and ``(..., T, T)``.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T, T)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # (..., T, T)
    if keep is not None:
        weights = weights.masked_fill(~keep, 0.0)
    return weights @ v, weights  # (..., T, hs), (..., T, T)


# --8<-- [end:attend]
