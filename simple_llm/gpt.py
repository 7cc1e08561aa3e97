"""A small GPT: token embedding, positions, pre-LN decoder blocks, a final LayerNorm, a linear head."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn

from simple_llm._checks import check_dropout, check_size
from simple_llm.decoder import Decoder
from simple_llm.kv_cache import KVCache, RollingKVCache
from simple_llm.masks import check_window
from simple_llm.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "none")


class GPT(nn.Module):
    """Decoder-only language model with the original project's signature.

    LayerNorm placement: pre-LN blocks (``Decoder(norm_first=True)``) and one final LayerNorm
    before the head, as in GPT-2. Pre-LN keeps a clean residual path from the embeddings to the
    head, so a deep stack trains without learning-rate warm-up tricks; the residual stream is
    then never normalised inside the blocks, hence the final LayerNorm.

    Args:
        vocab_size: Vocabulary size ``V``.
        max_seq_len: Longest context ``T``; ``generate`` keeps the last ``max_seq_len`` tokens.
        emb_size: Embedding size ``C``.
        num_heads: Heads ``H`` per block.
        head_size: Head size ``hs``.
        num_layers: Number of decoder blocks.
        dropout: Dropout after the embeddings and inside the blocks. Default: ``0.1``.
        num_kv_heads: Key/value heads ``H_kv`` (grouped-query attention; ``1``: multi-query).
            Default: ``None`` (``H``).
        positions: ``"learned"`` (trained vectors added to the tokens, the original's),
            ``"sinusoidal"`` (fixed vectors of Vaswani et al. added to the tokens), ``"rope"``
            (rotary positions applied to queries and keys in every block), ``"alibi"`` (ALiBi's
            per-head linear biases on the scores, ``MultiHeadAttention(alibi=True)``) or
            ``"none"`` (NoPE: no position information at all, the causal mask alone).
            Default: ``"learned"``.
        rope_scaling: A ``rope_scaling`` dict (``"linear"``, ``"dynamic"`` or ``"yarn"``) for every
            block's ``RotaryEmbedding(head_size, scaling=rope_scaling)``; only with
            ``positions="rope"``. With ``"dynamic"`` the angles depend on the total length, so a KV
            cache cannot reproduce recomputation: ``forward`` with a cache and ``generate`` with
            ``use_cache=True`` raise. Default: ``None``.
        window: Sliding window ``W`` of every block (see ``generate`` past ``max_seq_len``).
            Default: ``None``.
        sink_tokens: Attention sinks of every block, ``0 <= S < W``. Default: ``0``.

    Shape:
        - x: ``(B, T)`` token ids (int64).
        - output: ``(B, T, V)`` logits.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> model = GPT(vocab_size=10, max_seq_len=8, emb_size=16, num_heads=2, head_size=8,
        ...             num_layers=2, dropout=0.0).eval()
        >>> model(torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 10])
        >>> model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False).shape
        torch.Size([1, 7])
        >>> windowed = GPT(10, 8, 16, 2, 8, 2, 0.0, positions="alibi", window=4, sink_tokens=1).eval()
        >>> windowed.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=12, do_sample=False).shape  # past 8
        torch.Size([1, 15])
    """

    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        emb_size: int,
        num_heads: int,
        head_size: int,
        num_layers: int,
        dropout: float = 0.1,
        *,
        num_kv_heads: int | None = None,
        positions: str = "learned",
        rope_scaling: dict[str, object] | None = None,
        window: int | None = None,
        sink_tokens: int = 0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("vocab_size", vocab_size),
            ("max_seq_len", max_seq_len),
            ("num_layers", num_layers),
        ]:
            check_size(name, value)
        check_size("emb_size", emb_size)
        check_dropout(dropout)
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if rope_scaling is not None and positions != "rope":
            raise ValueError(
                f"rope_scaling={rope_scaling!r} needs positions='rope', got positions={positions!r}"
            )
        check_window(window, sink_tokens)
        if sink_tokens and isinstance(rope_scaling, dict) and rope_scaling.get("rope_type") == "dynamic":
            raise ValueError(
                f"sink_tokens={sink_tokens} with rope_scaling={rope_scaling!r}: a sink is scored at its "
                "place in the cache, whose angles 'dynamic' changes with the total length"
            )
        self.window = window
        self.sink_tokens = sink_tokens
        self.vocab_size = vocab_size
        self.max_seq_len = max_seq_len
        self.emb_size = emb_size
        self.num_layers = num_layers
        self.positions = positions
        self.token_embeddings = nn.Embedding(vocab_size, emb_size)
        self.position_embeddings: LearnedPositions | SinusoidalPositions | None
        if positions == "learned":
            self.position_embeddings = LearnedPositions(max_seq_len, emb_size)
        elif positions == "sinusoidal":
            self.position_embeddings = SinusoidalPositions(max_seq_len, emb_size)
        else:
            self.position_embeddings = None
        self.dropout = nn.Dropout(dropout)
        self.decoders = nn.ModuleList(
            Decoder(
                num_heads,
                emb_size,
                head_size,
                max_seq_len,
                dropout,
                norm_first=True,
                num_kv_heads=num_kv_heads,
                rope=positions == "rope",
                window=window,
                sink_tokens=sink_tokens,
                alibi=positions == "alibi",
            )
            for _ in range(num_layers)
        )
        if rope_scaling is not None:
            for block in self.decoders:
                cast(Decoder, block).attention.rotary = RotaryEmbedding(head_size, scaling=rope_scaling)
        self.rope_scaling = None if rope_scaling is None else dict(rope_scaling)
        self.norm = nn.LayerNorm(emb_size)
        self.head = nn.Linear(emb_size, vocab_size)

    def new_cache(self) -> list[KVCache]:
        """An empty cache per block, for ``forward(x, cache=...)``.

        ``simple_llm.KVCache``, or with a ``window`` ``simple_llm.RollingKVCache(window,
        sink_tokens)``: at most ``sink_tokens + window - 1`` positions kept per block.
        """
        if self.window is not None:
            return [RollingKVCache(self.window, self.sink_tokens) for _ in self.decoders]
        return [KVCache() for _ in self.decoders]

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Logits ``(B, T, V)`` of the next token after each position of ``x`` ``(B, T)``.

        Args:
            x: Token ids ``(B, T)``.
            cache: Optional list from ``new_cache``; ``x`` then continues the cached tokens
                (it holds positions ``cache[0].seen ..``) and every block's cache grows by ``T``
                (a ``RollingKVCache`` then drops what its window no longer needs). Default: ``None``.
        """
        B, T = self._check_ids(x)
        if cache is not None:
            self._check_no_dynamic_cache()
        start = self._check_cache(cache, T)
        h = self.token_embeddings(x)  # (B, T, C)
        if isinstance(self.position_embeddings, SinusoidalPositions):
            h = h + self.position_embeddings(T, start, h.dtype, h.device)  # (B, T, C)
        elif self.position_embeddings is not None:
            h = h + self.position_embeddings(T, start)  # (B, T, C)
        h = self.dropout(h)
        rotary = cast(Decoder, self.decoders[0]).attention.rotary  # the same in every block, or None
        cos_sin = None if rotary is None else rotary.cos_sin(T, start, h.dtype, h.device)  # (T, hs) each
        for i, block in enumerate(self.decoders):
            h = block(h, cache=None if cache is None else cache[i], cos_sin=cos_sin)  # (B, T, C)
        return self.head(self.norm(h))  # (B, T, V)

    # --8<-- [end:forward]

    # --8<-- [start:generate]
    @torch.no_grad()
    def generate(
        self,
        x: torch.Tensor,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` tokens to ``x``, one at a time.

        The model reads at most the last ``max_seq_len`` tokens. With ``use_cache`` each step
        feeds only the new token and reuses the keys and values of the earlier ones; once the
        context window slides, the positions of every kept token change, so the cache is
        emptied and the last ``max_seq_len`` tokens are encoded again. Both paths give the same
        tokens as recomputing the whole window every step. Call ``model.eval()`` first: dropout
        in training mode makes every step random.

        With a ``window`` and positions ``"rope"``, ``"alibi"`` or ``"none"``, ``use_cache=True``
        streams: the whole prompt goes into ``RollingKVCache``s, nothing is re-encoded, and the
        sequence grows past ``max_seq_len`` with flat memory, each token getting the logits of one
        pass with the band mask over the whole sequence (``use_cache=False`` reads the last
        ``max_seq_len`` tokens). Learned and sinusoidal positions cannot go past ``max_seq_len``.

        Args:
            x: Prompt ids ``(B, T)``, ``T >= 1`` (any length: only the last ``max_seq_len`` are read).
            max_new_tokens: Number of tokens to append, ``>= 0``.
            do_sample: Sample from the softmax if ``True``; take the argmax (greedy) if ``False``.
            temperature: Divides the logits before sampling, ``> 0``. Default: ``1.0``.
            top_k: Sample among the ``top_k`` most likely tokens only. Default: ``None``.
            top_p: Nucleus sampling: sample among the smallest set of most likely tokens whose
                probability reaches ``top_p``, ``0 < top_p <= 1``. Default: ``None``.
            use_cache: Use a KV cache. Default: ``True``.

        Returns:
            ``(B, T + max_new_tokens)`` int64 ids (whatever the prompt's integer dtype): ``x``
                followed by the new tokens.

        Raises:
            ValueError: If ``temperature <= 0``, if ``top_k`` and ``top_p`` are both given, if
                either is out of range, or if ``temperature``, ``top_k`` or ``top_p`` is given
                with ``do_sample=False`` (greedy decoding would ignore it), or if ``use_cache``
                with ``"dynamic"`` ``rope_scaling``, or if a window with learned or sinusoidal
                positions would go past ``max_seq_len``.
        """
        self._check_ids(x, limit=False)
        check_generate_args(max_new_tokens, do_sample, temperature, top_k, top_p, self.vocab_size)
        if not isinstance(use_cache, bool):
            raise TypeError(f"use_cache must be a bool, got {use_cache!r}")
        if use_cache:
            self._check_no_dynamic_cache()
        x = x.long()  # (B, T): int64 output for an int32 prompt too
        L = self.max_seq_len
        if self.window is not None and self.positions in ("learned", "sinusoidal"):
            if x.size(1) + max_new_tokens > L:
                raise ValueError(
                    f"positions={self.positions!r} has no vector past max_seq_len={L}: a window model cannot "
                    f"generate {x.size(1)} + {max_new_tokens} tokens (use 'rope', 'alibi' or 'none')"
                )
        elif self.window is not None and use_cache:
            return self._stream(x, max_new_tokens, do_sample, temperature, top_k, top_p)
        cache = self.new_cache() if use_cache else None
        for _ in range(max_new_tokens):
            if cache is None:
                logits = self(x[:, -L:])  # (B, T, V)
            else:
                new = x[:, cache[0].seen :]  # (B, T_new): tokens not in the cache yet
                if cache[0].seen + new.size(1) > L:  # the window slides: every position changes
                    for layer_cache in cache:
                        layer_cache.reset()
                    new = x[:, -L:]  # (B, L)
                logits = self(new, cache)  # (B, T_new, V)
            next_token = pick_next_token(logits[:, -1], do_sample, temperature, top_k, top_p)  # (B, 1)
            x = torch.cat([x, next_token], dim=1)  # (B, T + 1)
        return x

    # --8<-- [end:generate]

    # --8<-- [start:stream]
    def _stream(
        self,
        x: torch.Tensor,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
    ) -> torch.Tensor:
        """``generate`` with a window: rolling caches, the whole prompt read, no re-encoding."""
        if max_new_tokens == 0:
            return x
        cache = self.new_cache()  # RollingKVCache per block
        L = self.max_seq_len
        for i in range(0, x.size(1), L):  # the prompt, max_seq_len tokens at a time
            logits = self(x[:, i : i + L], cache)  # (B, T_piece, V)
        for step in range(max_new_tokens):
            next_token = pick_next_token(logits[:, -1], do_sample, temperature, top_k, top_p)  # (B, 1)
            x = torch.cat([x, next_token], dim=1)  # (B, T + 1)
            if step + 1 < max_new_tokens:
                logits = self(next_token, cache)  # (B, 1, V)
        return x

    # --8<-- [end:stream]

    def _check_no_dynamic_cache(self) -> None:
        if self.rope_scaling is not None and self.rope_scaling.get("rope_type") == "dynamic":
            raise ValueError(
                f"rope_scaling={self.rope_scaling!r} changes every angle with the total length, so "
                "keys in a KV cache go stale: pass use_cache=False (or no cache)"
            )

    def _check_ids(self, x: object, limit: bool = True) -> tuple[int, int]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of token ids (B, T), got {type(x).__name__}")
        if x.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"x must hold integer token ids (int64), got dtype {x.dtype}")
        if x.dim() != 2 or x.size(1) == 0:
            raise ValueError(f"x must be 2-D (B, T) with T >= 1, got shape {tuple(x.shape)}")
        if limit and x.size(1) > self.max_seq_len:
            raise ValueError(f"sequence length T={x.size(1)} exceeds max_seq_len={self.max_seq_len}")
        device = self.token_embeddings.weight.device
        if x.device != device:
            raise TypeError(f"x is on {x.device}, the model on {device}; move it with x.to({str(device)!r})")
        outside = (x < 0) | (x >= self.vocab_size)  # (B, T)
        if outside.any():
            b, t = outside.nonzero()[0].tolist()
            raise ValueError(
                f"token ids must be in [0, vocab_size={self.vocab_size}), got {x[b, t].item()} at x[{b}, {t}]"
            )
        return x.size(0), x.size(1)

    def _check_cache(self, cache: object, T: int) -> int:
        if cache is None:
            return 0
        if (
            not isinstance(cache, list)
            or len(cache) != self.num_layers
            or not all(isinstance(c, KVCache) for c in cache)
        ):
            raise TypeError(
                f"cache must be a list of {self.num_layers} KVCache (see new_cache()), got {cache!r}"
            )
        for i, layer_cache in enumerate(cache):
            first = next(j for j, c in enumerate(cache) if c is layer_cache)
            if first != i:
                raise ValueError(
                    f"cache[{first}] and cache[{i}] are the same KVCache object; every block needs its own "
                    "(use new_cache(), not [KVCache()] * num_layers)"
                )
        lengths = [c.seen for c in cache]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"the blocks' caches hold different numbers of positions {lengths}; they must be equal "
                "(reset() all of them, or none)"
            )
        start = lengths[0]
        if start + T > self.max_seq_len:
            if not all(isinstance(c, RollingKVCache) for c in cache):
                raise ValueError(
                    f"cache holds {start} positions; {T} more exceed max_seq_len={self.max_seq_len}"
                )
            if self.positions in ("learned", "sinusoidal"):
                raise ValueError(
                    f"positions={self.positions!r} has no vector past max_seq_len={self.max_seq_len}, got "
                    f"positions {start}..{start + T - 1}: a window goes past it with 'rope', 'alibi' or 'none'"
                )
        return start


def check_generate_args(
    max_new_tokens: object,
    do_sample: object,
    temperature: object,
    top_k: object,
    top_p: object,
    vocab_size: int,
) -> None:
    """Raise a clear error for each bad argument of ``GPT.generate``."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    check_sampling_args(do_sample, temperature, top_k, top_p, vocab_size)


def check_sampling_args(
    do_sample: object, temperature: object, top_k: object, top_p: object, vocab_size: int
) -> None:
    """Raise a clear error for each bad argument of ``pick_next_token``."""
    if not isinstance(do_sample, bool):
        raise TypeError(f"do_sample must be a bool, got {do_sample!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a float > 0, got {temperature!r}")
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be > 0 and finite, got {temperature!r}")
    if top_k is not None and top_p is not None:
        raise ValueError(f"top_k and top_p are exclusive, got top_k={top_k!r} and top_p={top_p!r}")
    if not do_sample and (top_k is not None or top_p is not None or temperature != 1.0):
        raise ValueError(
            f"temperature, top_k and top_p need do_sample=True (greedy decoding takes the argmax), got "
            f"temperature={temperature!r}, top_k={top_k!r}, top_p={top_p!r}"
        )
    bad_k = isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab_size
    if top_k is not None and bad_k:
        raise ValueError(f"top_k must be an int in [1, vocab_size={vocab_size}], got {top_k!r}")
    bad_p = isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1
    if top_p is not None and bad_p:
        raise ValueError(f"top_p must be a float in (0, 1], got {top_p!r}")


# --8<-- [start:pick]
def pick_next_token(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Choose the next token from the last position's logits ``(B, V)``; returns ``(B, 1)`` ids.

    Greedy: the argmax. Sampling: divide by ``temperature``, keep the ``top_k`` largest logits
    or the nucleus of Holtzman et al. (2019), the smallest set of most likely tokens whose
    probability reaches ``top_p`` (the token that crosses ``top_p`` included, as Hugging Face's
    ``TopPLogitsWarper``), then draw from the softmax (``torch.multinomial``: seed with
    ``torch.manual_seed``). Ties with the ``top_k``-th logit are kept. float16 and bfloat16
    logits are sampled in float32.

    Examples:
        >>> import torch
        >>> pick_next_token(torch.tensor([[0.1, 2.0, -1.0]]), do_sample=False)
        tensor([[1]])
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        got = (
            f"{logits.dtype} tensor of shape {tuple(logits.shape)}"
            if isinstance(logits, torch.Tensor)
            else logits
        )
        raise TypeError(f"logits must be a floating-point tensor of shape (B, V), got {got!s:.80}")
    if logits.size(-1) == 0:
        raise ValueError(f"logits must hold at least one token (V >= 1), got shape {tuple(logits.shape)}")
    check_sampling_args(do_sample, temperature, top_k, top_p, logits.size(-1))
    if logits.isnan().any() or (logits == float("inf")).any():
        raise ValueError("logits must not contain NaN or +inf (-inf marks an excluded token)")
    if (logits == float("-inf")).all(dim=-1).any():
        raise ValueError("every row of logits needs a token with a logit > -inf")
    if not do_sample:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # a small temperature would overflow float16
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature  # (B, V), all <= 0: no overflow
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))  # (B, V)
    if top_p is not None and top_p < 1:
        probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)  # (B, V) each
        before = probs.cumsum(dim=-1) - probs  # (B, V): mass of the more likely tokens
        keep_sorted = before < top_p  # (B, V): up to the token that reaches top_p, included
        keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)  # (B, V), original order
        logits = logits.masked_fill(~keep, float("-inf"))  # (B, V)
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1)  # (B, 1)


# --8<-- [end:pick]
