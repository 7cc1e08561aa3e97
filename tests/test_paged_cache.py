"""PagedKVCache: block tables, batched decoding equal to contiguous caches, out of blocks, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from simple_llm import KVCache, PagedKVCache

H, H_KV, HS = 4, 2, 8


def kv(T: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(H_KV, T, HS, dtype=dtype), torch.randn(H_KV, T, HS, dtype=dtype)  # (H_kv, T, hs)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA of q (1, H, T_q, hs) over k, v (1, H_kv, T_k, hs), causal aligned to the bottom right."""
    T_q, T_k = q.size(2), k.size(2)
    allowed = torch.ones(T_q, T_k, dtype=torch.bool).tril(diagonal=T_k - T_q)  # (T_q, T_k)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=True)


def test_block_tables_positions_and_memory():
    cache = PagedKVCache(10, 4, H_KV, HS, dtype=torch.float64)
    pieces: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {7: [], 3: [], 5: []}
    for lengths in [{7: 5, 3: 1, 5: 9}, {7: 3, 3: 1}, {3: 2, 5: 1}]:
        new = {s: kv(T) for s, T in lengths.items()}
        cache.append(list(new), [k for k, _ in new.values()], [v for _, v in new.values()])
        for s, piece in new.items():
            pieces[s].append(piece)
    for s, parts in pieces.items():
        k, v = cache.gather(s)
        torch.testing.assert_close(k, torch.cat([p[0] for p in parts], dim=1), rtol=0, atol=0)
        torch.testing.assert_close(v, torch.cat([p[1] for p in parts], dim=1), rtol=0, atol=0)
        assert len(cache.block_table(s)) == math.ceil(cache.length(s) / 4)
    assert [cache.length(s) for s in (7, 3, 5)] == [8, 4, 10]
    assert cache.num_used_blocks == 2 + 1 + 3 and cache.num_free_blocks == 4
    assert cache.nbytes() == 6 * 2 * (H_KV * 4 * HS * 8)  # blocks x (keys, values) x bytes per block
    # the first append took blocks in the order of its ids, lowest first; later blocks follow
    assert (
        cache.block_table(7) == [0, 1] and cache.block_table(3) == [2] and cache.block_table(5) == [3, 4, 5]
    )
    assert cache.sequences() == [7, 3, 5]


def test_free_returns_blocks_and_a_new_sequence_reuses_them():
    cache = PagedKVCache(4, 2, H_KV, HS, dtype=torch.float64)
    cache.append([0, 1], [kv(3)[0], kv(4)[0]], [kv(3)[1], kv(4)[1]])
    assert cache.num_free_blocks == 0
    cache.free(0)
    assert cache.num_used_blocks == 2 and cache.sequences() == [1]
    k, v = kv(4)
    cache.append([2], [k], [v])
    assert cache.block_table(2) == [0, 1]
    torch.testing.assert_close(cache.gather(2), (k, v), rtol=0, atol=0)


@pytest.mark.parametrize("T_q", [1, 3])
def test_batched_attend_equals_contiguous_attention_per_sequence(T_q):
    cache = PagedKVCache(16, 4, H_KV, HS, dtype=torch.float64)
    lengths = [5, 3, 13, 8]
    full = [kv(T) for T in lengths]
    cache.append([10, 11, 12, 13], [k for k, _ in full], [v for _, v in full])
    q = torch.randn(4, H, T_q, HS, dtype=torch.float64)  # (B, H, T_q, hs)
    out = cache.attend(q, [10, 11, 12, 13])
    assert out.shape == (4, H, T_q, HS)
    for b, (k, v) in enumerate(full):
        torch.testing.assert_close(
            out[b : b + 1], reference(q[b : b + 1], k[None], v[None]), rtol=0, atol=1e-12
        )


