"""One causal attention head: its own Q/K/V projections (``HeadAttention``), or a view into a multi-head module."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from simple_llm._checks import check_input, check_size
from simple_llm.attention import attend
from simple_llm.interop import head_attention_hook
from simple_llm.masks import combine_masks

if TYPE_CHECKING:
    from simple_llm.multi_head_attention import MultiHeadAttention


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
        B, T = check_input(x, self.emb_size, self.max_seq_len, like=self.q_proj.weight)
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


class HeadView:
    """One head of a ``MultiHeadAttention``, read from views of its ``qkv``.

    Not an ``nn.Module``: it owns no parameters, so gradients reach ``mha.qkv`` and in-place
    changes to ``mha.qkv`` are seen at once.
    """

    def __init__(self, mha: MultiHeadAttention, h: int) -> None:
        from simple_llm.multi_head_attention import MultiHeadAttention  # a cycle at import time

        if not isinstance(mha, MultiHeadAttention):
            raise TypeError(f"mha must be a MultiHeadAttention, got {type(mha).__name__}")
        if isinstance(h, bool) or not isinstance(h, int):
            raise TypeError(f"head index must be an int, got {h!r}")
        if not 0 <= h < mha.num_heads:
            raise ValueError(f"head index {h} out of range for num_heads={mha.num_heads}")
        self.mha = mha
        self.index = h

    @property
    def kv_index(self) -> int:
        """Index of the key/value head this query head reads, ``h // (H // H_kv)``."""
        return self.index // (self.mha.num_heads // self.mha.num_kv_heads)

    def _slices(self, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows of head ``h`` in ``tensor`` (``qkv.weight`` or ``qkv.bias``) for Q, K and V."""
        H, H_kv, hs = self.mha.num_heads, self.mha.num_kv_heads, self.mha.head_size
        q, k, v = tensor.split([H * hs, H_kv * hs, H_kv * hs])  # rows of Q, K, V
        kv = self.kv_index
        return (
            q.view(H, hs, -1)[self.index],
            k.view(H_kv, hs, -1)[kv],
            v.view(H_kv, hs, -1)[kv],
        )  # 3 x (hs, C|1)

    @property
    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W_q, W_k, W_v)``, each ``(hs, C)``, views of ``mha.qkv.weight``."""
        return self._slices(self.mha.qkv.weight)

    @property
    def biases(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(b_q, b_k, b_v)``, each ``(hs,)``, views of ``mha.qkv.bias``."""
        b_q, b_k, b_v = self._slices(self.mha.qkv.bias)  # 3 x (hs, 1)
        return b_q.squeeze(-1), b_k.squeeze(-1), b_v.squeeze(-1)  # 3 x (hs,)

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        mha = self.mha
        B, T = check_input(x, mha.emb_size, mha.max_seq_len, like=mha.qkv.weight)
        q, k, v = (
            F.linear(x, w, b) for w, b in zip(self.weights, self.biases, strict=True)
        )  # (B, T, hs) each
        if mha.window is not None or mha.alibi:  # band and biases: the module's own weights
            weights = mha.get_attention_weights(x, mask)[:, self.index]  # (B, T, T)
            return weights @ v, weights  # (B, T, hs), (B, T, T)
        if mha.rotary is not None:
            q, k = mha.rotary(q), mha.rotary(k)  # (B, T, hs) each
        allowed, keep = combine_masks(mask, B, T, mha.num_heads, x.device)  # (B|1, H|1, T, T)
        allowed = allowed.expand(-1, mha.num_heads, -1, -1)[:, self.index]  # (B|1, T, T)
        if keep is not None:
            keep = keep.expand(-1, mha.num_heads, -1, -1)[:, self.index]  # (B|1, T, 1)
        return attend(q, k, v, allowed, keep)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Output of this head, ``(B, T, hs)``, before the output projection."""
        return self._attend(x, mask)[0]

    __call__ = forward

    def get_attention_weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights of this head, ``(B, T, T)``."""
        return self._attend(x, mask)[1]

    def __repr__(self) -> str:
        mha = self.mha
        shared = "" if mha.num_kv_heads == mha.num_heads else f", key/value head {self.kv_index}"
        return f"head {self.index} of {mha.num_heads} (head_size={mha.head_size}{shared})"
