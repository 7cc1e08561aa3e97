"""KV cache: the keys and values of the tokens already seen, kept by one attention layer."""

from __future__ import annotations

import torch

from simple_llm.masks import check_window


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
        self._dropped = 0  # positions a RollingKVCache no longer keeps

    def __len__(self) -> int:
        """Number of positions cached, ``T_cached``."""
        return 0 if self.keys is None else self.keys.size(2)

    @property
    def seen(self) -> int:
        """Positions appended since the last reset: the position of the next token."""
        return len(self) + self._dropped

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
        self._dropped = 0

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        if self.keys is None or self.values is None:
            return 0
        return self.keys.nbytes + self.values.nbytes

    def __repr__(self) -> str:
        shape = None if self.keys is None else tuple(self.keys.shape)
        return f"KVCache(length={len(self)}, keys shape={shape})"


class RollingKVCache(KVCache):
    """KV cache of a sliding-window layer: the first ``sink_tokens`` positions and the last ``window - 1``.

    The next query needs no other keys: between calls it holds at most ``S + W - 1`` positions,
    however many were generated, with the angles they were written at.

    Args:
        window: Window ``W >= 1`` of the attention layer it serves.
        sink_tokens: Number ``S`` of first positions kept, ``0 <= S < W``. Default: ``0``.

    Examples:
        >>> import torch
        >>> cache = RollingKVCache(window=3, sink_tokens=1)
        >>> for _ in range(6):  # one token at a time
        ...     k, v = cache.append(torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4))
        >>> cache.seen, len(cache), cache.positions().tolist()
        (6, 3, [0, 4, 5])
    """

    def __init__(self, window: int, sink_tokens: int = 0) -> None:
        super().__init__()
        if window is None:
            raise TypeError("window must be an int >= 1, got None")
        check_window(window, sink_tokens)
        self.window = window
        self.sink_tokens = sink_tokens

    def positions(self, device: torch.device | None = None) -> torch.Tensor:
        """Positions ``(T_cached,)`` (int64) of the kept keys, in cache order: the sinks, then the latest."""
        n, S = len(self), self.sink_tokens
        if not self._dropped:
            return torch.arange(n, device=device)  # (T_cached,)
        return torch.cat(
            [torch.arange(S, device=device), torch.arange(self.seen - (n - S), self.seen, device=device)]
        )

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k`` and ``v`` ``(B, H_kv, T, hs)``, return the kept ones followed by them, ``(B, H_kv, T_cached + T, hs)`` each."""
        keys, values = super().append(k, v)  # (B, H_kv, T_cached + T, hs)
        n, S, recent = keys.size(2), self.sink_tokens, self.window - 1
        if n > S + recent:
            self.keys = torch.cat(
                [keys[:, :, :S], keys[:, :, n - recent :]], dim=2
            )  # (B, H_kv, S + W - 1, hs)
            self.values = torch.cat(
                [values[:, :, :S], values[:, :, n - recent :]], dim=2
            )  # (B, H_kv, S + W - 1, hs)
            self._dropped += n - S - recent
        return keys, values

    def __repr__(self) -> str:
        shape = None if self.keys is None else tuple(self.keys.shape)
        return (
            f"RollingKVCache(window={self.window}, sink_tokens={self.sink_tokens}, seen={self.seen}, "
            f"length={len(self)}, keys shape={shape})"
        )
