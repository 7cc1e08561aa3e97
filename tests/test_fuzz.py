"""Property-based fuzz of the public API (hypothesis).

Random valid arguments must give finite output of the documented shape and dtype (float32,
float64, float16 and bfloat16); random invalid ones must raise ``ValueError`` or ``TypeError``
whose message names the argument. The run is reproducible (``derandomize=True``: hypothesis
derives its examples from each test's name) and bounded: ``VALID_EXAMPLES`` or
``INVALID_EXAMPLES`` per property in the test command, ``LARGE`` times as many with
``pytest tests/test_fuzz.py -m fuzz_large``. docs/api.*.md say how many inputs that is.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simple_llm import (
    GPT,
    Decoder,
    FeedForward,
    HeadAttention,
    KVCache,
    LearnedPositions,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositions,
    causal_after,
    padding_mask,
    pick_next_token,
    sinusoidal_positions,
    tiled_attention,
)

VALID_EXAMPLES = 25  # per property of valid input, in the test command
INVALID_EXAMPLES = 150  # per property of invalid input: no model runs, so many more
LARGE = 20  # times as many with -m fuzz_large
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def run(examples: int):
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def finite(t: torch.Tensor) -> bool:
    return bool(t.float().isfinite().all())


# ---------------------------------------------------------------- valid input: finite, shape, dtype


def check_attention(data):
    """MultiHeadAttention on every path, its heads, HeadAttention, Decoder and FeedForward."""
    H_kv = data.draw(st.integers(1, 3), "H_kv")
    H = H_kv * data.draw(st.integers(1, 3), "group")
    rope = data.draw(st.booleans(), "rope")
    hs = data.draw(st.integers(1, 6), "hs") * (2 if rope else 1)
    C = data.draw(st.integers(1, 12), "C")
    B, T = data.draw(st.integers(1, 3), "B"), data.draw(st.integers(1, 6), "T")
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    scale = data.draw(st.floats(1e-3, 300.0), "scale")
    path = data.draw(
        st.sampled_from(["fast", "weights", "mask", "cache", "head", "one_head", "block"]), "path"
    )
    torch.manual_seed(data.draw(st.integers(0, 2**16), "seed"))
    x = (torch.randn(B, T, C, dtype=torch.float64) * scale).to(dtype)  # (B, T, C)
    if path in ("one_head", "block"):
        module = HeadAttention(C, hs, T) if path == "one_head" else Decoder(H, C, hs, T, 0.0, norm_first=rope)
        out = module.to(dtype)(x)
        assert out.shape == (B, T, hs if path == "one_head" else C) and out.dtype == dtype and finite(out)
        weights = module.get_attention_weights(x) if path == "one_head" else FeedForward(C, 0.0).to(dtype)(x)
        assert finite(weights)
        return
    # Long context (chapter 14): a window with or without sinks, and ALiBi where RoPE is off.
    alibi = not rope and data.draw(st.booleans(), "alibi")
    window = data.draw(st.one_of(st.none(), st.integers(1, T + 1)), "window")
    sinks = data.draw(st.integers(0, min(2, window - 1)), "sink_tokens") if window is not None else 0  # < W
    mha = MultiHeadAttention(
        H, C, hs, T, 0.0, num_kv_heads=H_kv, rope=rope, alibi=alibi, window=window, sink_tokens=sinks
    ).to(dtype)
    if path == "fast":
        outs = [mha(x)]
    elif path == "weights":
        out, weights = mha(x, return_weights=True)
        assert weights.shape == (B, H, T, T) and weights.dtype == dtype and finite(weights)
        outs = [out, mha.get_attention_weights(x)]
    elif path == "mask":
        lengths = data.draw(st.lists(st.integers(0, T), min_size=B, max_size=B), "lengths")
        outs = [mha(x, mask=padding_mask(lengths, T))]
    elif path == "cache":
        cache, outs, start = KVCache(), [], 0
        while start < T:
            n = data.draw(st.integers(1, T - start), "chunk")
            outs.append(mha(x[:, start : start + n], cache=cache))
            start += n
        outs = [torch.cat(outs, 1)]
        assert len(cache) == T
    else:
        h = data.draw(st.integers(0, H - 1), "h")
        out, weights = mha.head(h)(x), mha.head(h).get_attention_weights(x)
        assert out.shape == (B, T, hs) and weights.shape == (B, T, T) and finite(out) and finite(weights)
        return
    for out in outs:
        assert out.dtype == dtype and finite(out)
    assert outs[0].shape == (B, T, C)


def check_gpt(data):
    V = data.draw(st.integers(1, 20), "V")
    L = data.draw(st.integers(1, 8), "max_seq_len")
    H_kv = data.draw(st.integers(1, 2), "H_kv")
    H = H_kv * data.draw(st.integers(1, 2), "group")
    positions = data.draw(st.sampled_from(["learned", "sinusoidal", "rope", "alibi", "none"]), "positions")
    # A window lets rope, alibi and none generate past max_seq_len (the others refuse: tested apart).
    window = None
    if positions in ("rope", "alibi", "none"):
        window = data.draw(st.one_of(st.none(), st.integers(1, L)), "window")
    sinks = {"sink_tokens": data.draw(st.integers(0, min(2, window - 1)), "sink_tokens")} if window else {}
    C = data.draw(st.integers(1, 6), "C") * 2
    hs = data.draw(st.integers(1, 3), "hs") * 2
    torch.manual_seed(data.draw(st.integers(0, 2**16), "seed"))
    model = GPT(
        V,
        L,
        C,
        H,
        hs,
        data.draw(st.integers(1, 2), "layers"),
        0.0,
        num_kv_heads=H_kv,
        positions=positions,
        window=window,
        **sinks,
    )
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    model = model.to(dtype).eval()
    B = data.draw(st.integers(1, 3), "B")
    T = data.draw(st.integers(1, L + 3), "T")
    x = torch.randint(0, V, (B, T), dtype=data.draw(st.sampled_from([torch.int64, torch.int32]), "ids"))
    logits = model(x[:, -L:])
    assert logits.shape == (B, min(T, L), V) and logits.dtype == dtype and finite(logits)
    do_sample = data.draw(st.booleans(), "do_sample")
    kwargs = {}
    if do_sample:
        kwargs["temperature"] = data.draw(st.floats(1e-4, 100.0), "temperature")
        cut = data.draw(st.sampled_from(["none", "top_k", "top_p"]), "cut")
        if cut == "top_k":
            kwargs["top_k"] = data.draw(st.integers(1, V), "top_k")
        elif cut == "top_p":
            kwargs["top_p"] = data.draw(st.floats(1e-6, 1.0, exclude_min=True), "top_p")
    n = data.draw(st.integers(0, 5), "max_new_tokens")
    out = model.generate(x, n, do_sample, use_cache=data.draw(st.booleans(), "use_cache"), **kwargs)
    assert out.shape == (B, T + n) and out.dtype == torch.int64
    assert torch.equal(out[:, :T], x.long()) and int(out.min()) >= 0 and int(out.max()) < V


def check_pick_next_token(data):
    B, V = data.draw(st.integers(1, 4), "B"), data.draw(st.integers(1, 30), "V")
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    torch.manual_seed(data.draw(st.integers(0, 2**16), "seed"))
    logits = torch.randn(B, V, dtype=torch.float64) * data.draw(st.floats(1e-3, 1e4), "scale")
    drop = torch.rand(B, V) < data.draw(st.floats(0.0, 0.9), "masked")
    drop[torch.arange(B), torch.randint(0, V, (B,))] = False  # one finite logit per row
    logits = logits.masked_fill(drop, float("-inf")).to(dtype)  # (B, V)
    do_sample = data.draw(st.booleans(), "do_sample")
    kwargs = {}
    if do_sample:
        kwargs["temperature"] = data.draw(st.floats(1e-4, 1e3), "temperature")
        cut = data.draw(st.sampled_from(["none", "top_k", "top_p"]), "cut")
        if cut == "top_k":
            kwargs["top_k"] = data.draw(st.integers(1, V), "top_k")
        elif cut == "top_p":
            kwargs["top_p"] = data.draw(st.floats(1e-6, 1.0, exclude_min=True), "top_p")
    picked = pick_next_token(logits, do_sample, **kwargs)
    assert picked.shape == (B, 1) and picked.dtype == torch.int64
    chosen = logits.gather(1, picked)  # (B, 1)
    assert bool((chosen > float("-inf")).all())  # never a token that was ruled out
    if not do_sample:
        assert torch.equal(chosen, logits.max(dim=-1, keepdim=True).values)
    if "top_k" in kwargs:
        assert bool((chosen >= logits.topk(kwargs["top_k"], dim=-1).values[:, -1:]).all())


def check_tiled(data):
    lead = tuple(data.draw(st.lists(st.integers(1, 3), min_size=0, max_size=2), "lead"))
    T_q, T_k = data.draw(st.integers(1, 9), "T_q"), data.draw(st.integers(1, 9), "T_k")
    hs, hs_v = data.draw(st.integers(1, 8), "hs"), data.draw(st.integers(1, 8), "hs_v")
    is_causal = data.draw(st.booleans(), "is_causal")
    block = data.draw(st.integers(1, 10), "block_size")
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    torch.manual_seed(data.draw(st.integers(0, 2**16), "seed"))
    scale = data.draw(st.floats(1e-3, 30.0), "scale")
    q = torch.randn(*lead, T_q, hs, dtype=torch.float64) * scale
    k = torch.randn(*lead, T_k, hs, dtype=torch.float64) * scale
    v = torch.randn(*lead, T_k, hs_v, dtype=torch.float64) * scale
    out = tiled_attention(q.to(dtype), k.to(dtype), v.to(dtype), is_causal=is_causal, block_size=block)
    assert out.shape == (*lead, T_q, hs_v) and out.dtype == dtype and finite(out)
    if dtype == torch.float64:
        allowed = causal_after(T_q, T_k - T_q) if is_causal and T_k >= T_q else None
        if not is_causal or T_k >= T_q:
            expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9 * scale)


def check_masks_positions_cache(data):
    lengths = data.draw(st.lists(st.integers(0, 8), min_size=1, max_size=4), "lengths")
    max_len = data.draw(st.integers(max(max(lengths), 1), 10), "max_len")
    mask = padding_mask(lengths, max_len)
    assert mask.shape == (len(lengths), max_len) and mask.sum(-1).tolist() == lengths
    T, start = data.draw(st.integers(1, 6), "T"), data.draw(st.integers(0, 6), "start")
    assert torch.equal(causal_after(T, start), torch.ones(start + T, start + T).tril().bool()[start:])
    C = data.draw(st.integers(1, 8), "C") * 2
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    table = sinusoidal_positions(T, C, start, dtype=dtype)
    assert table.shape == (T, C) and table.dtype == dtype and finite(table)
    assert SinusoidalPositions(start + T, C)(T, start).shape == (T, C)
    assert LearnedPositions(start + T, C)(T, start).shape == (T, C)
    rope = RotaryEmbedding(C)
    x = torch.randn(2, T, C, dtype=torch.float64).to(dtype)
    rotated = rope(x, start)
    assert rotated.shape == x.shape and rotated.dtype == dtype and finite(rotated)
    if dtype == torch.float64:  # a rotation keeps the norm
        torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    cache = KVCache()
    for n in data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4), "appends"):
        keys, values = cache.append(torch.zeros(2, 1, n, 3, dtype=dtype), torch.ones(2, 1, n, 3, dtype=dtype))
    assert len(cache) == keys.size(2) == values.size(2) and cache.nbytes() == keys.nbytes * 2


VALID = [check_attention, check_gpt, check_pick_next_token, check_tiled, check_masks_positions_cache]


@pytest.mark.parametrize("prop", VALID, ids=lambda p: p.__name__)
def test_valid_input_gives_finite_output_of_the_documented_shape(prop):
    run(VALID_EXAMPLES)(given(st.data())(prop))()


# ---------------------------------------------------------------- invalid input: a clear error

NOT_AN_INT = st.one_of(
    st.integers(-5, 0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(1, 3), max_size=2),
)
NOT_A_BOOL = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.lists(st.booleans(), max_size=2),
)
NOT_A_PROBABILITY = st.one_of(
    st.floats(1.0, 10.0),
    st.floats(max_value=-1e-9),
    st.just(float("nan")),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.floats(0, 0.5), max_size=1),
)


def bad_tensor(C, T_max, dtype=torch.float32):
    """Tensors that are not a valid ``(B, T, C)`` input of a float32 module with ``emb_size=C``.

    ``T_max=None``: the module accepts any length (``FeedForward``).
    """
    too_long = st.tuples(st.integers(1, 2), st.integers(T_max + 1, T_max + 3)) if T_max else st.nothing()
    return st.one_of(
        too_long.map(lambda s: torch.zeros(s[0], s[1], C)),
        st.integers(1, 3).map(lambda T: torch.zeros(2, T, C + 1)),
        st.just(torch.zeros(2, 0, C)),
        st.lists(st.integers(1, 3), min_size=0, max_size=5)
        .filter(lambda s: len(s) != 3)
        .map(lambda s: torch.zeros(tuple(s))),
        st.sampled_from([torch.int64, torch.bool, torch.int32]).map(lambda d: torch.zeros(2, 3, C, dtype=d)),
        st.sampled_from([d for d in DTYPES if d != dtype]).map(lambda d: torch.zeros(2, 3, C, dtype=d)),
        st.sampled_from([[[0.0] * C], 1.0, "x", None]),
    )


def sizes_case(cls, kwargs):
    return [(cls, kwargs, name, NOT_AN_INT) for name in kwargs if name not in ("dropout",)]


C, T_MAX = 8, 5
MHA = {"num_heads": 2, "emb_size": C, "head_size": 4, "max_seq_len": T_MAX}
CONSTRUCTORS = (
    sizes_case(MultiHeadAttention, MHA)
    + sizes_case(HeadAttention, {"emb_size": C, "head_size": 4, "max_seq_len": T_MAX})
    + sizes_case(Decoder, dict(MHA))
    + sizes_case(FeedForward, {"emb_size": C})
    + sizes_case(
        GPT,
        {
            "vocab_size": 7,
            "max_seq_len": T_MAX,
            "emb_size": C,
            "num_heads": 2,
            "head_size": 4,
            "num_layers": 1,
        },
    )
    + sizes_case(LearnedPositions, {"max_seq_len": T_MAX, "emb_size": C})
    + sizes_case(SinusoidalPositions, {"max_seq_len": T_MAX, "emb_size": C})
    + sizes_case(RotaryEmbedding, {"head_size": 4})
    + [
        (cls, kwargs | {"dropout": 0.0}, "dropout", NOT_A_PROBABILITY)
        for cls, kwargs in [(MultiHeadAttention, MHA), (Decoder, MHA), (FeedForward, {"emb_size": C})]
    ]
    + [
        (
            MultiHeadAttention,
            MHA | {"num_kv_heads": 2},
            "num_kv_heads",
            NOT_AN_INT.filter(lambda v: v is not None),
        ),
        (MultiHeadAttention, MHA | {"rope": False}, "rope", NOT_A_BOOL),
        (Decoder, MHA | {"norm_first": False}, "norm_first", NOT_A_BOOL),
    ]
)


def check_bad_constructor_argument(data):
    cls, kwargs, name, bad = data.draw(st.sampled_from(CONSTRUCTORS), "case")
    value = data.draw(bad, name)
    with pytest.raises((TypeError, ValueError), match=name) as error:
        cls(**(kwargs | {name: value}))
    assert repr(value)[:20] in str(error.value) or name in str(error.value)


def _modules():
    torch.manual_seed(0)
    mha = MultiHeadAttention(**MHA, dropout=0.0)
    return {
        "mha": mha,
        "head": HeadAttention(C, 4, T_MAX),
        "head_view": mha.head(1),
        "decoder": Decoder(**MHA, dropout=0.0),
        "feed_forward": FeedForward(C, 0.0),
    }


MODULES = _modules()
X_NAMES = ("x", "sequence length", "token")  # a bad x is named, or its length


def check_bad_forward_argument(data):
    key = data.draw(st.sampled_from(sorted(MODULES)), "module")
    module = MODULES[key]
    x = torch.randn(2, 3, C)
    what = data.draw(
        st.sampled_from(["x", "mask", "return_weights", "cache"] if key == "mha" else ["x"]), "argument"
    )
    if what == "x":
        value = data.draw(bad_tensor(C, None if key == "feed_forward" else T_MAX), "x")
        call, names = (lambda: module(value)), X_NAMES
    elif what == "mask":
        value = data.draw(
            st.one_of(
                st.lists(st.integers(1, 4), min_size=1, max_size=5)
                .filter(lambda s: tuple(s) not in {(3, 3), (2, 3), (2, 1, 3), (2, 3, 3), (2, 2, 3, 3)})
                .map(lambda s: torch.ones(*s, dtype=torch.bool)),
                st.floats(allow_nan=True)
                .filter(lambda f: f not in (0.0, 1.0))
                .map(lambda f: torch.full((3, 3), f, dtype=torch.float64)),
                st.sampled_from([[[1, 0]], "causal", 1]),
            ),
            "mask",
        )
        call, names = (lambda: module(x, mask=value)), ("mask",)
    elif what == "return_weights":
        value = data.draw(NOT_A_BOOL, "return_weights")
        call, names = (lambda: module(x, return_weights=value)), ("return_weights",)
    else:
        value = data.draw(st.sampled_from([[KVCache()], "cache", 0, {}]), "cache")
        call, names = (lambda: module(x, cache=value)), ("cache",)
    with pytest.raises((TypeError, ValueError)) as error:
        call()
    assert any(n in str(error.value) for n in names), f"{what}={value!r}: {error.value}"


GPT_MODEL = GPT(7, T_MAX, C, 2, 4, 2, 0.0).eval()
GENERATE = {"max_new_tokens": 2, "do_sample": True}


def check_bad_generate_argument(data):
    name = data.draw(
        st.sampled_from(["x", "max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "use_cache"]),
        "name",
    )
    kwargs = dict(GENERATE)
    x = torch.randint(0, 7, (2, 3))
    bad = {
        "x": st.one_of(
            st.integers(7, 100).map(lambda v: torch.tensor([[1, v]])),
            st.integers(-100, -1).map(lambda v: torch.tensor([[v, 1]])),
            st.sampled_from(
                [
                    torch.zeros(2, 3),
                    torch.zeros(3, dtype=torch.long),
                    torch.zeros(1, 0, dtype=torch.long),
                    [[1, 2]],
                ]
            ),
        ),
        "max_new_tokens": st.one_of(
            st.integers(max_value=-1), st.floats(), st.booleans(), st.text(max_size=2), st.none()
        ),
        "do_sample": NOT_A_BOOL,
        "temperature": st.one_of(
            st.floats(max_value=0.0),
            st.just(float("inf")),
            st.just(float("nan")),
            st.text(max_size=2),
            st.none(),
            st.booleans(),
        ),
        "top_k": st.one_of(
            st.integers(max_value=0), st.integers(8, 100), st.floats(), st.booleans(), st.text(max_size=2)
        ),
        "top_p": NOT_A_PROBABILITY.filter(lambda p: not (isinstance(p, float) and p == 1.0)) | st.just(0.0),
        "use_cache": NOT_A_BOOL,
    }[name]
    value = data.draw(bad, name)
    if name == "x":
        x = value
    else:
        kwargs[name] = value
    with pytest.raises((TypeError, ValueError)) as error:
        GPT_MODEL.generate(x, **kwargs)
    names = X_NAMES if name == "x" else (name,)
    assert any(n in str(error.value) for n in names), f"{name}={value!r}: {error.value}"


def check_bad_function_argument(data):
    """pick_next_token, tiled_attention, padding_mask, causal_after, sinusoidal_positions, KVCache.append."""
    case = data.draw(
        st.sampled_from(["pick", "tiled", "padding", "causal_after", "sinusoidal", "cache"]), "function"
    )
    if case == "pick":
        value = data.draw(
            st.one_of(
                st.sampled_from(
                    [torch.zeros(2, 0), torch.zeros(3), torch.zeros(2, 3, dtype=torch.long), [[0.0]], None]
                ),
                st.sampled_from([float("nan"), float("inf")]).map(lambda f: torch.tensor([[0.0, f]])),
            ),
            "logits",
        )
        call, names = (lambda: pick_next_token(value, True)), ("logits",)
    elif case == "tiled":
        q = torch.randn(2, 4, 8)
        arg = data.draw(st.sampled_from(["q", "k", "v", "block_size", "is_causal", "return_lse"]), "argument")
        if arg in "qkv":
            value = data.draw(
                st.sampled_from(
                    [
                        torch.zeros(2, 0, 8),
                        torch.zeros(3, 4, 8),
                        torch.zeros(2, 4, 8, dtype=torch.long),
                        torch.zeros(8),
                        "q",
                        torch.zeros(2, 4, 8, dtype=torch.float64),
                    ]
                ),
                arg,
            )
            args = {"q": q, "k": q, "v": q} | {arg: value}
            call, names = (lambda: tiled_attention(**args)), (arg, "q, k and v", "head size", "hs")
        else:
            value = data.draw(NOT_AN_INT if arg == "block_size" else NOT_A_BOOL, arg)
            call, names = (lambda: tiled_attention(q, q, q, **{arg: value})), (arg,)
    elif case == "padding":
        arg = data.draw(st.sampled_from(["lengths", "max_len"]), "argument")
        if arg == "lengths":
            value = data.draw(
                st.one_of(
                    st.lists(st.integers(max_value=-1), min_size=1, max_size=3),
                    st.sampled_from(
                        [
                            [],
                            [1.5],
                            torch.tensor([1.0]),
                            torch.zeros(2, 2, dtype=torch.long),
                            "12",
                            None,
                            [True],
                        ]
                    ),
                ),
                "lengths",
            )
            call, names = (lambda: padding_mask(value)), ("lengths",)
        else:
            value = data.draw(
                st.one_of(st.integers(max_value=2), st.floats(), st.text(max_size=2), st.booleans()),
                "max_len",
            )
            call, names = (lambda: padding_mask([3, 1], value)), ("max_len",)
    elif case == "causal_after":
        arg = data.draw(st.sampled_from(["T", "start"]), "argument")
        bad = st.one_of(
            st.integers(-5, -1 if arg == "start" else 0),
            st.floats(),
            st.booleans(),
            st.text(max_size=2),
            st.none(),
        )
        value = data.draw(bad, arg)
        args = {"T": 2, "start": 1} | {arg: value}
        call, names = (lambda: causal_after(**args)), (arg,)
    elif case == "sinusoidal":
        arg = data.draw(st.sampled_from(["T", "emb_size", "start"]), "argument")
        bad = NOT_AN_INT.filter(lambda v: not (arg == "start" and v == 0))
        value = data.draw(bad, arg)
        args = {"T": 2, "emb_size": 4, "start": 0} | {arg: value}
        call, names = (lambda: sinusoidal_positions(**args)), (arg,)
    else:
        cache = KVCache()
        cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
        value = data.draw(
            st.sampled_from(
                [
                    torch.zeros(2, 2, 1, 4),
                    torch.zeros(1, 2, 1, 4, dtype=torch.float64),
                    torch.zeros(1, 2, 1),
                    torch.zeros(1, 2, 1, 4, dtype=torch.long),
                    "k",
                ]
            ),
            "k",
        )
        call, names = (lambda: cache.append(value, value)), ("k", "cache holds")
    with pytest.raises((TypeError, ValueError)) as error:
        call()
    assert any(n in str(error.value) for n in names), f"{case}: {value!r}: {error.value}"


INVALID = [
    check_bad_constructor_argument,
    check_bad_forward_argument,
    check_bad_generate_argument,
    check_bad_function_argument,
]


@pytest.mark.parametrize("prop", INVALID, ids=lambda p: p.__name__)
def test_invalid_input_gives_a_clear_error(prop):
    run(INVALID_EXAMPLES)(given(st.data())(prop))()


@pytest.mark.fuzz_large
@pytest.mark.parametrize("prop", VALID + INVALID, ids=lambda p: p.__name__)
def test_larger_fuzz(prop):  # deselected unless -m fuzz_large (conftest.py)
    run(LARGE * (VALID_EXAMPLES if prop in VALID else INVALID_EXAMPLES))(given(st.data())(prop))()


def test_the_api_page_states_how_many_inputs_the_fuzz_tries():
    from pathlib import Path

    valid, invalid = len(VALID) * VALID_EXAMPLES, len(INVALID) * INVALID_EXAMPLES
    for lang, separator in [("en", ","), ("ru", "\u00a0")]:
        page = (Path(__file__).parents[1] / "docs" / f"api.{lang}.md").read_text(encoding="utf-8")
        numbers = [valid + invalid, VALID_EXAMPLES, INVALID_EXAMPLES, LARGE * (valid + invalid)]
        for number in numbers:
            assert f"{number:,}".replace(",", separator) in page, (lang, number)
