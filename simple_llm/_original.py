"""Loading ``state_dict``s saved by the original project (github.com/pese-git/simple-llm).

The original modules name their parts differently (``_q``, ``_layer1``, ``_norm1``...), keep one
``nn.Linear`` per head where ``simple_llm.MultiHeadAttention`` has one fused ``qkv``, and
store the causal mask as a buffer ``_tril_mask``. Each module of the package registers a
``load_state_dict`` pre-hook from here that maps those keys onto its own, so that plain
``module.load_state_dict(original_state_dict)`` works. Keys already in our layout pass unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn


def rename_prefixes(state_dict: dict[str, Any], prefix: str, names: Mapping[str, str]) -> None:
    """Rename, in place, the keys ``prefix + old + rest`` to ``prefix + new + rest``."""
    for key in list(state_dict):
        for old, new in names.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
                break


def head_attention_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``HeadAttention``: ``_q``, ``_k``, ``_v`` and the buffer ``_tril_mask``."""
    rename_prefixes(state_dict, prefix, {"_q.": "q_proj.", "_k.": "k_proj.", "_v.": "v_proj."})
    state_dict.pop(prefix + "_tril_mask", None)


def multi_head_attention_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``MultiHeadAttention``: ``_heads.{h}._q/_k/_v`` per head and ``_layer``.

    The per-head weights ``(hs, C)`` are stacked into ``qkv.weight`` ``(3*H*hs, C)`` in the row
    order ``[Q of heads 0..H-1 | K ... | V ...]``. Nothing is converted unless all ``6*H`` keys
    are there: an incomplete or larger original checkpoint then fails as an unexpected or
    missing key, as ``load_state_dict`` reports it.
    """
    H = module.num_heads
    keys = {
        (part, name): [f"{prefix}_heads.{h}._{part}.{name}" for h in range(H)]
        for part in "qkv"
        for name in ("weight", "bias")
    }
    if all(key in state_dict for names in keys.values() for key in names):
        for name in ("weight", "bias"):
            parts = [state_dict.pop(key) for part in "qkv" for key in keys[part, name]]
            state_dict[f"{prefix}qkv.{name}"] = torch.cat(parts)  # (3*H*hs, C) or (3*H*hs,)
        for h in range(H):
            state_dict.pop(f"{prefix}_heads.{h}._tril_mask", None)
    rename_prefixes(state_dict, prefix, {"_layer.": "proj."})


def feed_forward_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``FeedForward``: ``_layer1``/``_layer2``, or ``net.0``/``net.2`` in its earlier version."""
    rename_prefixes(
        state_dict, prefix, {"_layer1.": "up.", "_layer2.": "down.", "net.0.": "up.", "net.2.": "down."}
    )


def decoder_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``Decoder``: ``_heads``, ``_ff``, ``_norm1``, ``_norm2`` (the children map the rest)."""
    rename_prefixes(
        state_dict,
        prefix,
        {"_heads.": "attention.", "_ff.": "feed_forward.", "_norm1.": "norm1.", "_norm2.": "norm2."},
    )
