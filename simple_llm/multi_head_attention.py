"""Causal multi-head self-attention: one fused Q/K/V projection, heads as views of it."""

from __future__ import annotations

import torch
import torch.nn as nn

from simple_llm import interop
from simple_llm._checks import check_dropout, check_flag, check_input, check_size
from simple_llm.attention import causal_attention
from simple_llm.head_attention import HeadView
from simple_llm.kv_cache import KVCache, RollingKVCache
from simple_llm.masks import check_window
from simple_llm.positions import RotaryEmbedding, slopes_of_alibi


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention (batch first).

    ``emb_size`` need not equal ``num_heads * head_size``: ``qkv`` projects ``C -> 3*H*hs`` and
    ``proj`` projects ``H*hs -> C``. Only ``H*hs == C`` can be exported with ``to_torch``.

    Args:
        num_heads: Number of heads ``H``.
        emb_size: Embedding size ``C``.
        head_size: Size ``hs`` of each head.
        max_seq_len: Longest sequence ``T`` accepted.
        dropout: Dropout probability on the output, after the projection. Default: ``0.1``.
        num_kv_heads: Number ``H_kv`` of key/value heads, dividing ``H``: grouped-query
            attention; ``1`` is multi-query attention. Query head ``h`` reads key/value head
            ``h // (H // H_kv)`` (the convention of ``scaled_dot_product_attention(enable_gqa=True)``
            and ``repeat_interleave``). Default: ``None``, meaning ``H`` (plain multi-head).
        rope: Rotate queries and keys by their positions (``simple_llm.RotaryEmbedding``,
            ``rotate_half`` convention); ``hs`` must be even. Default: ``False``.
        window: Sliding window ``W``: query ``t`` sees keys ``t-W+1 .. t`` only, also under a user
            mask (which cannot widen it). Default: ``None``.
        sink_tokens: Attention sinks, the first ``S < W`` keys, seen by every query; scored from
            ``min(p, S+W-1)``, the query's place in a full cache (StreamingLLM). Default: ``0``.
        alibi: ALiBi: head ``h`` adds ``-m_h * (t - j)``, ``m = alibi_slopes(H)``; not with ``rope``.
            Default: ``False``.

    Attributes:
        qkv (nn.Linear): ``C -> (H + 2*H_kv)*hs``; output rows are ``[Q of heads 0..H-1 | K of heads
            0..H_kv-1 | V ...]``, ``hs`` rows per head. With ``H_kv == H`` this is the layout of
            ``nn.MultiheadAttention.in_proj_weight`` and the state_dict of plain multi-head attention.
        proj (nn.Linear): Output projection ``H*hs -> C``.
        rotary (RotaryEmbedding | None): The ``RotaryEmbedding`` if ``rope``, else ``None``.
        alibi (bool): Whether ALiBi's biases are added (no parameter: the slopes are computed in
            each call, in float64, then the scores' dtype).

    Shape:
        - x: ``(B, T, C)``, float.
        - mask: optional, ``True``/1 = may attend; ``(T, T)``, ``(B, T)``, ``(B, 1, T)``,
          ``(B, T, T)`` or ``(B, H, T, T)`` (see ``simple_llm.masks``). The causal mask (and the
          window, if any) is always applied. A query that may attend to no key outputs zeros
          before ``proj``.
        - output: ``(B, T, C)``; with ``return_weights=True`` also weights ``(B, H, T, T)``.
        - cache: optional ``simple_llm.KVCache`` holding ``T_cached`` earlier positions,
          keys and values ``(B, H_kv, T_cached, hs)``. ``x`` is then positions
          ``T_cached .. T_cached+T-1``, query ``t`` sees keys ``0 .. T_cached+t``, weights are
          ``(B, H, T, T_cached+T)`` and the cache grows by ``T``; a ``RollingKVCache`` may go
          past ``max_seq_len``.

    Examples:
        >>> import torch
        >>> mha = MultiHeadAttention(num_heads=4, emb_size=64, head_size=16, max_seq_len=32)
        >>> x = torch.randn(2, 5, 64)
        >>> mha(x).shape
        torch.Size([2, 5, 64])
        >>> mha.get_attention_weights(x).shape
        torch.Size([2, 4, 5, 5])
        >>> [head.get_attention_weights(x).shape for head in mha.heads][0]
        torch.Size([2, 5, 5])
        >>> gqa = MultiHeadAttention(4, 64, 16, 32, num_kv_heads=2, rope=True)  # (4 + 2*2) * 16 rows
        >>> gqa.qkv.weight.shape
        torch.Size([128, 64])
        >>> cache = KVCache()
        >>> gqa(x, cache=cache).shape, cache.keys.shape  # keys (B, H_kv, T, hs)
        (torch.Size([2, 5, 64]), torch.Size([2, 2, 5, 16]))
        >>> gqa(x[:, :1], cache=cache).shape, len(cache)  # one more position
        (torch.Size([2, 1, 64]), 6)
    """

    def __init__(
        self,
        num_heads: int,
        emb_size: int,
        head_size: int,
        max_seq_len: int,
        dropout: float = 0.1,
        *,
        num_kv_heads: int | None = None,
        rope: bool = False,
        window: int | None = None,
        sink_tokens: int = 0,
        alibi: bool = False,
    ) -> None:
        super().__init__()
        check_size("num_heads", num_heads)
        check_size("emb_size", emb_size)
        check_size("head_size", head_size)
        check_size("max_seq_len", max_seq_len)
        check_dropout(dropout)
        if num_kv_heads is None:
            num_kv_heads = num_heads
        check_size("num_kv_heads", num_kv_heads)
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_heads ({num_kv_heads})")
        if not isinstance(rope, bool):
            raise TypeError(f"rope must be a bool, got {rope!r}")
        check_window(window, sink_tokens)
        if not isinstance(alibi, bool):
            raise TypeError(f"alibi must be a bool, got {alibi!r}")
        if alibi and rope:
            raise ValueError("alibi=True and rope=True are exclusive: choose one way to give positions")
        self.window = window
        self.sink_tokens = sink_tokens
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.emb_size = emb_size
        self.head_size = head_size
        self.max_seq_len = max_seq_len
        self.qkv = nn.Linear(emb_size, (num_heads + 2 * num_kv_heads) * head_size)
        self.proj = nn.Linear(num_heads * head_size, emb_size)
        self.dropout = nn.Dropout(dropout)
        self.register_load_state_dict_pre_hook(
            interop.multi_head_attention_hook
        )  # the original project's keys
        self.rotary = RotaryEmbedding(head_size) if rope else None
        self.alibi = alibi

    # --8<-- [start:forward]
    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
        *,
        cache: KVCache | None = None,
        cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend causally over ``x`` (and over the cached positions, if ``cache`` is given).

        Args:
            x: Input ``(B, T, C)``.
            mask: Optional mask, ``True``/1 = may attend. Default: ``None`` (causal only). Not
                accepted together with ``cache``.
            return_weights: Also return the weights ``(B, H, T, T_k)`` (explicit path, which
                materialises them). Default: ``False``. The explicit path is also the one with a
                second derivative: the fused CPU kernel of ``F.scaled_dot_product_attention``
                (torch 2.13) has no double backward, so ``torch.autograd.grad(...,
                create_graph=True)`` followed by another backward works only with ``True``.
            cache: Optional ``simple_llm.KVCache``; this call's keys and values are
                appended to it. Default: ``None``.
            cos_sin: Optional rotary ``(cos, sin)``, each ``(T, hs)``, from
                ``RotaryEmbedding.cos_sin`` for this call's positions (a ``GPT`` computes them
                once for all its blocks); only with ``rope=True``. Default: ``None`` (computed here).

        Returns:
            ``out`` ``(B, T, C)``, or ``(out, weights)`` if ``return_weights``.
        """
        B, T = check_input(x, self.emb_size, self.max_seq_len, like=self.qkv.weight)
        check_flag("return_weights", return_weights)
        start = self._check_cache(cache, mask, T)
        H, H_kv, hs = self.num_heads, self.num_kv_heads, self.head_size
        if H_kv == H:  # one view of the fused projection: the cheapest backward
            q, k, v = self.qkv(x).view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
        else:
            q, k, v = self.qkv(x).split(
                [H * hs, H_kv * hs, H_kv * hs], dim=-1
            )  # (B, T, H*hs), 2 x (B, T, H_kv*hs)
            q = q.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
            k = k.view(B, T, H_kv, hs).transpose(1, 2)  # (B, H_kv, T, hs)
            v = v.view(B, T, H_kv, hs).transpose(1, 2)  # (B, H_kv, T, hs)
        q_sink = None
        if self.rotary is not None:
            q_sink = self._sink_queries(q, start)  # (B, H, T, hs) or None
            if cos_sin is None:
                cos_sin = self.rotary.cos_sin(T, start, x.dtype, x.device)  # (T, hs) each
            q, k = self.rotary(q, cos_sin=cos_sin), self.rotary(k, cos_sin=cos_sin)  # (B, H|H_kv, T, hs)
        elif cos_sin is not None:
            raise ValueError("cos_sin needs a module built with rope=True")
        key_positions = None  # 0 .. T_k-1
        if cache is not None:
            if isinstance(cache, RollingKVCache) and cache.seen != len(cache):  # it dropped positions
                new = torch.arange(start, start + T, device=x.device)  # (T,)
                key_positions = torch.cat([cache.positions(x.device), new])  # (T_k,)
            k, v = cache.append(k, v)  # (B, H_kv, T_k, hs), T_k = T_cached + T
        y, weights = causal_attention(
            q,
            k,
            v,
            mask,
            return_weights,
            window=self.window,
            sink_tokens=self.sink_tokens,
            slopes=torch.tensor(slopes_of_alibi(H), dtype=torch.float64, device=x.device)
            if self.alibi
            else None,
            key_positions=key_positions,
            q_sink=q_sink,
        )  # (B, H, T, hs), (B, H, T, T_k)
        y = y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H*hs)
        out = self.dropout(self.proj(y))  # (B, T, C)
        if weights is None:  # return_weights=False
            return out
        return out, weights

    # --8<-- [end:forward]

    def _sink_queries(self, q: torch.Tensor, start: int) -> torch.Tensor | None:
        """Queries ``(B, H, T, hs)`` rotated at ``min(p, S+W-1)``, or ``None`` if that is ``p`` for all."""
        T = q.size(2)
        if not self.sink_tokens or self.window is None or self.rotary is None:
            return None
        last = self.sink_tokens + self.window - 1  # the query's place in a full cache
        if start + T - 1 <= last:
            return None
        cos, sin = self.rotary.cos_sin(last + 1, 0, q.dtype, q.device)  # (S+W, hs) each
        places = torch.arange(start, start + T, device=q.device).clamp(max=last)  # (T,)
        return self.rotary(q, cos_sin=(cos[places], sin[places]))  # (B, H, T, hs)

    def _check_cache(self, cache: object, mask: object, T: int) -> int:
        """Position of the first token of ``x``, after checking that ``T`` more fit in ``max_seq_len``.

        A ``RollingKVCache`` has no such limit: it keeps ``sink_tokens + window - 1`` positions.
        """
        if cache is None:
            return 0
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache or None, got {type(cache).__name__}")
        if mask is not None:
            raise ValueError("mask is not supported together with cache (the causal mask is applied)")
        start = cache.seen
        if isinstance(cache, RollingKVCache):
            if (cache.window, cache.sink_tokens) != (self.window, self.sink_tokens):
                raise ValueError(
                    f"a RollingKVCache(window={cache.window}, sink_tokens={cache.sink_tokens}) does not fit "
                    f"this module's window={self.window}, sink_tokens={self.sink_tokens}"
                )
            return start
        if start + T > self.max_seq_len:
            raise ValueError(
                f"cache holds {start} positions; {T} more exceed max_seq_len={self.max_seq_len} "
                "(reset the cache and re-encode the last max_seq_len tokens)"
            )
        return start

    def get_attention_weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``(B, H, T, T)``; row ``t`` holds query ``t``'s weights over the keys."""
        return self.forward(x, mask, return_weights=True)[1]

    def head(self, h: int) -> HeadView:
        """View of head ``h`` that reads its slices of ``qkv`` (no copy).

        Args:
            h: Head index in ``[0, H)``.

        Returns:
            A ``HeadView``: ``forward(x, mask=None)`` (also callable) gives ``(B, T, hs)``,
                ``get_attention_weights(x, mask=None)`` gives ``(B, T, T)``.
        """
        if isinstance(h, bool) or not isinstance(h, int):
            raise TypeError(f"head index must be an int, got {h!r}")
        if not 0 <= h < self.num_heads:
            raise ValueError(f"head index {h} out of range for num_heads={self.num_heads}")
        return HeadView(self, h)

    @property
    def heads(self) -> list[HeadView]:
        """Views of all heads, ``[mha.head(h) for h in range(H)]``: ``[head.get_attention_weights(x) for head in mha.heads]``."""
        return [HeadView(self, h) for h in range(self.num_heads)]

    @property
    def _heads(self) -> list[HeadView]:
        """The original project's name for ``heads``, kept so that its code runs unchanged."""
        return self.heads

    @classmethod
    def from_torch(
        cls, module: nn.MultiheadAttention, max_seq_len: int, dropout: float = 0.0
    ) -> MultiHeadAttention:
        """Build from a ``torch.nn.MultiheadAttention``, copying its weights.

        The result is batch first whatever ``module.batch_first`` is. PyTorch applies its
        ``dropout`` to the attention weights, ours to the output: outputs are equal in eval
        mode or with both probabilities 0.

        Args:
            module: ``nn.MultiheadAttention`` with biases, no ``add_bias_kv``, no
                ``add_zero_attn`` and ``kdim == vdim == embed_dim``.
            max_seq_len: Longest sequence ``T`` accepted.
            dropout: Dropout probability of the new module. Default: ``0.0``.

        Examples:
            >>> import torch
            >>> torch_mha = torch.nn.MultiheadAttention(64, 4, batch_first=True)
            >>> mha = MultiHeadAttention.from_torch(torch_mha, max_seq_len=32)
            >>> mha.num_heads, mha.head_size
            (4, 16)
        """
        return interop.from_torch(cls, module, max_seq_len, dropout)

    def to_torch(self) -> nn.MultiheadAttention:
        """Copy into a ``torch.nn.MultiheadAttention(C, H, batch_first=True)`` (dropout 0).

        Raises:
            ValueError: If ``H * hs != C`` (PyTorch requires ``head_dim == C / H``).

        Examples:
            >>> mha = MultiHeadAttention(num_heads=4, emb_size=64, head_size=16, max_seq_len=32)
            >>> mha.to_torch()
            MultiheadAttention(
              (out_proj): NonDynamicallyQuantizableLinear(in_features=64, out_features=64, bias=True)
            )
        """
        return interop.to_torch(self)
