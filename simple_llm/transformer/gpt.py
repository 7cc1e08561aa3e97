"""``from simple_llm.transformer.gpt import GPT``, the original project's import path."""

from simple_llm.gpt import GPT

__all__ = ["GPT"]
