"""One causal attention head with its own query, key and value projections."""

from __future__ import annotations

import torch
import torch.nn as nn

from simple_llm._checks import check_input, check_size
from simple_llm._original import head_attention_hook
from simple_llm.attention import attend
from simple_llm.masks import combine_masks


class HeadAttention(nn.Module):
    """One causal self-attention head.

    Args:
        emb_size: Embedding size ``C`` of the input.
        head_size: Size ``hs`` of the queries, keys and values.
        max_seq_len: Longest sequence ``T`` accepted.

    Shape:
        - x: ``(B, T, C)``, float.
        - mask: optional, ``True``/1 = may attend; ``(T, T)``, ``(B, T)``, ``(B, 1, T)`` or
          ``(B, T, T)`` (see ``simple_llm.masks``). The causal mask is always applied.
        - output: ``(B, T, hs)``.

    Examples:
        >>> import torch
        >>> head = HeadAttention(emb_size=64, head_size=16, max_seq_len=32)
        >>> head(torch.randn(2, 5, 64)).shape
        torch.Size([2, 5, 16])
        >>> head.get_attention_weights(torch.randn(2, 5, 64)).shape
        torch.Size([2, 5, 5])
    """

    # --8<-- [start:head-methods]
    def __init__(self, emb_size: int, head_size: int, max_seq_len: int) -> None:
        super().__init__()
        check_size("emb_size", emb_size)
        check_size("head_size", head_size)
        check_size("max_seq_len", max_seq_len)
        self.emb_size = emb_size
        self.head_size = head_size
        self.max_seq_len = max_seq_len
        self.q_proj = nn.Linear(emb_size, head_size)
        self.k_proj = nn.Linear(emb_size, head_size)
        self.v_proj = nn.Linear(emb_size, head_size)
        self.register_load_state_dict_pre_hook(head_attention_hook)  # the original project's keys

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T = check_input(x, self.emb_size, self.max_seq_len)
        allowed, keep = combine_masks(mask, B, T, 1, x.device)  # (B|1, 1, T, T)
        keep = None if keep is None else keep[:, 0]  # (B|1, T, 1)
        return attend(self.q_proj(x), self.k_proj(x), self.v_proj(x), allowed[:, 0], keep)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend causally over ``x``; returns ``(B, T, hs)``."""
        return self._attend(x, mask)[0]

    def get_attention_weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``(B, T, T)``: row ``t`` holds the weights of query ``t`` over the keys."""
        return self._attend(x, mask)[1]

    # --8<-- [end:head-methods]
