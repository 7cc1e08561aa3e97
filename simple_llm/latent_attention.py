"""Multi-head latent attention (MLA, DeepSeek-V2), its latent cache and KV bytes per token.

Shapes use the package legend plus the sizes of ``MultiHeadLatentAttention``: ``r_q``
(``q_lora_rank``), ``r_kv`` (``kv_lora_rank``), ``d_nope`` (``qk_nope_head_dim``), ``d_rope``
(``qk_rope_head_dim``), ``d_v`` (``v_head_dim``), and ``S`` keys (cached and new positions).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from simple_llm._checks import check_dropout, check_flag, check_input, check_size
from simple_llm.positions import RotaryEmbedding


class _RMSNorm(nn.Module):
    """RMSNorm with a ``weight`` and no bias; reduced-precision inputs are normalised in float32."""

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        work = x if x.dtype == torch.float64 else x.float()
        normed = work * torch.rsqrt(work.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rotate_interleaved(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate neighbouring pairs ``(2i, 2i+1)`` of ``x`` ``(..., T, d)`` by ``angles`` ``(T, d/2)``.

    ``out[2i] = x[2i] cos a_i - x[2i+1] sin a_i`` and ``out[2i+1] = x[2i] sin a_i + x[2i+1] cos a_i``.
    """
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # (..., T, d/2) each
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, d/2) each
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)  # (..., T, d)


def _describe(t: object) -> str:
    return f"{t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


class LatentCache:
    """What MLA keeps per token: the normalised latent and the rotated rotary key, for all heads.

    ``latent`` ``(B, S, r_kv)`` and ``k_rope`` ``(B, S, d_rope)``: ``r_kv + d_rope`` numbers per
    token and layer, whatever the number of heads. Each ``MultiHeadLatentAttention.forward(x,
    cache=cache)`` appends the ``T`` positions of ``x``; ``reset`` empties the cache.

    Examples:
        >>> import torch
        >>> cache = LatentCache()
        >>> latent, k_rope = cache.append(torch.zeros(2, 3, 8), torch.zeros(2, 3, 4))
        >>> len(cache), tuple(latent.shape), cache.nbytes()  # 2 * 3 * (8 + 4) float32 numbers
        (3, (2, 3, 8), 288)
    """

    def __init__(self) -> None:
        self.latent: torch.Tensor | None = None
        self.k_rope: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of cached positions ``S``."""
        return 0 if self.latent is None else self.latent.size(1)

    def append(self, latent: torch.Tensor, k_rope: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``latent`` ``(B, T, r_kv)`` and ``k_rope`` ``(B, T, d_rope)``; return all so far.

        Everything is checked before anything is stored: a failed append leaves the cache as it was.

        Returns:
            ``(latent, k_rope)``, ``(B, S + T, r_kv)`` and ``(B, S + T, d_rope)``.
        """
        for name, t in [("latent", latent), ("k_rope", k_rope)]:
            if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 3:
                raise TypeError(
                    f"{name} must be a floating-point 3-D tensor (B, T, width), got {_describe(t)}"
                )
        if latent.shape[:2] != k_rope.shape[:2]:
            raise ValueError(
                f"latent and k_rope must have the same (B, T), got {tuple(latent.shape)} and {tuple(k_rope.shape)}"
            )
        if (latent.dtype, latent.device) != (k_rope.dtype, k_rope.device):
            raise TypeError(
                f"latent and k_rope must have the same dtype and device, got {latent.dtype} on "
                f"{latent.device} and {k_rope.dtype} on {k_rope.device}"
            )
        if self.latent is None or self.k_rope is None:
            self.latent, self.k_rope = latent, k_rope
            return latent, k_rope
        B, _, r_kv = self.latent.shape
        d_rope = self.k_rope.size(2)
        if (latent.size(0), latent.size(2), k_rope.size(2)) != (B, r_kv, d_rope):
            raise ValueError(
                f"cache holds (B, r_kv, d_rope)=({B}, {r_kv}, {d_rope}), got latent {tuple(latent.shape)} "
                f"and k_rope {tuple(k_rope.shape)}; call reset() first"
            )
        if (latent.dtype, latent.device) != (self.latent.dtype, self.latent.device):
            raise TypeError(
                f"cache holds {self.latent.dtype} on {self.latent.device}, got {latent.dtype} on "
                f"{latent.device}; call reset() first"
            )
        self.latent = torch.cat([self.latent, latent], dim=1)  # (B, S + T, r_kv)
        self.k_rope = torch.cat([self.k_rope, k_rope], dim=1)  # (B, S + T, d_rope)
        return self.latent, self.k_rope

    def reset(self) -> None:
        """Forget every cached position."""
        self.latent = self.k_rope = None

    def nbytes(self) -> int:
        """Bytes held by the cached latents and rotary keys."""
        if self.latent is None or self.k_rope is None:
            return 0
        return self.latent.nbytes + self.k_rope.nbytes

    def __repr__(self) -> str:
        shape = None if self.latent is None else tuple(self.latent.shape)
        return f"LatentCache(length={len(self)}, latent shape={shape})"


