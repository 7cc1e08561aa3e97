"""Argument checks shared by the modules: cheap, no device syncs."""

from __future__ import annotations

import torch


def check_size(name: str, value: object) -> None:
    """Raise unless ``value`` is a positive ``int`` (``bool`` is rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_flag(name: str, value: object) -> None:
    """Raise a ``TypeError`` unless ``value`` is a ``bool`` (``"False"``, ``None``, ``1`` are not)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")


def check_dropout(value: object) -> None:
    """Raise unless ``value`` is a probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"dropout must be a float in [0, 1), got {value!r} ({type(value).__name__})")
    if not 0 <= value < 1:
        raise ValueError(f"dropout must be a float in [0, 1), got {value!r}")


_CONVERT = {
    torch.float64: "double()",
    torch.float32: "float()",
    torch.float16: "half()",
    torch.bfloat16: "bfloat16()",
}


def check_like(x: torch.Tensor, weight: torch.Tensor) -> None:
    """Raise a ``TypeError`` naming both dtypes (or devices) unless ``x`` matches the module's ``weight``."""
    if x.dtype != weight.dtype:
        to_module = _CONVERT.get(x.dtype, f"to({x.dtype})")
        to_input = _CONVERT.get(weight.dtype, f"to({weight.dtype})")
        raise TypeError(
            f"x has dtype {x.dtype} but the module's weights are {weight.dtype}: convert the module "
            f"(module.{to_module}) or the input (x.{to_input})"
        )
    if x.device != weight.device:
        raise TypeError(
            f"x is on {x.device} but the module's weights are on {weight.device}: move one, "
            f"module.to({str(x.device)!r}) or x.to({str(weight.device)!r})"
        )


def check_input(
    x: object, emb_size: int, max_seq_len: int | None = None, like: torch.Tensor | None = None
) -> tuple[int, int]:
    """Check that ``x`` is a float ``(B, T, C)`` tensor with ``1 <= T <= max_seq_len``.

    ``max_seq_len=None`` puts no upper limit on ``T``. ``like``: a weight of the module; ``x``
    must have its dtype and device.

    Returns:
        ``(B, T)``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (B, T, C), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; use x.float()")
    if x.dim() != 3:
        raise ValueError(f"x must be 3-D (B, T, C) with C={emb_size}, got shape {tuple(x.shape)}")
    B, T, C = x.shape
    if emb_size != C:
        raise ValueError(f"x must have last dimension C={emb_size}, got shape {tuple(x.shape)}")
    if max_seq_len is not None and max_seq_len < T:
        raise ValueError(f"sequence length T={T} exceeds max_seq_len={max_seq_len}")
    if T == 0:
        raise ValueError(f"x must contain at least one token, got shape {tuple(x.shape)}")
    if like is not None:
        check_like(x, like)
    return B, T
