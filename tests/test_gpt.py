import pytest
import torch

from simple_llm import GPT, KVCache, pick_next_token

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-10}}
POSITIONS = ["learned", "sinusoidal", "rope"]


def make(positions="learned", num_kv_heads=None, dtype=torch.float64, max_seq_len=10, seed=0):
    torch.manual_seed(seed)
    model = GPT(13, max_seq_len, 16, 4, 4, 2, dropout=0.0, num_kv_heads=num_kv_heads, positions=positions)
    return model.to(dtype).eval()


def recompute_greedy(model, x, n):
    """The original project's loop: the whole last-max_seq_len window, every step."""
    for _ in range(n):
        logits = model(x[:, -model.max_seq_len :])
        x = torch.cat([x, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return x


@pytest.mark.parametrize("positions", POSITIONS)
def test_forward_shape_and_original_import_path(positions):
    from simple_llm.transformer.gpt import GPT as OriginalPathGPT

    assert OriginalPathGPT is GPT
    model = make(positions, dtype=torch.float32)
    assert model(torch.randint(0, 13, (3, 7))).shape == (3, 7, 13)
    assert all(block.norm_first for block in model.decoders)  # pre-LN blocks, then model.norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_logits_equal_full_forward(positions, num_kv_heads, dtype):
    model = make(positions, num_kv_heads, dtype)
    x = torch.randint(0, 13, (2, 10))
    full = model(x)
    cache = model.new_cache()
    steps = [model(x[:, :4], cache)] + [model(x[:, t : t + 1], cache) for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, 1), full, **TOL[dtype])
    assert cache[0].keys.shape == (2, num_kv_heads or 4, 10, 4)


@pytest.mark.parametrize("num_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_greedy_equals_recomputation_within_and_past_max_seq_len(positions, num_kv_heads):
    model = make(positions, num_kv_heads)
    x = torch.randint(0, 13, (3, 4))
    for n in [5, 17]:  # 4 + 5 <= max_seq_len = 10 < 4 + 17
        cached = model.generate(x, n, do_sample=False)
        assert torch.equal(cached, model.generate(x, n, do_sample=False, use_cache=False))
        assert torch.equal(cached, recompute_greedy(model, x, n))
        assert torch.equal(cached[:, :4], x) and cached.shape == (3, 4 + n)


def test_past_max_seq_len_the_cache_is_rebuilt_not_slid():
    """Keeping the old keys and dropping the oldest one would compute another model."""
    model = make("rope")
    x = torch.randint(0, 13, (1, 10))
    cache = model.new_cache()
    model(x, cache)
    window = torch.cat([x[:, 1:], torch.tensor([[3]])], 1)  # the next window: tokens 1..10
    slid = [KVCache() for _ in cache]
    for new, old in zip(slid, cache):
        new.append(old.keys[:, :, 1:], old.values[:, :, 1:])  # keep old keys, drop the first
    stale = model(window[:, -1:], slid)[:, -1]
    assert (stale - model(window)[:, -1]).abs().max() > 1e-3
    # generate: once the window slides, every layer's cache is emptied and the window re-encoded,
    # and the tokens equal recomputing the whole window at every step.
    resets, encoded = [], []
    reset, forward = KVCache.reset, GPT.forward

    def counting_reset(self):
        resets.append(len(self))
        reset(self)

    def recording_forward(self, ids, cache=None):
        encoded.append(ids.size(1))
        return forward(self, ids, cache)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KVCache, "reset", counting_reset)
        patch.setattr(GPT, "forward", recording_forward)
        out = model.generate(x, 3, do_sample=False)  # 10 tokens fill max_seq_len = 10: slides at once
    assert torch.equal(out, recompute_greedy(model, x, 3))
    assert encoded == [10, 10, 10] and resets == [10, 10] * 2  # 2 layers, steps 2 and 3


def test_prompt_longer_than_max_seq_len_keeps_the_last_tokens():
    model = make("learned")
    x = torch.randint(0, 13, (2, 14))
    out = model.generate(x, 3, do_sample=False)
    assert torch.equal(out[:, :14], x)
    assert torch.equal(out, recompute_greedy(model, x, 3))


@pytest.mark.parametrize("positions", POSITIONS)
def test_sampling_with_cache_equals_sampling_without(positions):
    model = make(positions, 2)
    x = torch.randint(0, 13, (2, 3))
    runs = []
    for use_cache in [True, False]:
        torch.manual_seed(1)
        runs.append(model.generate(x, 12, do_sample=True, temperature=0.8, top_k=5, use_cache=use_cache))
    assert torch.equal(*runs)
    torch.manual_seed(2)
    other = model.generate(x, 12, do_sample=True, temperature=0.8, top_k=5)
    assert not torch.equal(runs[0], other)


def test_pick_next_token_greedy_top_k_top_p_and_temperature():
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.6, 0.1, 0.1, 0.2]]))
    assert pick_next_token(logits, do_sample=False).tolist() == [[1], [0]]
    torch.manual_seed(0)
    draws = torch.cat([pick_next_token(logits, True, top_k=2) for _ in range(200)], 1)
    assert set(draws[0].tolist()) == {1, 2} and set(draws[1].tolist()) == {0, 3}
    draws = torch.cat([pick_next_token(logits, True, top_p=0.75) for _ in range(200)], 1)
    assert set(draws[0].tolist()) == {1, 2} and set(draws[1].tolist()) == {0, 3}  # 0.5+0.3, 0.6+0.2
    draws = torch.cat([pick_next_token(logits, True, top_p=0.4) for _ in range(50)], 1)
    assert set(draws[0].tolist()) == {1} and set(draws[1].tolist()) == {0}  # the first token crosses 0.4
    draws = torch.cat([pick_next_token(logits, True, temperature=1e-3) for _ in range(50)], 1)
    assert set(draws[0].tolist()) == {1}
    draws = torch.cat([pick_next_token(logits, True) for _ in range(2000)], 1)
    assert abs((draws[0] == 1).float().mean().item() - 0.5) < 0.05  # plain sampling follows softmax


