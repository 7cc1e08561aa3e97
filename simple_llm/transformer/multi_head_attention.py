"""The original project's module ``simple_llm.transformer.multi_head_attention``: the package's ``simple_llm.MultiHeadAttention``."""

from simple_llm.multi_head_attention import MultiHeadAttention

__all__ = ["MultiHeadAttention"]
