"""The original project's import paths: ``from simple_llm.transformer import MultiHeadAttention``.

The original project (github.com/pese-git/simple-llm) kept its modules in ``simple_llm.transformer``.
These names are the package's own classes, not copies: ``simple_llm.transformer.MultiHeadAttention
is simple_llm.MultiHeadAttention``. A ``state_dict`` saved from the original ``HeadAttention``,
``MultiHeadAttention``, ``FeedForward`` or ``Decoder`` loads into them with plain
``load_state_dict``. The original ``GPT`` does not: it is post-LN and has other keys.
"""

from simple_llm.transformer.decoder import Decoder
from simple_llm.transformer.feed_forward import FeedForward
from simple_llm.transformer.gpt import GPT
from simple_llm.transformer.head_attention import HeadAttention
from simple_llm.transformer.multi_head_attention import MultiHeadAttention

__all__ = ["GPT", "Decoder", "FeedForward", "HeadAttention", "MultiHeadAttention"]
