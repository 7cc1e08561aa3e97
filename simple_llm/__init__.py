"""Multi-head attention, a feed-forward block and a decoder block, proven equal to PyTorch.

Shape legend used in every docstring and shape comment of the package:

- ``B``: batch size
- ``T``: sequence length (time)
- ``C``: embedding size (``emb_size``)
- ``H``: number of heads (``num_heads``)
- ``hs``: head size (``head_size``)
"""

from simple_llm.decoder import Decoder
from simple_llm.feed_forward import FeedForward
from simple_llm.head_attention import HeadAttention
from simple_llm.masks import padding_mask
from simple_llm.multi_head_attention import HeadView, MultiHeadAttention
from simple_llm.plotting import plot_attention_heads
from simple_llm.view import AttentionView, attention_view

__all__ = [
    "AttentionView",
    "Decoder",
    "FeedForward",
    "HeadAttention",
    "HeadView",
    "MultiHeadAttention",
    "attention_view",
    "padding_mask",
    "plot_attention_heads",
]