class ToyModel:
    """One attention layer with grouped heads between an embedding and an output projection, float64."""

    def __init__(self, vocab: int = 11, emb: int = 16) -> None:
        g = torch.Generator().manual_seed(1)
        w = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64) / math.sqrt(shape[0])
        self.tok, self.pos = w(vocab, emb), w(64, emb)
        self.wq, self.wk, self.wv, self.wo = (
            w(emb, H * HS),
            w(emb, H_KV * HS),
            w(emb, H_KV * HS),
            w(H * HS, vocab),
        )

    def qkv(self, tokens: list[int], start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.tok[tokens] + self.pos[start : start + len(tokens)]  # (T, C)
        q = (x @ self.wq).view(len(tokens), H, HS).transpose(0, 1)  # (H, T, hs)
        k = (x @ self.wk).view(len(tokens), H_KV, HS).transpose(0, 1)  # (H_kv, T, hs)
        v = (x @ self.wv).view(len(tokens), H_KV, HS).transpose(0, 1)  # (H_kv, T, hs)
        return q, k, v

    def next_token(self, attended: torch.Tensor) -> int:
        """Greedy token after the last position of ``attended`` (H, T, hs)."""
        return int((attended[:, -1].reshape(H * HS) @ self.wo).argmax())  # (H * hs,) @ (H * hs, V)


def decode_contiguous(model: ToyModel, prompt: list[int], steps: int) -> list[int]:
    cache, tokens = KVCache(), list(prompt)
    new, start = prompt, 0
    for _ in range(steps):
        q, k, v = model.qkv(new, start)
        keys, values = cache.append(k[None], v[None])  # (1, H_kv, T_cached, hs)
        out = reference(q[None], keys, values)[0]  # (H, T, hs)
        start += len(new)
        new = [model.next_token(out)]
        tokens += new
    return tokens


def test_batched_paged_decoding_gives_the_tokens_of_separate_contiguous_caches():
    model = ToyModel()
    prompts = {0: [1, 2, 3, 4, 5], 1: [6], 2: [7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7], 3: [3, 3]}
    steps = {0: 9, 1: 4, 2: 9, 3: 9}  # sequence 1 stops early; its blocks go to sequence 4
    prompts_late = {4: [9, 9, 9]}
    cache = PagedKVCache(40, 4, H_KV, HS, dtype=torch.float64)
    tokens = {s: list(p) for s, p in prompts.items()}
    last: dict[int, int] = {}
    for s, p in prompts.items():  # prefill one sequence at a time (different T_q)
        q, k, v = model.qkv(p, 0)
        cache.append([s], [k], [v])
        last[s] = model.next_token(cache.attend(q[None], [s])[0])
        tokens[s].append(last[s])
    for step in range(1, 9):
        if step == 4:
            used = cache.num_used_blocks
            freed = cache.block_table(1)
            cache.free(1)
            assert cache.num_used_blocks == used - len(freed)
            q, k, v = model.qkv(prompts_late[4], 0)
            cache.append([4], [k], [v])
            assert set(cache.block_table(4)) <= set(freed)  # sequence 1's blocks, reused
            last[4] = model.next_token(cache.attend(q[None], [4])[0])
            tokens[4] = [*prompts_late[4], last[4]]
            steps[4] = 1 + 9 - step  # the prefill token and one per remaining step
        ids = cache.sequences()
        new = [model.qkv([last[s]], cache.length(s)) for s in ids]
        cache.append(ids, [k for _, k, _ in new], [v for _, _, v in new])
        out = cache.attend(torch.stack([q for q, _, _ in new]), ids)  # (B, H, 1, hs): one batch
        for b, s in enumerate(ids):
            last[s] = model.next_token(out[b])
            tokens[s].append(last[s])
    for s, got in tokens.items():
        prompt = {**prompts, **prompts_late}[s]
        assert got == decode_contiguous(model, prompt, steps[s]), f"sequence {s}"
    assert cache.num_used_blocks == sum(math.ceil(cache.length(s) / 4) for s in cache.sequences())


def test_out_of_blocks_names_the_numbers_and_writes_nothing():
    cache = PagedKVCache(5, 4, H_KV, HS, dtype=torch.float64)
    cache.append([0, 1], [kv(6)[0], kv(3)[0]], [kv(6)[1], kv(3)[1]])  # 2 + 1 blocks
    before = (
        cache.key_blocks.clone(),
        cache.value_blocks.clone(),
        {s: cache.block_table(s) for s in (0, 1)},
        {s: cache.length(s) for s in (0, 1)},
        cache.num_free_blocks,
    )
    # sequence 1 fits in its block and sequence 0 needs one more, but the new sequence 2 needs 3
    with pytest.raises(ValueError, match=r"needs 4 new blocks of 4 positions .* 2 of 5 are free"):
        cache.append([1, 0, 2], [kv(1)[0], kv(3)[0], kv(9)[0]], [kv(1)[1], kv(3)[1], kv(9)[1]])
    assert torch.equal(cache.key_blocks, before[0]) and torch.equal(cache.value_blocks, before[1])
    assert {s: cache.block_table(s) for s in (0, 1)} == before[2]
    assert {s: cache.length(s) for s in (0, 1)} == before[3]
    assert cache.num_free_blocks == before[4] and cache.sequences() == [0, 1]
    cache.append([1, 0], [kv(1)[0], kv(3)[0]], [kv(1)[1], kv(3)[1]])  # what fits still goes in
    assert cache.num_free_blocks == 1


def test_a_failing_append_with_bad_input_later_in_the_batch_writes_nothing():
    cache = PagedKVCache(5, 4, H_KV, HS, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"keys\[1\] must have shape"):
        cache.append(
            [0, 1], [kv(3)[0], torch.zeros(H_KV + 1, 2, HS, dtype=torch.float64)], [kv(3)[1], kv(2)[1]]
        )
    assert cache.sequences() == [] and cache.num_used_blocks == 0 and not cache.key_blocks.any()


def make() -> PagedKVCache:
    cache = PagedKVCache(4, 2, H_KV, HS)
    cache.append([0], [torch.zeros(H_KV, 3, HS)], [torch.zeros(H_KV, 3, HS)])
    return cache


K = torch.zeros(H_KV, 1, HS)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda c: PagedKVCache(0, 2, 1, 1), ValueError, "num_blocks must be a positive int, got 0"),
        (lambda c: PagedKVCache(2, 2.0, 1, 1), TypeError, "block_size must be a positive int, got 2.0"),
        (lambda c: PagedKVCache(2, 2, 1, True), TypeError, "head_size must be a positive int, got True"),
        (lambda c: PagedKVCache(2, 2, 1, 1, dtype=torch.long), TypeError, "torch.int64"),
        (lambda c: PagedKVCache(2, 2, 1, 1, device=0), TypeError, "device must be"),
        (lambda c: c.append([1, 2], [K], [K, K]), ValueError, "2 ids, 1 keys"),
        (lambda c: c.append([1, 1], [K, K], [K, K]), ValueError, "distinct, got [1, 1]"),
        (lambda c: c.append([], [], []), ValueError, "empty"),
        (lambda c: c.append(["a"], [K], [K]), TypeError, "got 'a' (str)"),
        (
            lambda c: c.append([1], [K.double()], [K]),
            TypeError,
            "keys[0] must have the cache's dtype torch.float32",
        ),
        (
            lambda c: c.append([1], [K], [K.to("meta")]),
            ValueError,
            "values[0] must be on the cache's device cpu",
        ),
        (lambda c: c.append([1], [K], [torch.zeros(H_KV, 2, HS)]), ValueError, "(2, 1, 8) and (2, 2, 8)"),
        (
            lambda c: c.append([1], [torch.zeros(H_KV, 0, HS)] * 1, [torch.zeros(H_KV, 0, HS)]),
            ValueError,
            "T >= 1",
        ),
        (lambda c: c.append([1], K, [K]), TypeError, "keys must be a list"),
        (
            lambda c: c.attend(torch.zeros(1, H, 1, HS), [5]),
            ValueError,
            "sequence id 5 is not in the cache; held: [0]",
        ),
        (
            lambda c: c.attend(torch.zeros(1, H, 4, HS), [0]),
            ValueError,
            "holds 3 positions, fewer than the T_q=4",
        ),
        (lambda c: c.attend(torch.zeros(2, H, 1, HS), [0]), ValueError, "batch size 2 but 1 seq_ids"),
        (lambda c: c.attend(torch.zeros(1, 3, 1, HS), [0]), ValueError, "got (1, 3, 1, 8)"),
        (lambda c: c.attend(torch.zeros(1, H, 1, HS).double(), [0]), TypeError, "got torch.float64 on cpu"),
        (lambda c: c.attend([[0.0]], [0]), TypeError, "got list"),
        (lambda c: c.free(9), ValueError, "sequence id 9"),
        (lambda c: c.gather(True), TypeError, "got True (bool)"),
    ],
)
def test_bad_input_names_the_values(call, error, words):
    with pytest.raises(error) as info:
        call(make())
    assert words in str(info.value)
