"""Positions: learned and sinusoidal vectors added to the tokens, rotary positions applied to Q and K."""

from __future__ import annotations

import torch
import torch.nn as nn

from simple_llm._checks import check_size


def _check_span(start: object, T: int, limit: int | None) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    check_size("T", T)
    if limit is not None and start + T > limit:
        raise ValueError(f"positions {start}..{start + T - 1} exceed max_seq_len={limit}")


def _check_dtype(dtype: object) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")


def _angle_dtype(dtype: torch.dtype) -> torch.dtype:
    """Angles are computed in float64 for float64 models and in float32 otherwise."""
    _check_dtype(dtype)
    return torch.float64 if dtype == torch.float64 else torch.float32


class LearnedPositions(nn.Module):
    """One trained vector per position, ``nn.Embedding(max_seq_len, C)`` (GPT-2, the original project).

    Args:
        max_seq_len: Number of positions ``0 .. max_seq_len-1``.
        emb_size: Embedding size ``C``.

    Shape:
        - output of ``forward(T, start)``: ``(T, C)``, the vectors of positions ``start .. start+T-1``.

    Examples:
        >>> LearnedPositions(max_seq_len=16, emb_size=8)(5).shape
        torch.Size([5, 8])
    """

    def __init__(self, max_seq_len: int, emb_size: int) -> None:
        super().__init__()
        check_size("max_seq_len", max_seq_len)
        check_size("emb_size", emb_size)
        self.max_seq_len = max_seq_len
        self.embedding = nn.Embedding(max_seq_len, emb_size)

    def forward(self, T: int, start: int = 0) -> torch.Tensor:
        """Vectors of positions ``start .. start+T-1``, ``(T, C)``."""
        _check_span(start, T, self.max_seq_len)
        return self.embedding.weight[start : start + T]  # (T, C)


