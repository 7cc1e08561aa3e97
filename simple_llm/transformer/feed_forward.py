"""The original project's module ``simple_llm.transformer.feed_forward``: the package's ``simple_llm.FeedForward``."""

from simple_llm.feed_forward import FeedForward

__all__ = ["FeedForward"]