def test_zero_new_tokens_returns_the_prompt():
    x = torch.randint(0, 13, (2, 3))
    assert torch.equal(make().generate(x, 0, do_sample=False), x)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"temperature": 0.0}, ValueError, "temperature must be > 0"),
        ({"temperature": float("inf")}, ValueError, "finite"),
        ({"temperature": float("nan")}, ValueError, "temperature must be > 0"),
        ({"do_sample": False, "temperature": 0.5}, ValueError, "temperature=0.5"),
        ({"temperature": -1.0}, ValueError, "temperature must be > 0"),
        ({"temperature": "1"}, TypeError, "temperature"),
        ({"top_k": 2, "top_p": 0.5}, ValueError, "exclusive"),
        ({"top_k": 0}, ValueError, "top_k must be an int"),
        ({"top_k": 14}, ValueError, r"vocab_size=13"),
        ({"top_k": 2.0}, ValueError, "top_k must be an int"),
        ({"top_p": 0.0}, ValueError, r"top_p must be a float in \(0, 1\]"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"do_sample": False, "top_k": 3}, ValueError, "need do_sample=True"),
        ({"do_sample": False, "top_p": 0.5}, ValueError, "top_p=0.5"),
        ({"do_sample": 1}, TypeError, "do_sample must be a bool"),
        ({"max_new_tokens": -1}, ValueError, "max_new_tokens"),
        ({"max_new_tokens": 2.0}, ValueError, "max_new_tokens"),
        ({"use_cache": None}, TypeError, "use_cache must be a bool"),
    ],
)
def test_generate_bad_arguments(kwargs, error, match):
    args = {"max_new_tokens": 2, "do_sample": True} | kwargs
    with pytest.raises(error, match=match):
        make(dtype=torch.float32).generate(torch.zeros(1, 2, dtype=torch.long), **args)


