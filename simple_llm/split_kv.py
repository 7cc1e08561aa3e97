"""Split-KV decoding (Flash-Decoding): attention over key ranges computed apart, then merged.

Attention over all keys is a weighted average of attention over disjoint parts of them. A part
``p`` gives its output ``o_p`` (the softmax over its own keys, applied to its values) and the
log-sum-exp ``lse_p`` of its scaled scores. With ``m = max_p lse_p`` the merged result is

    w_p = exp(lse_p - m),  o = sum_p w_p o_p / sum_p w_p,  lse = m + log(sum_p w_p).

So the keys of a long cache can be split across thread blocks (or devices), each part computed
alone, and the parts combined at the end: what Flash-Decoding does when one query token would
otherwise keep one thread block busy over the whole cache.

Rows whose keys are all masked in a part follow ``tiled_attention``'s convention: output 0 and
``lse = -inf``. Such a part gets weight 0; a row masked in every part is all zeros with
``lse = -inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check_parts(outputs: object, lses: object) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Clear errors unless ``outputs`` and ``lses`` are equally long lists of matching tensors."""
    if not isinstance(outputs, (list, tuple)) or not isinstance(lses, (list, tuple)):
        raise TypeError(
            f"outputs and lses must be lists of tensors, got {type(outputs).__name__} and {type(lses).__name__}"
        )
    for name, parts in (("outputs", outputs), ("lses", lses)):
        for i, t in enumerate(parts):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name}[{i}] must be a floating-point tensor, got dtype {t.dtype}")
    if len(outputs) != len(lses):
        raise ValueError(
            f"outputs and lses must have the same length, got {len(outputs)} outputs and {len(lses)} lses"
        )
    if not outputs:
        raise ValueError("outputs and lses must hold at least one part each, got empty lists")
    o0, l0 = outputs[0], lses[0]
    if o0.dim() < 2:
        raise ValueError(f"outputs[0] must have shape (..., T_q, hs_v), got shape {tuple(o0.shape)}")
    for i, (o, lse) in enumerate(zip(outputs, lses)):
        if o.shape != o0.shape:
            raise ValueError(
                f"every output must have the shape of outputs[0] {tuple(o0.shape)}, "
                f"got outputs[{i}] of shape {tuple(o.shape)}"
            )
        if lse.shape != o0.shape[:-1]:
            raise ValueError(
                f"lses[{i}] must have shape (..., T_q) = {tuple(o0.shape[:-1])} (outputs' shape without hs_v), "
                f"got {tuple(lse.shape)}"
            )
        if o.dtype != o0.dtype or lse.dtype != l0.dtype:
            raise TypeError(
                f"every output must have dtype {o0.dtype} and every lse {l0.dtype} (those of part 0), "
                f"got outputs[{i}] {o.dtype} and lses[{i}] {lse.dtype}"
            )
        if o.device != o0.device or lse.device != o0.device:
            raise ValueError(
                f"every output and lse must be on {o0.device} (outputs[0]'s device), "
                f"got outputs[{i}] on {o.device} and lses[{i}] on {lse.device}"
            )
    return list(outputs), list(lses)


def merge_attention(
    outputs: Sequence[torch.Tensor], lses: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge attention computed over disjoint key ranges into attention over all of them.

    Each part is what ``tiled_attention(q, k_part, v_part, return_lse=True)`` returns for the
    same queries and one range of keys. A row whose keys are all masked in a part (output 0,
    ``lse = -inf``) gives that part weight 0; a row masked in every part comes out as zeros with
    ``lse = -inf``, as ``tiled_attention`` gives for a query that sees no key. The weights are
    computed in float64 if any input is float64, else in float32.

    Args:
        outputs: Partial outputs ``(..., T_q, hs_v)``, one per key range, of one shape and dtype.
        lses: Their log-sum-exps ``(..., T_q)`` of the scaled scores, one per key range.

    Returns:
        The pair ``(output, lse)``: attention over all keys ``(..., T_q, hs_v)`` in the outputs'
            dtype and its log-sum-exp ``(..., T_q)`` in the lses' dtype, so merged results can be
            merged again.

    Raises:
        TypeError: A part that is not a floating-point tensor, or parts of different dtypes.
        ValueError: Lists of different lengths, empty lists, or mismatched shapes or devices.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from simple_llm import tiled_attention
        >>> q, k, v = torch.randn(3, 2, 4, 10, 8, dtype=torch.float64).unbind(0)  # (B, H, T, hs)
        >>> parts = [tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True)
        ...          for a, b in [(0, 3), (3, 4), (4, 10)]]
        >>> out, lse = merge_attention([o for o, _ in parts], [s for _, s in parts])
        >>> out.shape, lse.shape
        (torch.Size([2, 4, 10, 8]), torch.Size([2, 4, 10]))
        >>> torch.allclose(out, F.scaled_dot_product_attention(q, k, v))
        True
    """
    # --8<-- [start:merge]
    outs, lse_list = _check_parts(outputs, lses)
    wide = torch.float64 in (outs[0].dtype, lse_list[0].dtype)
    compute = torch.float64 if wide else torch.float32
    lse = torch.stack(lse_list).to(compute)  # (P, ..., T_q), P parts
    m = lse.amax(dim=0)  # (..., T_q) the largest part
    m_safe = m.masked_fill(m == float("-inf"), 0.0)  # a row with no key anywhere: avoid (-inf) - (-inf)
    w = torch.exp(lse - m_safe)  # (P, ..., T_q), 0 for a part whose keys are all masked
    total = w.sum(dim=0)  # (..., T_q)
    empty = total == 0  # rows masked in every part
    total_safe = total.masked_fill(empty, 1.0)  # (..., T_q)
    o = torch.stack(outs).to(compute)  # (P, ..., T_q, hs_v)
    out = (w[..., None] * o).sum(dim=0) / total_safe[..., None]  # (..., T_q, hs_v), zeros where empty
    merged = torch.where(empty, float("-inf"), m_safe + torch.log(total_safe))  # (..., T_q)
    return out.to(outs[0].dtype), merged.to(lse_list[0].dtype)
    # --8<-- [end:merge]
