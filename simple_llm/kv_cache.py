"""KV cache: the keys and values of the tokens already seen, kept by one attention layer."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of one attention layer for the tokens seen so far.

    What is cached: the keys after the rotary positions (if any) and the values, of every
    key/value head, ``(B, H_kv, T_cached, hs)`` each. Queries are not cached: a new token needs
    only its own query. How it grows: each call of ``MultiHeadAttention.forward(x, cache=cache)``
    with ``x`` of ``T`` tokens appends ``T`` positions along dimension 2 (by concatenation), and
    its queries are taken to be positions ``length .. length+T-1``. How it is reset:
    ``reset`` empties it (then batch size, dtype and device may change).

    Examples:
        >>> import torch
        >>> cache = KVCache()
        >>> k, v = cache.append(torch.zeros(2, 1, 3, 4), torch.zeros(2, 1, 3, 4))
        >>> k, v = cache.append(torch.zeros(2, 1, 1, 4), torch.zeros(2, 1, 1, 4))
        >>> len(cache), tuple(cache.keys.shape)
        (4, (2, 1, 4, 4))
        >>> cache.reset()
        >>> len(cache), cache.keys
        (0, None)
    """

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of positions cached, ``T_cached``."""
        return 0 if self.keys is None else self.keys.size(2)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k`` and ``v`` ``(B, H_kv, T, hs)``; return all keys and values so far.

        Returns:
            ``(keys, values)``, each ``(B, H_kv, T_cached + T, hs)``.
        """
        for name, t in [("k", k), ("v", v)]:
            if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 4:
                got = (
                    f"{t.dtype} tensor of shape {tuple(t.shape)}"
                    if isinstance(t, torch.Tensor)
                    else type(t).__name__
                )
                raise TypeError(
                    f"{name} must be a floating-point tensor of shape (B, H_kv, T, hs), got {got}"
                )
        if k.shape != v.shape:
            raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
        if (k.dtype, k.device) != (v.dtype, v.device):
            raise TypeError(
                f"k and v must have the same dtype and device, got {k.dtype} on {k.device} and {v.dtype} on {v.device}"
            )
        if self.keys is None or self.values is None:
            self.keys, self.values = k, v
        else:
            B, H_kv, _, hs = self.keys.shape
            if (k.size(0), k.size(1), k.size(3)) != (B, H_kv, hs):
                raise ValueError(
                    f"cache holds (B, H_kv, hs)=({B}, {H_kv}, {hs}), got k of shape {tuple(k.shape)}; "
                    "call reset() first"
                )
            if (k.dtype, k.device) != (self.keys.dtype, self.keys.device):
                raise TypeError(
                    f"cache holds {self.keys.dtype} on {self.keys.device}, got k of {k.dtype} on {k.device}; "
                    "call reset() first"
                )
            self.keys = torch.cat([self.keys, k], dim=2)  # (B, H_kv, T_cached + T, hs)
            self.values = torch.cat([self.values, v], dim=2)  # (B, H_kv, T_cached + T, hs)
        return self.keys, self.values

    def reset(self) -> None:
        """Forget every cached position."""
        self.keys = self.values = None

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        if self.keys is None or self.values is None:
            return 0
        return self.keys.nbytes + self.values.nbytes

    def __repr__(self) -> str:
        shape = None if self.keys is None else tuple(self.keys.shape)
        return f"KVCache(length={len(self)}, keys shape={shape})"
