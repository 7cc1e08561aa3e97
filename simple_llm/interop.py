"""Conversion to and from other code: ``torch.nn.MultiheadAttention`` and the original project.

``from_torch`` and ``to_torch`` copy the weights of a ``MultiHeadAttention`` from and into PyTorch's
module (``MultiHeadAttention.from_torch`` and ``.to_torch`` call them).

The original project (github.com/pese-git/simple-llm) names its parts differently (``_q``,
``_layer1``, ``_norm1``...), keeps one ``nn.Linear`` per head where ``simple_llm.MultiHeadAttention``
has one fused ``qkv``, and stores the causal mask as a buffer ``_tril_mask``. Each module of the
package registers a ``load_state_dict`` pre-hook from here that maps those keys onto its own, so that
plain ``module.load_state_dict(original_state_dict)`` loads its ``state_dict``s. Keys already in
our layout pass unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from simple_llm.multi_head_attention import MultiHeadAttention


def mixed_layouts(original: str, ours: str) -> str:
    """The ``load_state_dict`` error for a ``state_dict`` that holds both key layouts."""
    return (
        f"state_dict holds both the original project's layout ({original}) and this package's "
        f"({ours}); keep one of them"
    )


def rename_prefixes(
    state_dict: dict[str, Any], prefix: str, names: Mapping[str, str], error_msgs: list[str]
) -> None:
    """Rename, in place, the keys ``prefix + old + rest`` to ``prefix + new + rest``.

    A key whose new name is already there (both layouts in one ``state_dict``) stays as it is
    and is reported in ``error_msgs``, which ``load_state_dict`` raises.
    """
    for key in list(state_dict):
        for old, new in names.items():
            if key.startswith(prefix + old):
                target = prefix + new + key[len(prefix + old) :]
                if target in state_dict:
                    error_msgs.append(mixed_layouts(key, target))
                else:
                    state_dict[target] = state_dict.pop(key)
                break


def head_attention_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``HeadAttention``: ``_q``, ``_k``, ``_v`` and the buffer ``_tril_mask``.

    ``_`` ends with ``error_msgs``, the list ``load_state_dict`` raises (its pre-hook signature).
    """
    rename_prefixes(state_dict, prefix, {"_q.": "q_proj.", "_k.": "k_proj.", "_v.": "v_proj."}, _[-1])
    state_dict.pop(prefix + "_tril_mask", None)


def multi_head_attention_hook(
    module: MultiHeadAttention, state_dict: dict[str, Any], prefix: str, *_: Any
) -> None:
    """Original ``MultiHeadAttention``: ``_heads.{h}._q/_k/_v`` per head and ``_layer``.

    The per-head weights ``(hs, C)`` are stacked into ``qkv.weight`` ``(3*H*hs, C)`` in the row
    order ``[Q of heads 0..H-1 | K ... | V ...]``. Nothing is converted unless all ``6*H`` keys
    are there: an incomplete or larger original checkpoint then fails as an unexpected or
    missing key, as ``load_state_dict`` reports it. A per-head tensor of another shape is
    reported as ``load_state_dict`` reports a size mismatch, naming its key and both shapes.
    """
    error_msgs = _[-1]
    H, hs, C = module.num_heads, module.head_size, module.emb_size
    keys = {
        (part, name): [f"{prefix}_heads.{h}._{part}.{name}" for h in range(H)]
        for part in "qkv"
        for name in ("weight", "bias")
    }
    if all(key in state_dict for names in keys.values() for key in names):
        if f"{prefix}qkv.weight" in state_dict or f"{prefix}qkv.bias" in state_dict:
            error_msgs.append(mixed_layouts(keys["q", "weight"][0], f"{prefix}qkv.weight"))
            return
        mismatched = [
            f"size mismatch for {key}: copying a param with shape {state_dict[key].shape} from checkpoint, "
            f"the shape in current model is {torch.Size(shape)} (one head's rows of qkv.{name})."
            for (_part, name), names in keys.items()
            for key, shape in zip(names, [(hs, C) if name == "weight" else (hs,)] * H)
            if state_dict[key].shape != shape
        ]
        if mismatched:
            error_msgs.extend(mismatched)
            return
        for name in ("weight", "bias"):
            parts = [state_dict.pop(key) for part in "qkv" for key in keys[part, name]]
            state_dict[f"{prefix}qkv.{name}"] = torch.cat(parts)  # (3*H*hs, C) or (3*H*hs,)
        for h in range(H):
            state_dict.pop(f"{prefix}_heads.{h}._tril_mask", None)
    rename_prefixes(state_dict, prefix, {"_layer.": "proj."}, error_msgs)


def feed_forward_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``FeedForward``: ``_layer1``/``_layer2``, or ``net.0``/``net.2`` in its earlier version."""
    rename_prefixes(
        state_dict,
        prefix,
        {"_layer1.": "up.", "_layer2.": "down.", "net.0.": "up.", "net.2.": "down."},
        _[-1],
    )


def decoder_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Original ``Decoder``: ``_heads``, ``_ff``, ``_norm1``, ``_norm2`` (the children map the rest)."""
    rename_prefixes(
        state_dict,
        prefix,
        {"_heads.": "attention.", "_ff.": "feed_forward.", "_norm1.": "norm1.", "_norm2.": "norm2."},
        _[-1],
    )


def from_torch(
    cls: type[MultiHeadAttention], module: nn.MultiheadAttention, max_seq_len: int, dropout: float = 0.0
) -> MultiHeadAttention:
    """A ``cls`` (``MultiHeadAttention``) with the weights of ``module``: see ``MultiHeadAttention.from_torch``."""
    if not isinstance(module, nn.MultiheadAttention):
        raise TypeError(f"module must be a torch.nn.MultiheadAttention, got {type(module).__name__}")
    if module.kdim != module.embed_dim or module.vdim != module.embed_dim:
        raise ValueError(f"kdim={module.kdim} and vdim={module.vdim} must equal embed_dim={module.embed_dim}")
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


def to_torch(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """``mha`` copied into a ``torch.nn.MultiheadAttention``: see ``MultiHeadAttention.to_torch``."""
    if mha.num_kv_heads != mha.num_heads or mha.rotary is not None:
        raise ValueError(
            f"nn.MultiheadAttention has neither grouped-query attention nor rotary positions, got "
            f"num_kv_heads={mha.num_kv_heads} (num_heads={mha.num_heads}), rope={mha.rotary is not None}"
        )
    if mha.window is not None or mha.alibi:
        raise ValueError(
            f"nn.MultiheadAttention has no sliding window and no ALiBi, got window={mha.window}, "
            f"alibi={mha.alibi}"
        )
    if mha.num_heads * mha.head_size != mha.emb_size:
        raise ValueError(
            f"nn.MultiheadAttention needs num_heads * head_size == emb_size, got "
            f"{mha.num_heads} * {mha.head_size} != {mha.emb_size}"
        )
    weight = mha.qkv.weight
    module = nn.MultiheadAttention(
        mha.emb_size, mha.num_heads, batch_first=True, device=weight.device, dtype=weight.dtype
    )
    with torch.no_grad():
        module.in_proj_weight.copy_(mha.qkv.weight)
        module.in_proj_bias.copy_(mha.qkv.bias)
        module.out_proj.weight.copy_(mha.proj.weight)
        module.out_proj.bias.copy_(mha.proj.bias)
    return module.train(mha.training)
