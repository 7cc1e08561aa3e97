"""A paged KV cache (vLLM's PagedAttention): fixed-size blocks from one pool, a block table per sequence.

A contiguous cache reserves room for the longest sequence it may hold; a batch of sequences of
different lengths wastes the difference. Here the keys and values live in a pool of
``num_blocks`` blocks of ``block_size`` positions each, ``(num_blocks, H_kv, block_size, hs)``.
A sequence owns a list of blocks, its *block table*: position ``t`` of the sequence is slot
``t % block_size`` of block ``table[t // block_size]``. A new block is taken from the pool only
when the last one is full, so the memory in use is the blocks in use, and at most
``block_size - 1`` positions per sequence stand empty. Freeing a sequence returns its blocks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import torch

from simple_llm._checks import check_size


class PagedKVCache:
    """Keys and values of one attention layer for several sequences, in blocks from one pool.

    Sequences are named by integer ids. ``append`` adds keys and values to a batch of sequences
    of different lengths at once (a new id starts a sequence); ``attend`` runs attention for a
    batch of queries, each over the keys of its own sequence; ``free`` returns a sequence's blocks
    to the pool. Blocks are taken lowest number first. An ``append`` that needs more blocks than
    are free raises before writing anything.

    Args:
        num_blocks: Blocks in the pool, a positive int.
        block_size: Positions per block, a positive int.
        num_kv_heads: Key/value heads ``H_kv``, a positive int.
        head_size: Head size ``hs``, a positive int.
        dtype: Floating-point dtype of the pool. Default: ``torch.float32``.
        device: Device of the pool. Default: ``None`` (the current default device).

    Examples:
        >>> import torch
        >>> cache = PagedKVCache(num_blocks=8, block_size=4, num_kv_heads=2, head_size=16)
        >>> k = [torch.randn(2, 6, 16), torch.randn(2, 3, 16)]  # (H_kv, T, hs) per sequence
        >>> cache.append([0, 1], k, k)
        >>> cache.block_table(0), cache.block_table(1), cache.num_used_blocks
        ([0, 1], [2], 3)
        >>> q = torch.randn(2, 4, 1, 16)  # (B, H, 1, hs): one new token per sequence
        >>> cache.attend(q, [0, 1]).shape
        torch.Size([2, 4, 1, 16])
        >>> cache.free(0)
        >>> cache.num_used_blocks, cache.length(1)
        (1, 3)
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        num_kv_heads: int,
        head_size: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value in (
            ("num_blocks", num_blocks),
            ("block_size", block_size),
            ("num_kv_heads", num_kv_heads),
            ("head_size", head_size),
        ):
            check_size(name, value)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        if device is not None and not isinstance(device, (torch.device, str)):
            raise TypeError(f"device must be a torch.device, a str or None, got {type(device).__name__}")
        self.num_blocks, self.block_size = num_blocks, block_size
        self.num_kv_heads, self.head_size = num_kv_heads, head_size
        shape = (num_blocks, num_kv_heads, block_size, head_size)  # (N, H_kv, block_size, hs)
        self.key_blocks = torch.zeros(shape, dtype=dtype, device=device)
        self.value_blocks = torch.zeros(shape, dtype=dtype, device=device)
        self._free: list[int] = list(range(num_blocks))  # a heap: the lowest free block first
        self._tables: dict[int, list[int]] = {}
        self._lengths: dict[int, int] = {}

    @property
    def num_used_blocks(self) -> int:
        """Blocks held by sequences."""
        return self.num_blocks - len(self._free)

    @property
    def num_free_blocks(self) -> int:
        """Blocks left in the pool."""
        return len(self._free)

    def nbytes(self) -> int:
        """Bytes of keys and values in the blocks in use (the whole pool is allocated up front)."""
        per_block = self.key_blocks[0].nbytes + self.value_blocks[0].nbytes
        return self.num_used_blocks * per_block

    def sequences(self) -> list[int]:
        """Ids of the sequences held, in the order they were started."""
        return list(self._tables)

    def length(self, seq_id: int) -> int:
        """Positions held for sequence ``seq_id``."""
        self._check_known(seq_id)
        return self._lengths[seq_id]

    def block_table(self, seq_id: int) -> list[int]:
        """The blocks of sequence ``seq_id``, in order (a copy)."""
        self._check_known(seq_id)
        return list(self._tables[seq_id])

    def append(
        self, seq_ids: Sequence[int], keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor]
    ) -> None:
        """Append keys and values to each sequence of a batch; an unknown id starts a sequence.

        Everything is checked, and the blocks needed counted, before anything is written: on an
        error the cache is as it was.

        Args:
            seq_ids: Distinct sequence ids (ints), one per sequence of the batch.
            keys: Per sequence, its new keys ``(H_kv, T_i, hs)``; ``T_i >= 1`` may differ.
            values: Per sequence, its new values ``(H_kv, T_i, hs)``.

        Raises:
            TypeError: Ids that are not ints, keys or values that are not tensors of the pool's dtype.
            ValueError: Lists of different lengths, repeated ids, wrong shapes or device, or more
                blocks needed than are free.
        """
        self._check_append(seq_ids, keys, values)
        needed = {
            s: math.ceil((self._lengths.get(s, 0) + k.size(1)) / self.block_size)
            - len(self._tables.get(s, []))
            for s, k in zip(seq_ids, keys)
        }
        if sum(needed.values()) > len(self._free):
            raise ValueError(
                f"out of blocks: this append needs {sum(needed.values())} new blocks of {self.block_size} "
                f"positions ({needed} per sequence id), {len(self._free)} of {self.num_blocks} are free; "
                "free finished sequences or make a larger cache"
            )
        # --8<-- [start:append]
        for s, k, v in zip(seq_ids, keys, values):
            table = self._tables.setdefault(s, [])
            table += [heapq.heappop(self._free) for _ in range(needed[s])]
            start = self._lengths.get(s, 0)
            pos = torch.arange(start, start + k.size(1), device=self.key_blocks.device)  # (T_i,)
            blocks = torch.tensor(table, device=self.key_blocks.device)[pos // self.block_size]  # (T_i,)
            slots = pos % self.block_size  # (T_i,)
            self.key_blocks[blocks, :, slots] = k.transpose(0, 1)  # (T_i, H_kv, hs) into (N, H_kv, bs, hs)
            self.value_blocks[blocks, :, slots] = v.transpose(0, 1)  # (T_i, H_kv, hs)
            self._lengths[s] = start + k.size(1)
        # --8<-- [end:append]

    def gather(self, seq_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values of one sequence, contiguous.

        Returns:
            The pair ``(keys, values)``, each ``(H_kv, T, hs)`` with ``T = length(seq_id)``.
        """
        self._check_known(seq_id)
        table, T = self._tables[seq_id], self._lengths[seq_id]
        idx = torch.tensor(table, device=self.key_blocks.device)  # (n_blocks,)
        k = (
            self.key_blocks[idx].transpose(0, 1).reshape(self.num_kv_heads, -1, self.head_size)
        )  # (H_kv, n*bs, hs)
        v = (
            self.value_blocks[idx].transpose(0, 1).reshape(self.num_kv_heads, -1, self.head_size)
        )  # (H_kv, n*bs, hs)
        return k[:, :T], v[:, :T]

    def attend(self, q: torch.Tensor, seq_ids: Sequence[int]) -> torch.Tensor:
        """Attention of a batch of queries, each over the cached keys of its own sequence.

        Query row ``b`` belongs to sequence ``seq_ids[b]``; its ``T_q`` queries are taken to be
        that sequence's last ``T_q`` positions (append their keys first) and see the keys up to
        their own position (causal, as when decoding with a cache). The block tables are gathered
        into one padded batch ``(B, H_kv, S, hs)``, ``S`` the longest table in positions, and the
        padding is masked. Query heads are grouped over the key/value heads (``H`` a multiple
        of ``H_kv``). Scores are scaled by ``1/sqrt(hs)`` and computed in the pool's dtype.

        Args:
            q: Queries ``(B, H, T_q, hs)`` in the pool's dtype and device.
            seq_ids: ``B`` distinct ids of held sequences, each at least ``T_q`` positions long.

        Returns:
            The output ``(B, H, T_q, hs)``.
        """
        B = self._check_attend(q, seq_ids)
        _, H, T_q, hs = q.shape
        H_kv, bs, dev = self.num_kv_heads, self.block_size, q.device
        # --8<-- [start:attend]
        n = max(len(self._tables[s]) for s in seq_ids)
        tables = torch.tensor(
            [self._tables[s] + [0] * (n - len(self._tables[s])) for s in seq_ids], device=dev
        )
        k = self.key_blocks[tables]  # (B, n, H_kv, bs, hs); padding points at block 0 and is masked
        v = self.value_blocks[tables]  # (B, n, H_kv, bs, hs)
        k = k.transpose(1, 2).reshape(B, H_kv, n * bs, hs)  # (B, H_kv, S, hs), S = n * bs
        v = v.transpose(1, 2).reshape(B, H_kv, n * bs, hs)  # (B, H_kv, S, hs)
        lengths = torch.tensor([self._lengths[s] for s in seq_ids], device=dev)  # (B,)
        query_pos = lengths[:, None] - T_q + torch.arange(T_q, device=dev)  # (B, T_q)
        allowed = torch.arange(n * bs, device=dev) <= query_pos[..., None]  # (B, T_q, S): causal, no padding
        qg = q.reshape(B, H_kv, H // H_kv, T_q, hs)  # (B, H_kv, H/H_kv, T_q, hs): heads grouped per kv head
        scores = qg @ k[:, :, None].transpose(-2, -1) / math.sqrt(hs)  # (B, H_kv, H/H_kv, T_q, S)
        scores = scores.masked_fill(~allowed[:, None, None], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v[:, :, None]  # (B, H_kv, H/H_kv, T_q, hs)
        return out.reshape(B, H, T_q, hs)  # (B, H, T_q, hs)
        # --8<-- [end:attend]

    def free(self, seq_id: int) -> None:
        """Forget sequence ``seq_id`` and return its blocks to the pool."""
        self._check_known(seq_id)
        for block in self._tables.pop(seq_id):
            heapq.heappush(self._free, block)
        del self._lengths[seq_id]

    def __repr__(self) -> str:
        return (
            f"PagedKVCache(blocks used {self.num_used_blocks} of {self.num_blocks}, block_size={self.block_size}, "
            f"sequences={len(self._tables)})"
        )

    def _check_id(self, seq_id: int) -> None:
        if isinstance(seq_id, bool) or not isinstance(seq_id, int):
            raise TypeError(f"a sequence id must be an int, got {seq_id!r} ({type(seq_id).__name__})")

    def _check_known(self, seq_id: int) -> None:
        self._check_id(seq_id)
        if seq_id not in self._tables:
            raise ValueError(f"sequence id {seq_id!r} is not in the cache; held: {self.sequences()}")

    def _check_ids(self, seq_ids: Sequence[int]) -> None:
        if not isinstance(seq_ids, (list, tuple)):
            raise TypeError(f"seq_ids must be a list of ints, got {type(seq_ids).__name__}")
        if not seq_ids:
            raise ValueError("seq_ids must name at least one sequence, got an empty list")
        for s in seq_ids:
            self._check_id(s)
        if len(set(seq_ids)) != len(seq_ids):
            raise ValueError(f"seq_ids must be distinct, got {list(seq_ids)}")

    def _check_append(
        self, seq_ids: Sequence[int], keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor]
    ) -> None:
        self._check_ids(seq_ids)
        for name, parts in (("keys", keys), ("values", values)):
            if not isinstance(parts, (list, tuple)):
                raise TypeError(f"{name} must be a list of tensors (H_kv, T, hs), got {type(parts).__name__}")
            if len(parts) != len(seq_ids):
                raise ValueError(
                    f"{name} must hold one tensor per sequence id: {len(seq_ids)} ids, {len(parts)} {name}"
                )
        expected = f"(H_kv, T, hs) = ({self.num_kv_heads}, T, {self.head_size})"
        for i, (k, v) in enumerate(zip(keys, values)):
            for name, t in ((f"keys[{i}]", k), (f"values[{i}]", v)):
                if not isinstance(t, torch.Tensor):
                    raise TypeError(f"{name} must be a torch.Tensor {expected}, got {type(t).__name__}")
                if t.dtype != self.key_blocks.dtype:
                    raise TypeError(
                        f"{name} must have the cache's dtype {self.key_blocks.dtype}, got {t.dtype}"
                    )
                if t.device != self.key_blocks.device:
                    raise ValueError(
                        f"{name} must be on the cache's device {self.key_blocks.device}, got {t.device}"
                    )
                if (
                    t.dim() != 3
                    or t.size(0) != self.num_kv_heads
                    or t.size(2) != self.head_size
                    or t.size(1) == 0
                ):
                    raise ValueError(f"{name} must have shape {expected} with T >= 1, got {tuple(t.shape)}")
            if k.shape != v.shape:
                raise ValueError(
                    f"keys[{i}] and values[{i}] must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}"
                )

    def _check_attend(self, q: torch.Tensor, seq_ids: Sequence[int]) -> int:
        if not isinstance(q, torch.Tensor):
            raise TypeError(f"q must be a torch.Tensor (B, H, T_q, hs), got {type(q).__name__}")
        if q.dtype != self.key_blocks.dtype or q.device != self.key_blocks.device:
            raise TypeError(
                f"q must have the cache's dtype and device ({self.key_blocks.dtype} on {self.key_blocks.device}), "
                f"got {q.dtype} on {q.device}"
            )
        if q.dim() != 4 or q.size(3) != self.head_size or q.size(2) == 0 or q.size(1) % self.num_kv_heads:
            raise ValueError(
                f"q must have shape (B, H, T_q, hs) with hs={self.head_size}, T_q >= 1 and H a multiple of "
                f"H_kv={self.num_kv_heads}, got {tuple(q.shape)}"
            )
        self._check_ids(seq_ids)
        if len(seq_ids) != q.size(0):
            raise ValueError(f"q has batch size {q.size(0)} but {len(seq_ids)} seq_ids were given")
        for s in seq_ids:
            self._check_known(s)
            if self._lengths[s] < q.size(2):
                raise ValueError(
                    f"sequence {s} holds {self._lengths[s]} positions, fewer than the T_q={q.size(2)} queries; "
                    "append their keys first"
                )
        return q.size(0)