class MultiHeadLatentAttention(nn.Module):
    """Causal multi-head latent attention of DeepSeek-V2 (Liu et al. 2024), no biases.

    Queries: ``q = q_b_proj(RMSNorm(q_a_proj(x)))`` (or ``q_proj(x)`` if ``q_lora_rank`` is
    ``None``), per head ``d_nope + d_rope`` numbers. Keys and values: ``kv_a_proj_with_mqa(x)``
    gives the latent ``c`` (``r_kv``) and one rotary key (``d_rope``) shared by all heads; ``c`` is
    normalised (RMSNorm, eps ``1e-6``) and ``kv_b_proj(c)`` gives each head's key part ``d_nope``
    and value ``d_v``. Scores are scaled by ``1/sqrt(d_nope + d_rope)``; ``o_proj`` maps the
    ``H * d_v`` head outputs back to ``C``. Parameter names and shapes are DeepSeek's, so the
    ``state_dict`` of a DeepSeek-V2/V3 attention layer (``attention_bias=False``) loads unchanged.

    Rotary positions: base ``10000``, no YaRN scaling. DeepSeek pairs neighbouring coordinates
    ``(2i, 2i+1)`` of the rotary part (interleaved), where the package's ``RotaryEmbedding``
    (``rotate_half``) pairs ``i`` with ``i + d/2``; the frequencies ``base**(-2i/d)`` are the same.
    DeepSeek's reference code returns the rotated pairs de-interleaved; queries and keys are
    permuted alike, so the scores do not change.

    ``forward(x)`` up-projects the latent to keys and values (the plain form). With a
    ``LatentCache`` it appends the latent and rotary key and, by default, attends in the absorbed
    form: the key up-projection is folded into the query and the value up-projection into the
    output projection, so the cached latent is never expanded per head.

    float16 and bfloat16 modules compute the scores, softmax and weighted sums in float32, as
    ``attend`` does: an unscaled score ``q . k`` can pass float16's largest number, 65,504.

    Args:
        emb_size: Embedding size ``C``.
        num_heads: Number of heads ``H``.
        max_seq_len: Largest number of positions (cached and new).
        q_lora_rank: Rank ``r_q`` of the query latent, or ``None`` for a direct ``q_proj``.
        kv_lora_rank: Rank ``r_kv`` of the key/value latent.
        qk_nope_head_dim: Per-head query/key size without positions, ``d_nope``.
        qk_rope_head_dim: Rotary query/key size ``d_rope``, even.
        v_head_dim: Per-head value size ``d_v``.
        dropout: Dropout on the attention weights. Default: ``0.0``.

    Shape:
        - x: ``(B, T, C)``.
        - output: ``(B, T, C)``.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> mla = MultiHeadLatentAttention(32, 4, 16, q_lora_rank=24, kv_lora_rank=16,
        ...     qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8)
        >>> x = torch.randn(2, 5, 32)
        >>> cache = LatentCache()
        >>> mla(x[:, :4], cache=cache).shape, tuple(cache.latent.shape)  # latent (B, S, r_kv)
        (torch.Size([2, 4, 32]), (2, 4, 16))
        >>> last = mla(x[:, 4:], cache=cache)  # one more token, absorbed form
        >>> bool(torch.allclose(last, mla(x)[:, 4:], atol=1e-5))
        True
    """

    def __init__(
        self,
        emb_size: int,
        num_heads: int,
        max_seq_len: int,
        *,
        q_lora_rank: int | None,
        kv_lora_rank: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("emb_size", emb_size),
            ("num_heads", num_heads),
            ("max_seq_len", max_seq_len),
            ("kv_lora_rank", kv_lora_rank),
            ("qk_nope_head_dim", qk_nope_head_dim),
            ("qk_rope_head_dim", qk_rope_head_dim),
            ("v_head_dim", v_head_dim),
        ]:
            check_size(name, value)
        if q_lora_rank is not None:
            check_size("q_lora_rank", q_lora_rank)
        if qk_rope_head_dim % 2:
            raise ValueError(f"rotary positions need an even qk_rope_head_dim, got {qk_rope_head_dim}")
        check_dropout(dropout)
        self.emb_size, self.num_heads, self.max_seq_len = emb_size, num_heads, max_seq_len
        self.q_lora_rank, self.kv_lora_rank = q_lora_rank, kv_lora_rank
        self.qk_nope_head_dim, self.qk_rope_head_dim = qk_nope_head_dim, qk_rope_head_dim
        self.v_head_dim = v_head_dim
        q_head_dim = qk_nope_head_dim + qk_rope_head_dim
        self.scale = 1.0 / math.sqrt(q_head_dim)
        if q_lora_rank is None:  # DeepSeek's names: q_proj, or q_a_proj, q_a_layernorm, q_b_proj
            self.q_proj = nn.Linear(emb_size, num_heads * q_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(emb_size, q_lora_rank, bias=False)
            self.q_a_layernorm = _RMSNorm(q_lora_rank)
            self.q_b_proj = nn.Linear(q_lora_rank, num_heads * q_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(emb_size, kv_lora_rank + qk_rope_head_dim, bias=False)
        self.kv_a_layernorm = _RMSNorm(kv_lora_rank)
        self.kv_b_proj = nn.Linear(kv_lora_rank, num_heads * (qk_nope_head_dim + v_head_dim), bias=False)
        self.o_proj = nn.Linear(num_heads * v_head_dim, emb_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.rotary = RotaryEmbedding(qk_rope_head_dim)  # its frequencies; no parameters

    def _angles(self, x: torch.Tensor, T: int, start: int) -> torch.Tensor:
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        return self.rotary.angles(T, start, dtype, x.device)  # (T, d_rope/2)

    def queries(self, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Query parts of positions ``start ..``: ``q_nope`` ``(B, H, T, d_nope)``, rotated ``q_rope`` ``(B, H, T, d_rope)``."""
        B, T, _ = x.shape
        if self.q_lora_rank is None:
            q = self.q_proj(x)  # (B, T, H*(d_nope+d_rope))
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))  # (B, T, H*(d_nope+d_rope))
        q = q.view(B, T, self.num_heads, -1).transpose(1, 2)  # (B, H, T, d_nope+d_rope)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        return q_nope, rotate_interleaved(q_rope, self._angles(x, T, start))  # (B, H, T, d_nope|d_rope)

    def latents(self, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """What the cache holds for positions ``start ..``: normalised latent ``(B, T, r_kv)``, rotated key ``(B, T, d_rope)``."""
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        T = x.size(1)
        return self.kv_a_layernorm(latent), rotate_interleaved(k_rope, self._angles(x, T, start))

    def absorbed_weights(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The key up-projection per head ``w_uk`` ``(H, d_nope, r_kv)`` and the value
        up-projection folded into the output projection ``w_ov`` ``(C, H, r_kv)``.

        Args:
            dtype: Floating-point dtype to fold the weights in and return them in. Default:
                ``None``, the weights' own dtype.
        """
        if dtype is None:
            dtype = self.kv_b_proj.weight.dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
        H, d_nope, d_v = self.num_heads, self.qk_nope_head_dim, self.v_head_dim
        w = self.kv_b_proj.weight.to(dtype).view(H, d_nope + d_v, self.kv_lora_rank)  # (H, d_nope+d_v, r_kv)
        w_uk, w_uv = w.split([d_nope, d_v], dim=1)  # (H, d_nope, r_kv), (H, d_v, r_kv)
        w_o = self.o_proj.weight.to(dtype).view(self.emb_size, H, d_v)  # (C, H, d_v)
        return w_uk, torch.einsum("chv,hvr->chr", w_o, w_uv)  # (H, d_nope, r_kv), (C, H, r_kv)

    # --8<-- [start:forward]
    def forward(
        self, x: torch.Tensor, cache: LatentCache | None = None, *, absorb: bool | None = None
    ) -> torch.Tensor:
        """Attend causally over ``x`` (and over the cached positions, if ``cache`` is given).

        Args:
            x: Input ``(B, T, C)``; with a cache, positions ``S .. S+T-1`` after ``S`` cached.
            cache: Optional ``LatentCache``; this call's latents and rotary keys are appended.
                Default: ``None``.
            absorb: Attend in the absorbed form (``True``) or up-project the latents to keys and
                values (``False``). Default: ``None``, absorbed with a cache, plain without.

        Returns:
            ``(B, T, C)``.
        """
        B, T = check_input(x, self.emb_size, self.max_seq_len, like=self.o_proj.weight)
        if absorb is None:
            absorb = cache is not None
        check_flag("absorb", absorb)
        if cache is not None and not isinstance(cache, LatentCache):
            raise TypeError(f"cache must be a LatentCache or None, got {type(cache).__name__}")
        start = 0 if cache is None else len(cache)
        if start + T > self.max_seq_len:
            raise ValueError(
                f"cache holds {start} positions; {T} more exceed max_seq_len={self.max_seq_len} "
                "(reset the cache and re-encode the last max_seq_len tokens)"
            )
        q_nope, q_rope = self.queries(x, start)  # (B, H, T, d_nope), (B, H, T, d_rope)
        latent, k_rope = self.latents(x, start)  # (B, T, r_kv), (B, T, d_rope)
        if cache is not None:
            latent, k_rope = cache.append(latent, k_rope)  # (B, S, r_kv), (B, S, d_rope)
        S = latent.size(1)
        dtype = x.dtype  # float16 and bfloat16 scores are computed in float32, as in attend
        work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        future = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(start + 1)  # (T, S)
        rope_scores = q_rope.to(work) @ k_rope.to(work).unsqueeze(1).transpose(-2, -1)  # (B, H, T, S)
        if absorb:
            w_uk, w_ov = self.absorbed_weights(work)  # (H, d_nope, r_kv), (C, H, r_kv)
            q_latent = torch.einsum("bhtn,hnr->bhtr", q_nope.to(work), w_uk)  # (B, H, T, r_kv)
            latent = latent.to(work)  # (B, S, r_kv)
            scores = q_latent @ latent.unsqueeze(1).transpose(-2, -1)  # (B, H, T, S)
        else:
            kv = (
                self.kv_b_proj(latent).view(B, S, self.num_heads, -1).transpose(1, 2)
            )  # (B, H, S, d_nope+d_v)
            k_nope, v = kv.to(work).split(
                [self.qk_nope_head_dim, self.v_head_dim], dim=-1
            )  # (B, H, S, d_nope|d_v)
            scores = q_nope.to(work) @ k_nope.transpose(-2, -1)  # (B, H, T, S)
        scores = ((scores + rope_scores) * self.scale).masked_fill(future, float("-inf"))  # (B, H, T, S)
        weights = self.dropout(scores.softmax(dim=-1))  # (B, H, T, S)
        if absorb:
            out_latent = weights @ latent.unsqueeze(1)  # (B, H, T, r_kv)
            return torch.einsum("bhtr,chr->btc", out_latent, w_ov).to(dtype)  # (B, T, C)
        y = (weights @ v).transpose(1, 2).reshape(B, T, self.num_heads * self.v_head_dim)  # (B, T, H*d_v)
        return self.o_proj(y.to(dtype))  # (B, T, C)

    # --8<-- [end:forward]


def kv_cache_bytes_per_token(
    num_layers: int,
    *,
    num_kv_heads: int | None = None,
    head_size: int | None = None,
    kv_lora_rank: int | None = None,
    qk_rope_head_dim: int | None = None,
    dtype: torch.dtype = torch.bfloat16,
) -> int:
    """Bytes a KV cache holds per token over all layers, from the model's shapes.

    Give ``num_kv_heads`` and ``head_size`` for MHA, GQA and MQA (keys and values,
    ``2 * num_layers * H_kv * hs`` numbers), or ``kv_lora_rank`` and ``qk_rope_head_dim`` for MLA
    (``num_layers * (r_kv + d_rope)`` numbers); each number takes ``dtype``'s size.

    Examples:
        >>> kv_cache_bytes_per_token(32, num_kv_heads=8, head_size=128)  # Llama-3-8B, bfloat16
        131072
        >>> kv_cache_bytes_per_token(61, kv_lora_rank=512, qk_rope_head_dim=64)  # DeepSeek-V3
        70272
    """
    check_size("num_layers", num_layers)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {dtype!r} ({type(dtype).__name__})")
    if (
        num_kv_heads is not None
        and head_size is not None
        and kv_lora_rank is None
        and qk_rope_head_dim is None
    ):
        check_size("num_kv_heads", num_kv_heads)
        check_size("head_size", head_size)
        numbers = 2 * num_kv_heads * head_size
    elif (
        kv_lora_rank is not None
        and qk_rope_head_dim is not None
        and num_kv_heads is None
        and head_size is None
    ):
        check_size("kv_lora_rank", kv_lora_rank)
        check_size("qk_rope_head_dim", qk_rope_head_dim)
        numbers = kv_lora_rank + qk_rope_head_dim
    else:
        raise ValueError(
            "give either num_kv_heads and head_size (MHA, GQA, MQA) or kv_lora_rank and "
            f"qk_rope_head_dim (MLA), got num_kv_heads={num_kv_heads}, head_size={head_size}, "
            f"kv_lora_rank={kv_lora_rank}, qk_rope_head_dim={qk_rope_head_dim}"
        )
    return num_layers * numbers * dtype.itemsize
