"""Position-wise feed-forward block: Linear, ReLU, Linear, dropout."""

from __future__ import annotations

import torch
import torch.nn as nn

from simple_llm._checks import check_dropout, check_input, check_size
from simple_llm.interop import feed_forward_hook


class FeedForward(nn.Module):
    """Position-wise feed-forward block ``dropout(down(relu(up(x))))``.

    The activation is what makes the block more than one linear map: without it,
    ``W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`` is a single linear layer.

    Args:
        emb_size: Embedding size ``C``; the hidden size is ``4 * C``.
        dropout: Dropout probability on the output. Default: ``0.1``.

    Shape:
        - x: ``(B, T, C)``, float.
        - output: ``(B, T, C)``.

    Examples:
        >>> import torch
        >>> ff = FeedForward(emb_size=64)
        >>> ff(torch.randn(2, 5, 64)).shape
        torch.Size([2, 5, 64])
    """

    def __init__(self, emb_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_size("emb_size", emb_size)
        check_dropout(dropout)
        self.emb_size = emb_size
        self.register_load_state_dict_pre_hook(feed_forward_hook)  # the original project's keys
        # --8<-- [start:layers]
        self.up = nn.Linear(emb_size, 4 * emb_size)
        self.activation = nn.ReLU()
        self.down = nn.Linear(4 * emb_size, emb_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to every position of ``x``."""
        check_input(x, self.emb_size, like=self.up.weight)
        return self.dropout(self.down(self.activation(self.up(x))))  # (B, T, C)
        # --8<-- [end:layers]
