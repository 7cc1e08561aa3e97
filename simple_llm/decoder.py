"""Decoder block: causal multi-head attention and feed-forward, each with residual and LayerNorm."""

from __future__ import annotations

import torch
import torch.nn as nn

from simple_llm._checks import check_input
from simple_llm.feed_forward import FeedForward
from simple_llm.interop import decoder_hook
from simple_llm.kv_cache import KVCache
from simple_llm.multi_head_attention import MultiHeadAttention


class Decoder(nn.Module):
    """Decoder-only (GPT-style) block, no cross-attention. Post-LN by default, as in the seed.

    - ``norm_first=False`` (post-LN, default): ``x = norm1(x + attention(x))``, then
      ``x = norm2(x + feed_forward(x))``.
    - ``norm_first=True`` (pre-LN): ``x = x + attention(norm1(x))``, then
      ``x = x + feed_forward(norm2(x))``.

    Args:
        num_heads: Number of heads ``H``.
        emb_size: Embedding size ``C``.
        head_size: Size ``hs`` of each head.
        max_seq_len: Longest sequence ``T`` accepted.
        dropout: Dropout probability in attention and feed-forward. Default: ``0.1``.
        norm_first: Pre-LN if ``True``, post-LN if ``False``. Default: ``False``.
        num_kv_heads: Key/value heads of the attention (grouped-query attention), see
            ``simple_llm.MultiHeadAttention``. Default: ``None`` (``H``).
        rope: Rotary positions in the attention. Default: ``False``.
        window: Sliding window of the attention. Default: ``None``.
        sink_tokens: Attention sinks. Default: ``0``.
        alibi: ALiBi biases. Default: ``False``.

    Shape:
        - x: ``(B, T, C)``, float.
        - mask: optional, as in ``MultiHeadAttention``.
        - cache: optional ``KVCache`` of the attention, as there.
        - cos_sin: optional rotary ``(cos, sin)``, each ``(T, hs)``, as there.
        - output: ``(B, T, C)``.

    Examples:
        >>> import torch
        >>> block = Decoder(num_heads=4, emb_size=64, head_size=16, max_seq_len=32)
        >>> block(torch.randn(2, 5, 64)).shape
        torch.Size([2, 5, 64])
    """

    def __init__(
        self,
        num_heads: int,
        emb_size: int,
        head_size: int,
        max_seq_len: int,
        dropout: float = 0.1,
        norm_first: bool = False,
        *,
        num_kv_heads: int | None = None,
        rope: bool = False,
        window: int | None = None,
        sink_tokens: int = 0,
        alibi: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(norm_first, bool):
            raise TypeError(f"norm_first must be a bool, got {norm_first!r}")
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(
            num_heads,
            emb_size,
            head_size,
            max_seq_len,
            dropout,
            num_kv_heads=num_kv_heads,
            rope=rope,
            window=window,
            sink_tokens=sink_tokens,
            alibi=alibi,
        )
        self.feed_forward = FeedForward(emb_size, dropout)
        self.norm1 = nn.LayerNorm(emb_size)
        self.norm2 = nn.LayerNorm(emb_size)
        self.register_load_state_dict_pre_hook(decoder_hook)  # the original project's keys

    # --8<-- [start:forward]
    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Apply the block to ``x``; returns ``(B, T, C)``. ``cos_sin``: rotary angles, as in the attention."""
        check_input(x, self.attention.emb_size, self.attention.max_seq_len, like=self.attention.qkv.weight)
        if self.norm_first:
            x = x + self.attention(self.norm1(x), mask, cache=cache, cos_sin=cos_sin)
            return x + self.feed_forward(self.norm2(x))
        x = self.norm1(x + self.attention(x, mask, cache=cache, cos_sin=cos_sin))
        return self.norm2(x + self.feed_forward(x))
        # --8<-- [end:forward]
