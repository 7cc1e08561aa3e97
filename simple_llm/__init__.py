"""Multi-head attention, a feed-forward block and a decoder block, tested against PyTorch.

``MultiHeadAttention`` is compared with ``torch.nn.MultiheadAttention`` and
``F.scaled_dot_product_attention`` (same weights) on 16 shapes ``(B, T, H, hs)``, with and without
padding, in float32 and float64 (tests/test_interop.py). The original project's import paths
and saved ``state_dict``s work too: see ``simple_llm.transformer``.

Shape legend used in every docstring and shape comment of the package:

- ``B``: batch size
- ``T``: sequence length (time)
- ``C``: embedding size (``emb_size``)
- ``H``: number of heads (``num_heads``)
- ``hs``: head size (``head_size``)
- ``H_kv``: number of key/value heads (``num_kv_heads``, grouped-query attention)
- ``V``: vocabulary size (``vocab_size``)
- ``r_q``, ``r_kv``, ``d_nope``, ``d_rope``, ``d_v``, ``S``: latent ranks, head parts and number of keys
  (positions in the cache) of ``MultiHeadLatentAttention``, see ``simple_llm.latent_attention``
"""

from importlib.metadata import PackageNotFoundError, version

from simple_llm.decoder import Decoder
from simple_llm.feed_forward import FeedForward
from simple_llm.gpt import GPT, pick_next_token
from simple_llm.head_attention import HeadAttention, HeadView
from simple_llm.kv_cache import KVCache, RollingKVCache
from simple_llm.latent_attention import LatentCache, MultiHeadLatentAttention, kv_cache_bytes_per_token
from simple_llm.masks import causal_after, padding_mask, sliding_window_mask
from simple_llm.multi_head_attention import MultiHeadAttention
from simple_llm.paged_cache import PagedKVCache
from simple_llm.plotting import plot_attention_heads
from simple_llm.positions import (
    LearnedPositions,
    RotaryEmbedding,
    SinusoidalPositions,
    alibi_slopes,
    sinusoidal_positions,
)
from simple_llm.split_kv import merge_attention
from simple_llm.tiled import tiled_attention
from simple_llm.view import AttentionView, attention_view

try:  # one version number, pyproject.toml's, as the installed package's metadata carries it
    __version__ = version("simple-llm")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AttentionView",
    "Decoder",
    "FeedForward",
    "GPT",
    "HeadAttention",
    "HeadView",
    "KVCache",
    "LatentCache",
    "LearnedPositions",
    "MultiHeadAttention",
    "MultiHeadLatentAttention",
    "PagedKVCache",
    "RollingKVCache",
    "RotaryEmbedding",
    "SinusoidalPositions",
    "alibi_slopes",
    "attention_view",
    "causal_after",
    "kv_cache_bytes_per_token",
    "merge_attention",
    "padding_mask",
    "pick_next_token",
    "plot_attention_heads",
    "sinusoidal_positions",
    "sliding_window_mask",
    "tiled_attention",
]
