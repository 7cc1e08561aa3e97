"""The original project's module ``simple_llm.transformer.head_attention``: the package's ``simple_llm.HeadAttention``."""

from simple_llm.head_attention import HeadAttention

__all__ = ["HeadAttention"]
