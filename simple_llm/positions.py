"""Positions: learned and sinusoidal vectors added to the tokens, rotary positions applied to Q and K."""

from __future__ import annotations

import math

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


_SCALING_KEYS = {
    "linear": ({"rope_type", "factor"}, set()),
    "dynamic": ({"rope_type", "factor", "original_max_position_embeddings"}, set()),
    "yarn": (
        {"rope_type", "factor", "original_max_position_embeddings"},
        {"beta_fast", "beta_slow", "attention_factor"},
    ),
}


def _check_positive_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"rope scaling {name} must be a number > 0, got {value!r} ({type(value).__name__})")
    if not 0 < value < float("inf"):
        raise ValueError(f"rope scaling {name} must be a finite number > 0, got {value!r}")


def _number(value: object) -> float:
    """``value`` as a float, once ``_check_scaling`` has checked it is an int or a float."""
    assert isinstance(value, (int, float)), value
    return float(value)


def _check_scaling(scaling: object) -> dict[str, object] | None:
    """A copy of a valid ``rope_scaling`` dict, or ``None``; otherwise a ValueError/TypeError naming the value."""
    if scaling is None:
        return None
    if not isinstance(scaling, dict):
        raise TypeError(f"scaling must be a dict in rope_scaling format or None, got {scaling!r}")
    rope_type = scaling.get("rope_type")
    if rope_type not in _SCALING_KEYS:
        raise ValueError(f"scaling rope_type must be one of {tuple(_SCALING_KEYS)}, got {rope_type!r}")
    required, optional = _SCALING_KEYS[rope_type]
    missing = sorted(required - scaling.keys())
    if missing:
        raise ValueError(f"rope_type {rope_type!r} needs the keys {missing}, got scaling={scaling!r}")
    unknown = sorted(str(k) for k in scaling.keys() - required - optional)
    if unknown:
        raise ValueError(
            f"unknown keys {unknown} for rope_type {rope_type!r} (allowed: {sorted(required | optional)})"
        )
    _check_positive_number("factor", scaling["factor"])
    if "original_max_position_embeddings" in scaling:
        check_size("original_max_position_embeddings", scaling["original_max_position_embeddings"])
    for name in ("beta_fast", "beta_slow"):
        if name in scaling:
            _check_positive_number(name, scaling[name])
    if scaling.get("attention_factor") is not None:
        _check_positive_number("attention_factor", scaling["attention_factor"])
    return dict(scaling)


