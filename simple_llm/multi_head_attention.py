"""Causal multi-head self-attention: one fused Q/K/V projection, per-head views of it."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from simple_llm._checks import check_dropout, check_input, check_size
from simple_llm._original import multi_head_attention_hook
from simple_llm.attention import attend
from simple_llm.kv_cache import KVCache
from simple_llm.masks import combine_masks
from simple_llm.positions import RotaryEmbedding


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

    Attributes:
        qkv (nn.Linear): ``C -> (H + 2*H_kv)*hs``; output rows are ``[Q of heads 0..H-1 | K of heads
            0..H_kv-1 | V ...]``, ``hs`` rows per head. With ``H_kv == H`` this is the layout of
            ``nn.MultiheadAttention.in_proj_weight`` and the state_dict of plain multi-head attention.
        proj (nn.Linear): Output projection ``H*hs -> C``.
        rotary (RotaryEmbedding | None): The ``RotaryEmbedding`` if ``rope``, else ``None``.

    Shape:
        - x: ``(B, T, C)``, float.
        - mask: optional, ``True``/1 = may attend; ``(T, T)``, ``(B, T)``, ``(B, 1, T)``,
          ``(B, T, T)`` or ``(B, H, T, T)`` (see ``simple_llm.masks``). The causal mask is
          always applied. A query that may attend to no key outputs zeros before ``proj``.
        - output: ``(B, T, C)``; with ``return_weights=True`` also weights ``(B, H, T, T)``.
        - cache: optional ``simple_llm.KVCache`` holding ``T_cached`` earlier positions,
          keys and values ``(B, H_kv, T_cached, hs)``. ``x`` is then positions
          ``T_cached .. T_cached+T-1``, query ``t`` sees keys ``0 .. T_cached+t``, weights are
          ``(B, H, T, T_cached+T)`` and the cache grows by ``T``.

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
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.emb_size = emb_size
        self.head_size = head_size
        self.max_seq_len = max_seq_len
        self.qkv = nn.Linear(emb_size, (num_heads + 2 * num_kv_heads) * head_size)
        self.proj = nn.Linear(num_heads * head_size, emb_size)
        self.dropout = nn.Dropout(dropout)
        self.register_load_state_dict_pre_hook(multi_head_attention_hook)  # the original project's keys
        self.rotary = RotaryEmbedding(head_size) if rope else None

    # --8<-- [start:forward]
    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
        *,
        cache: KVCache | None = None,
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

        Returns:
            ``out`` ``(B, T, C)``, or ``(out, weights)`` if ``return_weights``.
        """
        B, T = check_input(x, self.emb_size, self.max_seq_len)
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
        if self.rotary is not None:
            q, k = self.rotary(q, start), self.rotary(k, start)  # (B, H, T, hs), (B, H_kv, T, hs)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, H_kv, T_k, hs), T_k = start + T
        gqa = {"enable_gqa": True} if H_kv != H else {}  # SDPA's keyword only where it is needed
        if mask is None and not return_weights:
            if start == 0:  # T_q == T_k: the top-left causal mask of is_causal is the right one
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)  # (B, H, T, hs)
            elif T == 1:  # one new query sees every cached key: no mask at all
                y = F.scaled_dot_product_attention(q, k, v, **gqa)  # (B, H, 1, hs)
            else:  # is_causal=True would align top-left (pytorch#108108): pass the mask explicitly
                allowed = causal_after(T, start, x.device)  # (T, T_k)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, **gqa)  # (B, H, T, hs)
        else:
            if cache is None:
                allowed, keep = combine_masks(mask, B, T, H, x.device)  # (B|1, H|1, T, T)
            else:
                allowed, keep = causal_after(T, start, x.device), None  # (T, T_k)
            if return_weights:
                g = H // H_kv
                k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # (B, H, T_k, hs)
                y, weights = attend(q, k, v, allowed, keep)  # (B, H, T, hs), (B, H, T, T_k)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, **gqa)  # (B, H, T, hs)
                if keep is not None:
                    y = y.masked_fill(~keep, 0.0)
        y = y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H*hs)
        out = self.dropout(self.proj(y))  # (B, T, C)
        return (out, weights) if return_weights else out

    # --8<-- [end:forward]

    def _check_cache(self, cache: object, mask: object, T: int) -> int:
        """Number of cached positions, after checking that ``T`` more fit in ``max_seq_len``."""
        if cache is None:
            return 0
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache or None, got {type(cache).__name__}")
        if mask is not None:
            raise ValueError("mask is not supported together with cache (the causal mask is applied)")
        start = len(cache)
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
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(f"module must be a torch.nn.MultiheadAttention, got {type(module).__name__}")
        if module.kdim != module.embed_dim or module.vdim != module.embed_dim:
            raise ValueError(
                f"kdim={module.kdim} and vdim={module.vdim} must equal embed_dim={module.embed_dim}"
            )
        if module.in_proj_bias is None or module.out_proj.bias is None:
            raise ValueError("module was built with bias=False; only bias=True is supported")
        if module.bias_k is not None:
            raise ValueError("module was built with add_bias_kv=True, which is not supported")
        if module.add_zero_attn:
            raise ValueError("module was built with add_zero_attn=True, which is not supported")
        ours = cls(module.num_heads, module.embed_dim, module.head_dim, max_seq_len, dropout)
        ours.to(device=module.in_proj_weight.device, dtype=module.in_proj_weight.dtype)
        with torch.no_grad():
            ours.qkv.weight.copy_(module.in_proj_weight)
            ours.qkv.bias.copy_(module.in_proj_bias)
            ours.proj.weight.copy_(module.out_proj.weight)
            ours.proj.bias.copy_(module.out_proj.bias)
        return ours

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
        if self.num_kv_heads != self.num_heads or self.rotary is not None:
            raise ValueError(
                f"nn.MultiheadAttention has neither grouped-query attention nor rotary positions, got "
                f"num_kv_heads={self.num_kv_heads} (num_heads={self.num_heads}), rope={self.rotary is not None}"
            )
        if self.num_heads * self.head_size != self.emb_size:
            raise ValueError(
                f"nn.MultiheadAttention needs num_heads * head_size == emb_size, got "
                f"{self.num_heads} * {self.head_size} != {self.emb_size}"
            )
        weight = self.qkv.weight
        module = nn.MultiheadAttention(
            self.emb_size, self.num_heads, batch_first=True, device=weight.device, dtype=weight.dtype
        )
        with torch.no_grad():
            module.in_proj_weight.copy_(self.qkv.weight)
            module.in_proj_bias.copy_(self.qkv.bias)
            module.out_proj.weight.copy_(self.proj.weight)
            module.out_proj.bias.copy_(self.proj.bias)
        return module.train(self.training)


class HeadView:
    """One head of a ``MultiHeadAttention``, read from views of its ``qkv``.

    Not an ``nn.Module``: it owns no parameters, so gradients reach ``mha.qkv`` and in-place
    changes to ``mha.qkv`` are seen at once.
    """

    def __init__(self, mha: MultiHeadAttention, h: int) -> None:
        self.mha = mha
        self.index = h

    @property
    def kv_index(self) -> int:
        """Index of the key/value head this query head reads, ``h // (H // H_kv)``."""
        return self.index // (self.mha.num_heads // self.mha.num_kv_heads)

    def _slices(self, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
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
        return tuple(b.squeeze(-1) for b in self._slices(self.mha.qkv.bias))  # 3 x (hs,)

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        mha = self.mha
        B, T = check_input(x, mha.emb_size, mha.max_seq_len)
        q, k, v = (F.linear(x, w, b) for w, b in zip(self.weights, self.biases))  # (B, T, hs) each
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
    return torch.ones(T, start + T, dtype=torch.bool, device=device).tril(diagonal=start)  # (T, T_k)