def test_bad_inputs_and_constructor_arguments():
    model = make(dtype=torch.float32)
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="2-D"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_seq_len=10"):
        model(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(TypeError, match="list of 2 KVCache"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=KVCache())
    cache = model.new_cache()
    model(torch.zeros(1, 8, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="cache holds 8 positions"):
        model(torch.zeros(1, 3, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="positions must be one of"):
        GPT(13, 10, 16, 4, 4, 2, positions="absolute")
    with pytest.raises(ValueError, match="even emb_size"):
        GPT(13, 10, 15, 4, 4, 2, positions="sinusoidal")
    with pytest.raises(ValueError, match="divisible by num_kv_heads"):
        GPT(13, 10, 16, 4, 4, 2, num_kv_heads=3)
    with pytest.raises(TypeError, match="num_layers"):
        GPT(13, 10, 16, 4, 4, 2.0)


def test_pick_next_token_checks_its_arguments():
    logits = torch.zeros(2, 5)
    with pytest.raises(TypeError, match=r"shape \(B, V\)"):
        pick_next_token(torch.zeros(5), do_sample=False)
    with pytest.raises(ValueError, match=r"vocab_size=5"):
        pick_next_token(logits, do_sample=True, top_k=6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        pick_next_token(logits, do_sample=True, temperature=0)


@pytest.mark.parametrize(
    "top_p, kept",
    [(0.6, {0, 1}), (0.5, {0}), (0.3, {0}), (0.81, {0, 1, 2}), (1.0, {0, 1, 2})],
)
def test_top_p_keeps_the_smallest_set_that_reaches_it(top_p, kept):
    """Nucleus sampling (Holtzman et al.; Hugging Face's TopPLogitsWarper): the crossing token is kept."""
    logits = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64).log()
    torch.manual_seed(0)
    draws = torch.cat([pick_next_token(logits, True, top_p=top_p) for _ in range(300)], 1)
    assert set(draws[0].tolist()) == kept


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_are_sampled_in_float32(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(4, 50) * 10).to(dtype)  # (B, V)
    for kwargs in [{}, {"top_k": 5}, {"top_p": 0.9}]:
        picked = pick_next_token(logits, True, temperature=1e-4, **kwargs)  # float16 / 1e-4 overflows
        assert torch.equal(picked, logits.float().argmax(-1, keepdim=True))


def test_one_cache_object_shared_by_blocks_is_refused():
    model = make()
    x = torch.randint(0, 13, (1, 4))
    with pytest.raises(ValueError, match=r"cache\[0\] and cache\[1\] are the same KVCache"):
        model(x, [KVCache()] * model.num_layers)


def test_caches_out_of_step_are_refused_with_their_lengths():
    model = make()
    cache = model.new_cache()
    model(torch.randint(0, 13, (1, 4)), cache)
    cache[1].reset()
    with pytest.raises(ValueError, match=r"different numbers of positions \[4, 0\]"):
        model(torch.randint(0, 13, (1, 1)), cache)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("n", [0, 3])
def test_generate_returns_int64_whatever_the_prompt_dtype(dtype, n):
    x = torch.randint(0, 13, (2, 3), dtype=dtype)
    out = make().generate(x, n, do_sample=False)
    assert out.dtype == torch.int64 and out.shape == (2, 3 + n)
    assert torch.equal(out[:, :3], x.long())


@pytest.mark.parametrize("bad", [-1, 13, 100])
def test_token_ids_outside_the_vocabulary_are_named(bad):
    model = make()
    x = torch.tensor([[1, 2, bad]])
    with pytest.raises(ValueError, match=rf"in \[0, vocab_size=13\), got {bad} at x\[0, 2\]"):
        model(x)
    with pytest.raises(ValueError, match=rf"got {bad} at x\[0, 2\]"):
        model.generate(x, 2, do_sample=False)


def test_token_ids_on_another_device_are_named():
    with pytest.raises(TypeError, match="x is on meta, the model on cpu"):
        make()(torch.zeros(1, 2, dtype=torch.long, device="meta"))


@pytest.mark.parametrize(
    "logits, error, match",
    [
        (torch.zeros(2, 0), ValueError, r"at least one token \(V >= 1\), got shape \(2, 0\)"),
        (torch.tensor([[0.0, float("nan")]]), ValueError, "NaN"),
        (torch.tensor([[0.0, float("inf")]]), ValueError, r"\+inf"),
        (torch.tensor([[0.0, 1.0], [float("-inf")] * 2]), ValueError, "every row"),
        (torch.zeros(2, 3, dtype=torch.long), TypeError, r"got torch.int64 tensor of shape \(2, 3\)"),
        ([[0.0, 1.0]], TypeError, r"got \[\[0.0, 1.0\]\]"),
    ],
)
@pytest.mark.parametrize("do_sample", [False, True])
def test_pick_next_token_names_bad_logits(logits, error, match, do_sample):
    with pytest.raises(error, match=match):
        pick_next_token(logits, do_sample)


def test_pick_next_token_with_huge_logits_and_tiny_temperature():
    logits = torch.tensor([[1e35, 0.0], [-3e38, 3e38]])  # / 1e-4 would overflow float32
    torch.manual_seed(0)
    assert pick_next_token(logits, True, temperature=1e-4).tolist() == [[0], [1]]