# --8<-- [start:sinusoidal]
def sinusoidal_positions(
    T: int,
    emb_size: int,
    start: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Sinusoidal positions of Vaswani et al. (2017), ``(T, C)``.

    ``PE[p, 2i] = sin(p / 10000**(2i/C))`` and ``PE[p, 2i+1] = cos(p / 10000**(2i/C))``.

    Args:
        T: Number of positions.
        emb_size: Embedding size ``C``, even.
        start: First position. Default: ``0``.
        dtype: Dtype of the result. Default: ``None`` (``torch.get_default_dtype()``).
        device: Device of the result. Default: ``None`` (CPU).

    Examples:
        >>> sinusoidal_positions(3, 4)
        tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
                [ 0.8415,  0.5403,  0.0100,  0.9999],
                [ 0.9093, -0.4161,  0.0200,  0.9998]])
    """
    check_size("emb_size", emb_size)
    if emb_size % 2:
        raise ValueError(f"sinusoidal positions need an even emb_size, got {emb_size}")
    _check_span(start, T, None)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    work = _angle_dtype(dtype)
    p = torch.arange(start, start + T, dtype=work, device=device)  # (T,)
    inv_freq = 10000.0 ** (-torch.arange(0, emb_size, 2, dtype=work, device=device) / emb_size)  # (C/2,)
    angles = p[:, None] * inv_freq[None, :]  # (T, C/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1).to(dtype)  # (T, C)


# --8<-- [end:sinusoidal]


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal positions (no parameters), see ``sinusoidal_positions``.

    Args:
        max_seq_len: Number of positions accepted.
        emb_size: Embedding size ``C``, even.

    Examples:
        >>> SinusoidalPositions(max_seq_len=16, emb_size=8)(5).shape
        torch.Size([5, 8])
    """

    def __init__(self, max_seq_len: int, emb_size: int) -> None:
        super().__init__()
        check_size("max_seq_len", max_seq_len)
        check_size("emb_size", emb_size)
        if emb_size % 2:
            raise ValueError(f"sinusoidal positions need an even emb_size, got {emb_size}")
        self.max_seq_len = max_seq_len
        self.emb_size = emb_size

    def forward(
        self,
        T: int,
        start: int = 0,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """Vectors of positions ``start .. start+T-1``, ``(T, C)``."""
        _check_span(start, T, self.max_seq_len)
        return sinusoidal_positions(T, self.emb_size, start, dtype, device)  # (T, C)


class RotaryEmbedding(nn.Module):
    """Rotary positions (RoPE, Su et al. 2021), applied to queries and keys, no parameters.

    Convention: ``rotate_half`` (GPT-NeoX, Hugging Face). Coordinate ``i`` of a head is paired
    with coordinate ``i + hs/2`` and the pair is rotated by the angle ``p * base**(-2i/hs)`` at
    position ``p``. The RoFormer/Meta code pairs neighbours ``(2i, 2i+1)`` instead; the two give
    the same attention once the query and key weight rows of each head are permuted
    (``[0, 2, 4, ..., 1, 3, 5, ...]``). Because a rotation by ``a`` then by ``-b`` is a rotation
    by ``a - b``, the score of query ``p`` and key ``s`` depends on ``p - s`` only.

    Args:
        head_size: Head size ``hs``, even.
        base: Base of the frequencies. Default: ``10000.0``.

    Shape:
        - x: ``(..., T, hs)``; ``forward(x, start)`` rotates row ``t`` by position ``start + t``.
        - output: same shape as ``x``.

    Examples:
        >>> import torch
        >>> rope = RotaryEmbedding(head_size=4)
        >>> q = torch.ones(1, 2, 3, 4)
        >>> rope(q).shape
        torch.Size([1, 2, 3, 4])
        >>> bool(torch.allclose(rope(q).norm(dim=-1), q.norm(dim=-1)))
        True
    """

    def __init__(self, head_size: int, base: float = 10000.0) -> None:
        super().__init__()
        check_size("head_size", head_size)
        if head_size % 2:
            raise ValueError(f"rotary positions need an even head_size, got {head_size}")
        if isinstance(base, bool) or not isinstance(base, (int, float)):
            raise TypeError(f"base must be a number > 1, got {base!r} ({type(base).__name__})")
        if not 1 < base < float("inf"):
            raise ValueError(f"base must be a finite number > 1, got {base!r}")
        self.head_size = head_size
        self.base = float(base)

    def angles(
        self, T: int, start: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> torch.Tensor:
        """Rotation angles ``(T, hs/2)``: ``angles[t, i] = (start + t) * base**(-2i/hs)``."""
        _check_span(start, T, None)
        _check_dtype(dtype)
        p = torch.arange(start, start + T, dtype=dtype, device=device)  # (T,)
        i = torch.arange(0, self.head_size, 2, dtype=dtype, device=device)  # (hs/2,)
        return p[:, None] * self.base ** (-i / self.head_size)[None, :]  # (T, hs/2)

    # --8<-- [start:rotate]
    def cos_sin(
        self, T: int, start: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` of the angles, each ``(T, hs)`` in ``dtype``: a GPT computes them once per forward."""
        angles = self.angles(T, start, _angle_dtype(dtype), device)  # (T, hs/2)
        return angles.cos().repeat(1, 2).to(dtype), angles.sin().repeat(1, 2).to(dtype)  # (T, hs) each

    def forward(
        self, x: torch.Tensor, start: int = 0, cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Rotate ``x`` ``(..., T, hs)`` as positions ``start .. start+T-1``, or by ``cos_sin`` from ``cos_sin()``."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
            got = (
                f"{x.dtype} tensor of shape {tuple(x.shape)}"
                if isinstance(x, torch.Tensor)
                else type(x).__name__
            )
            raise TypeError(f"x must be a floating-point tensor of shape (..., T, hs), got {got}")
        if x.size(-1) != self.head_size:
            raise ValueError(f"x must have last dimension hs={self.head_size}, got shape {tuple(x.shape)}")
        if cos_sin is None:
            cos_sin = self.cos_sin(x.size(-2), start, x.dtype, x.device)
        else:
            self._check_cos_sin(cos_sin, x.size(-2), start)
        cos, sin = (c.to(x.dtype) for c in cos_sin)  # (T, hs) each
        x1, x2 = x.chunk(2, dim=-1)  # (..., T, hs/2) each
        rotated_half = torch.cat([-x2, x1], dim=-1)  # (..., T, hs)
        return x * cos + rotated_half * sin  # (..., T, hs)

    # --8<-- [end:rotate]

    def _check_cos_sin(self, cos_sin: object, T: int, start: int) -> None:
        if start != 0:
            raise ValueError(f"give either start ({start}) or cos_sin, not both: cos_sin holds the positions")
        expected = (T, self.head_size)
        if not (
            isinstance(cos_sin, tuple)
            and len(cos_sin) == 2
            and all(isinstance(c, torch.Tensor) and tuple(c.shape) == expected for c in cos_sin)
        ):
            raise ValueError(
                f"cos_sin must be a pair (cos, sin) of tensors of shape {expected}, from cos_sin()"
            )