class RotaryEmbedding(nn.Module):
    """Rotary positions (RoPE, Su et al. 2021), applied to queries and keys, no parameters.

    Convention: ``rotate_half`` (GPT-NeoX, Hugging Face). Coordinate ``i`` of a head is paired
    with coordinate ``i + hs/2`` and the pair is rotated by the angle ``p * base**(-2i/hs)`` at
    position ``p``. The RoFormer/Meta code pairs neighbours ``(2i, 2i+1)`` instead; the two give
    the same attention once the query and key weight rows of each head are permuted
    (``[0, 2, 4, ..., 1, 3, 5, ...]``). Because a rotation by ``a`` then by ``-b`` is a rotation
    by ``a - b``, the score of query ``p`` and key ``s`` depends on ``p - s`` only.

    Scaling (``scaling``, Hugging Face's ``rope_scaling`` format) stretches RoPE past the length
    ``L`` it was trained on; with ``s`` the ``factor`` and ``f_i = base**(-2i/hs)``:

    - ``{"rope_type": "linear", "factor": s}``: position interpolation (Chen et al. 2023), every
      frequency ``f_i / s``, so position ``s*p`` gets the angles position ``p`` had.
    - ``{"rope_type": "dynamic", "factor": s, "original_max_position_embeddings": L}``: NTK-aware
      dynamic scaling. The frequencies use the base
      ``base * (s*n/L - (s - 1)) ** (hs / (hs - 2))`` where ``n = max(start + T, L)`` is the
      total length of the current call: up to ``L`` the angles are plain RoPE, past it every
      position's angles change with ``n``. Keys rotated earlier at a shorter length therefore
      differ from the same keys rotated now, so a KV cache does not reproduce recomputation;
      ``GPT`` refuses a cache with this type.
    - ``{"rope_type": "yarn", "factor": s, "original_max_position_embeddings": L}`` with optional
      ``"beta_fast"`` (``32``), ``"beta_slow"`` (``1``), ``"attention_factor"``: YaRN (Peng et al.
      2023). Pair ``i`` makes ``L * f_i / (2*pi)`` turns over ``L`` positions; pairs with more
      than ``beta_fast`` turns keep ``f_i``, pairs with fewer than ``beta_slow`` get ``f_i / s``,
      and a linear ramp over the pair index mixes the two in between (the bounds rounded down
      and up to whole pairs). ``cos`` and ``sin`` are multiplied by the attention factor,
      ``0.1 * ln(s) + 1`` for ``s > 1`` (``1`` otherwise) unless ``"attention_factor"`` is
      given, which scales every score ``q . k`` by its square.

    Linear and YaRN angles depend on the position only, so a KV cache gives the same result as
    recomputation.

    Args:
        head_size: Head size ``hs``, even.
        base: Base of the frequencies. Default: ``10000.0``.
        scaling: A ``rope_scaling`` dict as above. Default: ``None`` (plain RoPE).

    Attributes:
        scaling (dict[str, object] | None): A copy of ``scaling``.
        attention_factor (float): Factor on ``cos`` and ``sin``: YaRN's, else ``1.0``.

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
        >>> linear = RotaryEmbedding(head_size=4, scaling={"rope_type": "linear", "factor": 2.0})
        >>> bool(torch.allclose(linear.angles(8)[6], rope.angles(4)[3]))
        True
        >>> yarn = RotaryEmbedding(4, scaling={"rope_type": "yarn", "factor": 4.0,
        ...                                    "original_max_position_embeddings": 16})
        >>> round(yarn.attention_factor, 4)
        1.1386
    """

    def __init__(
        self, head_size: int, base: float = 10000.0, scaling: dict[str, object] | None = None
    ) -> None:
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
        self.scaling = _check_scaling(scaling)
        numbers = {} if self.scaling is None else self.scaling
        self._rope_type = None if self.scaling is None else str(self.scaling["rope_type"])
        self._factor = _number(numbers.get("factor", 1.0))
        self._original_length = int(_number(numbers.get("original_max_position_embeddings", 1)))
        self._beta_fast = _number(numbers.get("beta_fast", 32.0))
        self._beta_slow = _number(numbers.get("beta_slow", 1.0))
        if self._rope_type == "dynamic" and head_size == 2:
            raise ValueError(
                f"dynamic rope scaling needs head_size >= 4 (exponent hs/(hs-2)), got {head_size}"
            )
        self.attention_factor = 1.0
        if self._rope_type == "yarn":
            given = numbers.get("attention_factor")
            default = 0.1 * math.log(self._factor) + 1.0 if self._factor > 1 else 1.0
            self.attention_factor = default if given is None else _number(given)

    def inv_freq(self, length: int = 1, device: torch.device | None = None) -> torch.Tensor:
        """Frequencies ``(hs/2,)`` in float64, scaled by ``scaling``; ``length``: total length (``"dynamic"``)."""
        check_size("length", length)
        hs = self.head_size
        i = torch.arange(0, hs, 2, dtype=torch.float64, device=device)  # (hs/2,)
        plain = self.base ** (-i / hs)  # (hs/2,)
        if self._rope_type is None:
            return plain
        s = self._factor
        if self._rope_type == "linear":
            return plain / s
        L = self._original_length
        if self._rope_type == "dynamic":
            n = max(length, L)
            grown = self.base * (s * n / L - (s - 1)) ** (hs / (hs - 2))
            return grown ** (-i / hs)  # (hs/2,)

        # yarn: pair j makes L * f_j / (2 pi) turns over L positions; solve turns == beta for j
        def pair_with_turns(turns: float) -> float:
            return hs * math.log(L / (turns * 2 * math.pi)) / (2 * math.log(self.base))

        low: float = max(math.floor(pair_with_turns(self._beta_fast)), 0)
        high: float = min(math.ceil(pair_with_turns(self._beta_slow)), hs - 1)
        if low == high:
            high += 0.001  # a step instead of a ramp, no division by zero
        j = torch.arange(hs // 2, dtype=torch.float64, device=device)  # (hs/2,)
        to_interpolate = ((j - low) / (high - low)).clamp(0, 1)  # (hs/2,): 0 keeps f_j, 1 gives f_j / s
        return plain * (1 - to_interpolate) + plain / s * to_interpolate  # (hs/2,)

    def angles(
        self, T: int, start: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> torch.Tensor:
        """Rotation angles ``(T, hs/2)``: ``angles[t, i] = (start + t) * inv_freq[i]``, ``base**(-2i/hs)`` unscaled."""
        _check_span(start, T, None)
        _check_dtype(dtype)
        p = torch.arange(start, start + T, dtype=dtype, device=device)  # (T,)
        if self.scaling is not None:
            return p[:, None] * self.inv_freq(start + T, device).to(dtype)[None, :]  # (T, hs/2)
        i = torch.arange(0, self.head_size, 2, dtype=dtype, device=device)  # (hs/2,)
        return p[:, None] * self.base ** (-i / self.head_size)[None, :]  # (T, hs/2)

    # --8<-- [start:rotate]
    def cos_sin(
        self, T: int, start: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` of the angles, each ``(T, hs)`` in ``dtype``: a GPT computes them once per forward."""
        angles = self.angles(T, start, _angle_dtype(dtype), device)  # (T, hs/2)
        a = self.attention_factor  # 1.0 except with YaRN
        return (angles.cos() * a).repeat(1, 2).to(dtype), (angles.sin() * a).repeat(1, 2).to(
            dtype
        )  # (T, hs) each

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


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's slopes (Press et al. 2021), float32 ``(H,)``: head ``h`` adds ``-m_h * (t - j)`` to score ``(t, j)``.

    For ``H`` a power of two, ``2**(-8*i/H)`` for ``i = 1 .. H`` (``H = 8``: ``1/2, ..., 1/256``).
    Otherwise, as in the paper's code, the slopes of the largest power of two ``n < H``, then every
    other slope of those of ``2n`` (its 1st, 3rd, ...), ``H - n`` of them.

    Examples:
        >>> alibi_slopes(3)  # the 2 slopes of H=2, then the first of H=4
        tensor([0.0625, 0.0039, 0.2500])
    """
    return torch.tensor(slopes_of_alibi(num_heads), dtype=torch.float32)  # (H,)


def slopes_of_alibi(num_heads: int) -> list[float]:
    """``alibi_slopes`` as Python floats (float64): a float64 model gets them unrounded."""
    check_size("num_heads", num_heads)

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]

    n = 2 ** math.floor(math.log2(num_heads))
    return geometric(n) + geometric(2 * n)[0::2][: num_heads - n]
