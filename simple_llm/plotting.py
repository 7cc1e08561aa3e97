"""Heatmaps of attention weights, one per head, with labels in Russian or English.

The figures are read on phones: at most two heads per row and a figure at most 6 inches wide
(600 px at matplotlib's 100 dpi), so on a 390-px phone, where the text column is about 358 px,
the smallest label (``MIN_FONT_PT``) is still about 8 CSS px; tests/browser measures it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import matplotlib.figure

MIN_FONT_PT = 10  # the smallest text of a figure: tick labels
MAX_WIDTH_IN = 6.0
_LABELS = {
    "ru": {"head": "Голова {h}", "key": "ключ", "query": "запрос", "weight": "вес внимания"},
    "en": {"head": "Head {h}", "key": "key", "query": "query", "weight": "attention weight"},
}


def _as_heads(weights: torch.Tensor | Sequence[torch.Tensor], batch_index: int) -> torch.Tensor:
    """Turn the accepted inputs into one ``(H, T, T)`` float tensor on the CPU."""
    if isinstance(weights, (list, tuple)):
        if not weights or not all(isinstance(w, torch.Tensor) for w in weights):
            raise TypeError("weights as a list must be a non-empty list of (B, T, T) tensors")
        shapes = {tuple(w.shape) for w in weights}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ValueError(
                f"weights as a list must hold (B, T, T) tensors of one shape, got {sorted(shapes)}"
            )
        weights = torch.stack([w.detach().cpu() for w in weights], dim=1)  # (B, H, T, T)
    elif not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a tensor or a list of tensors, got {type(weights).__name__}")
    if isinstance(batch_index, bool) or not isinstance(batch_index, int):
        raise TypeError(f"batch_index must be an int, got {batch_index!r}")
    if weights.dim() == 3 and batch_index != 0:
        raise ValueError(
            f"batch_index={batch_index} needs (B, H, T, T) weights or a list, got shape {tuple(weights.shape)}"
        )
    if weights.dim() == 4:
        if not -weights.size(0) <= batch_index < weights.size(0):
            raise ValueError(f"batch_index={batch_index} out of range for batch size {weights.size(0)}")
        weights = weights[batch_index]  # (H, T, T)
    if weights.dim() != 3 or weights.size(1) != weights.size(2):
        raise ValueError(
            f"weights must be (H, T, T), (B, H, T, T) or a list of (B, T, T), got shape {tuple(weights.shape)}"
        )
    if weights.numel() == 0:
        raise ValueError(
            f"weights must hold at least one head and one token, got shape {tuple(weights.shape)}"
        )
    if not weights.is_floating_point():
        raise TypeError(f"weights must be a floating-point tensor, got dtype {weights.dtype}")
    weights = weights.detach().cpu().float()  # (H, T, T)
    if not weights.isfinite().all():
        raise ValueError("weights must be finite, got NaN or inf")
    return weights


def plot_attention_heads(
    weights: torch.Tensor | Sequence[torch.Tensor],
    *,
    tokens: Sequence[object] | None = None,
    lang: str = "ru",
    title: str | None = None,
    batch_index: int = 0,
    vmax: float | None = None,
) -> matplotlib.figure.Figure:
    """Plot one attention heatmap per head on a shared colour scale.

    The figure is created with pyplot and closed at once, so pyplot keeps no reference and
    nothing is shown: in a notebook it is displayed exactly once when it is the last expression
    of a cell (with or without ``%matplotlib inline``); elsewhere call ``fig.savefig(...)``.

    Args:
        weights: ``(H, T, T)``, ``(B, H, T, T)``, or a list of per-head ``(B, T, T)`` tensors
            (as ``[head.get_attention_weights(x) for head in mha.heads]``).
        tokens: Optional sequence of ``T`` labels for the query and key ticks. Default: ``None``.
        lang: Label language, ``"ru"`` or ``"en"``. Default: ``"ru"``.
        title: Optional figure title. Default: ``None``.
        batch_index: Batch item to plot for 4-D or list input. Default: ``0``.
        vmax: Top of the shared colour scale; larger weights show in the top colour and the
            colour bar gets an arrow. Default: ``None`` (the largest weight plotted).

    Returns:
        The ``matplotlib.figure.Figure``: up to 2 heads per row, one colour bar.

    Examples:
        >>> import torch
        >>> weights = torch.softmax(torch.randn(2, 3, 3), dim=-1)
        >>> fig = plot_attention_heads(weights, tokens=["a", "b", "c"], lang="en")
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['Head 0', 'Head 1']
    """
    if lang not in _LABELS:
        raise ValueError(f"lang must be 'ru' or 'en', got {lang!r}")
    labels = _LABELS[lang]
    weights = _as_heads(weights, batch_index)  # (H, T, T)
    H, T, _ = weights.shape
    if tokens is not None:
        if not hasattr(tokens, "__len__"):
            raise TypeError(f"tokens must be a sequence of T labels (a list), got {tokens!r:.80}")
        tokens = [str(t) for t in tokens]
        if len(tokens) != T:
            raise ValueError(f"tokens has {len(tokens)} labels, expected T={T}")
    import matplotlib.pyplot as plt

    ncols = min(H, 2)
    nrows = math.ceil(H / ncols)
    side = min(2.6, (MAX_WIDTH_IN - 1.0) / ncols)  # 1 inch for the colour bar
    fig = plt.figure(
        figsize=(side * ncols + 1.0, side * nrows + (0.4 if title else 0.0)), layout="constrained"
    )
    plt.close(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    largest = float(weights.max())
    if vmax is None:
        vmax = largest or 1.0
    elif isinstance(vmax, bool) or not isinstance(vmax, (int, float)):
        raise TypeError(f"vmax must be a number, got {vmax!r}")
    elif not 0.0 < vmax < math.inf:
        raise ValueError(f"vmax must be a positive finite number, got {vmax!r}")
    for h, ax in enumerate(axes.flat):
        if h >= H:
            ax.remove()
            continue
        image = ax.imshow(weights[h].numpy(), vmin=0.0, vmax=vmax, cmap="viridis")
        ax.set_title(labels["head"].format(h=h), fontsize=MIN_FONT_PT + 2)
        ax.set_xlabel(labels["key"], fontsize=MIN_FONT_PT + 1)
        ax.set_ylabel(labels["query"], fontsize=MIN_FONT_PT + 1)
        if tokens is not None:
            ax.set_xticks(range(T), tokens, rotation=90)
            ax.set_yticks(range(T), tokens)
        ax.tick_params(labelsize=MIN_FONT_PT)
    extend = "max" if largest > vmax else "neither"
    bar = fig.colorbar(image, ax=axes.ravel()[:H].tolist(), extend=extend)
    bar.set_label(labels["weight"], fontsize=MIN_FONT_PT + 1)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
    if title is not None:
        fig.suptitle(title, fontsize=MIN_FONT_PT + 3)
    return fig
