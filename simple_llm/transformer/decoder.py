"""The original project's module ``simple_llm.transformer.decoder``: the package's ``simple_llm.Decoder``."""

from simple_llm.decoder import Decoder

__all__ = ["Decoder"]
