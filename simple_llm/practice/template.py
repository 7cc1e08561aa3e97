"""The mock interview's task: copy this file, fill in the functions, run
``python -m simple_llm.practice my_attention.py``. Shapes: B batch, T time, C = H * hs, H heads, hs head size.
"""

import torch


def causal_mask(T: int) -> torch.Tensor:
    """(T, T) bool: True where query t may see key s."""
    raise NotImplementedError


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, H, T_q, hs), k and v (B, H, T_k, hs), mask (T_q, T_k) True = may attend -> (out, weights)."""
    raise NotImplementedError


def multi_head_attention(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    b_qkv: torch.Tensor,
    w_o: torch.Tensor,
    b_o: torch.Tensor,
    num_heads: int,
    causal: bool = True,
) -> torch.Tensor:
    """x (B, T, C); w_qkv (3C, C) as in nn.Linear, rows [Q | K | V]; w_o (C, C) -> (B, T, C)."""
    raise NotImplementedError
