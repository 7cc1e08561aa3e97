"""RoPE scaling (linear, dynamic NTK, YaRN) against the formulas of Hugging Face's rope_scaling, in float64."""

import math

import pytest
import torch

from simple_llm import GPT, RotaryEmbedding


def plain_frequencies(hs: int, base: float) -> list[float]:
    """f_i = base^(-2i/hs), i = 0 .. hs/2 - 1."""
    return [base ** (-2 * i / hs) for i in range(hs // 2)]


def linear_reference(hs: int, base: float, s: float) -> list[float]:
    """Position interpolation (Chen et al. 2023): position p is read as p / s, i.e. f_i / s."""
    return [f / s for f in plain_frequencies(hs, base)]


def dynamic_reference(hs: int, base: float, s: float, L: int, n: int) -> list[float]:
    """NTK-aware dynamic: base' = base * (s*n/L - (s-1))^(hs/(hs-2)), n the total length, at least L."""
    n = max(n, L)
    grown = base * ((s * n / L) - (s - 1)) ** (hs / (hs - 2))
    return plain_frequencies(hs, grown)


def yarn_reference(
    hs: int, base: float, s: float, L: int, beta_fast: float = 32, beta_slow: float = 1
) -> list[float]:
    """YaRN (Peng et al. 2023): pair j has wavelength 2*pi/f_j and makes r_j = L*f_j/(2*pi) turns in L.

    The pair index where r_j == beta solves L / (2*pi*base^(2j/hs)) == beta:
    j = hs * ln(L / (2*pi*beta)) / (2 * ln(base)). Bounds: floor for beta_fast (>= 0), ceil for
    beta_slow (<= hs - 1). Between them gamma rises linearly from 0 to 1; the new frequency is
    (1 - gamma) * f_j + gamma * f_j / s: pairs that turn often keep f_j, slow ones are interpolated.
    """
    j_fast = hs * math.log(L / (2 * math.pi * beta_fast)) / (2 * math.log(base))
    j_slow = hs * math.log(L / (2 * math.pi * beta_slow)) / (2 * math.log(base))
    low = max(math.floor(j_fast), 0)
    high = min(math.ceil(j_slow), hs - 1)
    if high == low:
        high = high + 0.001
    out = []
    for j, f in enumerate(plain_frequencies(hs, base)):
        gamma = min(max((j - low) / (high - low), 0.0), 1.0)
        out.append((1 - gamma) * f + gamma * f / s)
    return out


def as_tensor(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("hs, base, s", [(8, 10000.0, 2.0), (64, 500000.0, 8), (16, 10000.0, 0.5)])
def test_linear_divides_every_frequency_by_the_factor(hs, base, s):
    rope = RotaryEmbedding(hs, base, scaling={"rope_type": "linear", "factor": s})
    torch.testing.assert_close(rope.inv_freq(), as_tensor(linear_reference(hs, base, s)), rtol=1e-12, atol=0)
    angles = rope.angles(5, start=3, dtype=torch.float64)  # (T, hs/2)
    expected = torch.tensor(
        [[p * f for f in linear_reference(hs, base, s)] for p in range(3, 8)], dtype=torch.float64
    )
    torch.testing.assert_close(angles, expected, rtol=1e-12, atol=0)
    assert rope.attention_factor == 1.0


def test_linear_position_s_times_p_gets_the_plain_angles_of_p():
    plain = RotaryEmbedding(16)
    linear = RotaryEmbedding(16, scaling={"rope_type": "linear", "factor": 4})
    torch.testing.assert_close(
        linear.angles(40, dtype=torch.float64)[::4],
        plain.angles(10, dtype=torch.float64),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "hs, base, s, L", [(8, 10000.0, 2.0, 16), (64, 10000.0, 4.0, 2048), (4, 100.0, 3, 5)]
)
def test_dynamic_base_grows_with_the_total_length_past_L(hs, base, s, L):
    scaling = {"rope_type": "dynamic", "factor": s, "original_max_position_embeddings": L}
    rope = RotaryEmbedding(hs, base, scaling=scaling)
    plain = as_tensor(plain_frequencies(hs, base))
    for n in (1, L - 1, L):
        torch.testing.assert_close(rope.inv_freq(n), plain, rtol=1e-12, atol=0)
    for n in (L + 1, 2 * L, 7 * L + 3):
        expected = as_tensor(dynamic_reference(hs, base, s, L, n))
        torch.testing.assert_close(rope.inv_freq(n), expected, rtol=1e-12, atol=0)
        assert not torch.allclose(expected, plain)
    # angles(T, start) use the total length start + T
    T, start = 3, 2 * L
    expected = torch.tensor(
        [[p * f for f in dynamic_reference(hs, base, s, L, start + T)] for p in range(start, start + T)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(rope.angles(T, start, dtype=torch.float64), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "hs, base, s, L, betas",
    [
        (64, 10000.0, 4.0, 64, {}),
        (16, 10000.0, 8.0, 4096, {}),
        (128, 1000000.0, 4.0, 32768, {"beta_fast": 16, "beta_slow": 2}),
        (8, 10000.0, 2.0, 2048, {"beta_fast": 32.0, "beta_slow": 32.0}),  # low == high: a step
    ],
)
def test_yarn_frequencies_follow_the_ramp_over_turns(hs, base, s, L, betas):
    scaling = {"rope_type": "yarn", "factor": s, "original_max_position_embeddings": L, **betas}
    rope = RotaryEmbedding(hs, base, scaling=scaling)
    expected = as_tensor(yarn_reference(hs, base, s, L, **betas))
    torch.testing.assert_close(rope.inv_freq(), expected, rtol=1e-12, atol=0)
    plain = as_tensor(plain_frequencies(hs, base))
    assert rope.inv_freq()[0] == plain[0], "the fastest pair keeps its frequency"
    assert torch.all(rope.inv_freq() <= plain) and torch.all(rope.inv_freq() >= plain / s - 1e-18)
    assert rope.inv_freq(10 * L).equal(rope.inv_freq()), "YaRN does not depend on the length"


def test_yarn_has_a_non_trivial_ramp_in_a_chosen_case():
    # hs=64, L=64: j_fast < 0 -> low 0; j_slow = 64*ln(64/(2 pi))/(2 ln 1e4) = 8.07 -> high 9
    rope = RotaryEmbedding(
        64, scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    )
    ratio = as_tensor(plain_frequencies(64, 10000.0)) / rope.inv_freq()  # 1 (kept) .. 4 (interpolated)
    torch.testing.assert_close(ratio[9:], torch.full((23,), 4.0, dtype=torch.float64), rtol=1e-12, atol=0)
    gamma = torch.arange(10, dtype=torch.float64) / 9
    torch.testing.assert_close(1 / ratio[:10], 1 - gamma + gamma / 4, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "s, given, expected",
    [
        (4.0, None, 0.1 * math.log(4.0) + 1),
        (16, None, 0.1 * math.log(16) + 1),
        (1.0, None, 1.0),
        (0.5, None, 1.0),
        (4.0, 1.5, 1.5),
    ],
)
def test_yarn_attention_factor_multiplies_cos_and_sin(s, given, expected):
    scaling: dict[str, object] = {"rope_type": "yarn", "factor": s, "original_max_position_embeddings": 32}
    if given is not None:
        scaling["attention_factor"] = given
    rope = RotaryEmbedding(8, scaling=scaling)
    assert rope.attention_factor == pytest.approx(expected, rel=1e-15)
    cos, sin = rope.cos_sin(6, start=2, dtype=torch.float64)  # (T, hs) each
    angles = rope.angles(6, start=2, dtype=torch.float64)  # (T, hs/2)
    torch.testing.assert_close(cos, (angles.cos() * expected).repeat(1, 2), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(sin, (angles.sin() * expected).repeat(1, 2), rtol=1e-12, atol=1e-15)
    # every score q . k is scaled by the factor squared
    q, k = torch.randn(2, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).unbind(0)
    unit = (angles.cos().repeat(1, 2), angles.sin().repeat(1, 2))  # (T, hs) each, no factor
    unscaled = (rope(q, cos_sin=unit) * rope(k, cos_sin=unit)).sum(-1)  # (T,)
    scaled = (rope(q, cos_sin=(cos, sin)) * rope(k, cos_sin=(cos, sin))).sum(-1)  # (T,)
    torch.testing.assert_close(scaled, unscaled * expected**2, rtol=1e-12, atol=1e-12)


def test_no_scaling_keeps_plain_rope_exactly():
    for dtype in (torch.float32, torch.float64):
        cos, sin = RotaryEmbedding(8).cos_sin(5, 1, dtype)
        angles = torch.tensor(
            [[p * 10000.0 ** (-2 * i / 8) for i in range(4)] for p in range(1, 6)], dtype=torch.float64
        )
        torch.testing.assert_close(cos, angles.cos().repeat(1, 2).to(dtype))
        torch.testing.assert_close(sin, angles.sin().repeat(1, 2).to(dtype))
    assert RotaryEmbedding(8).scaling is None and RotaryEmbedding(8).attention_factor == 1.0


def test_scaling_dict_is_copied():
    scaling = {"rope_type": "linear", "factor": 2.0}
    rope = RotaryEmbedding(8, scaling=scaling)
    scaling["factor"] = 100.0
    assert rope.scaling == {"rope_type": "linear", "factor": 2.0}
    torch.testing.assert_close(
        rope.inv_freq(), as_tensor(linear_reference(8, 10000.0, 2.0)), rtol=1e-12, atol=0
    )


YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}
DYNAMIC = {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 8}


@pytest.mark.parametrize(
    "scaling, error, match",
    [
        ("linear", TypeError, "'linear'"),
        (2.0, TypeError, "2.0"),
        ({"rope_type": "ntk", "factor": 2.0}, ValueError, "'ntk'"),
        ({"factor": 2.0}, ValueError, "rope_type"),
        ({"rope_type": "linear", "factor": 0}, ValueError, "factor.*0"),
        ({"rope_type": "linear", "factor": -1.5}, ValueError, "-1.5"),
        ({"rope_type": "linear", "factor": float("nan")}, ValueError, "nan"),
        ({"rope_type": "linear", "factor": "2"}, TypeError, "factor.*'2'"),
        ({"rope_type": "linear", "factor": True}, TypeError, "factor.*True"),
        ({"rope_type": "linear"}, ValueError, "factor"),
        ({"rope_type": "yarn", "factor": 4.0}, ValueError, "original_max_position_embeddings"),
        ({"rope_type": "dynamic", "factor": 4.0}, ValueError, "original_max_position_embeddings"),
        ({**YARN, "original_max_position_embeddings": 0}, ValueError, "original_max_position_embeddings.*0"),
        ({**YARN, "original_max_position_embeddings": 8.5}, TypeError, "8.5"),
        ({**YARN, "mscale": 1.0}, ValueError, "mscale"),
        ({"rope_type": "linear", "factor": 2.0, "type": "linear"}, ValueError, "'type'"),
        ({**DYNAMIC, "beta_fast": 32}, ValueError, "beta_fast"),
        ({**YARN, "beta_fast": -1}, ValueError, "beta_fast.*-1"),
        ({**YARN, "attention_factor": 0.0}, ValueError, "attention_factor.*0.0"),
    ],
)
def test_bad_scaling_is_named(scaling, error, match):
    with pytest.raises(error, match=match):
        RotaryEmbedding(8, scaling=scaling)


def test_dynamic_needs_head_size_four():
    with pytest.raises(ValueError, match="head_size.*2"):
        RotaryEmbedding(2, scaling=DYNAMIC)


def small_gpt(**kwargs) -> GPT:
    torch.manual_seed(0)
    model = GPT(
        vocab_size=13,
        max_seq_len=16,
        emb_size=16,
        num_heads=2,
        head_size=8,
        num_layers=2,
        dropout=0.0,
        **kwargs,
    )
    return model.double().eval()


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_gpt_refuses_rope_scaling_without_rope(positions):
    with pytest.raises(ValueError, match=f"rope_scaling.*positions={positions!r}"):
        GPT(13, 16, 16, 2, 8, 1, positions=positions, rope_scaling=YARN)


def test_gpt_checks_the_scaling_dict():
    with pytest.raises(ValueError, match="'ntk'"):
        GPT(13, 16, 16, 2, 8, 1, positions="rope", rope_scaling={"rope_type": "ntk", "factor": 2.0})


@pytest.mark.parametrize("scaling", [{"rope_type": "linear", "factor": 2.0}, YARN])
def test_gpt_scaled_rope_cache_equals_recomputation(scaling):
    model = small_gpt(positions="rope", rope_scaling=scaling)
    for block in model.decoders:
        assert block.attention.rotary.scaling == scaling
    x = torch.randint(0, 13, (2, 12), generator=torch.Generator().manual_seed(1))
    full = model(x)  # (B, T, V)
    plain = small_gpt(positions="rope")
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(full, plain(x)), "the scaling must change the logits"
    cache = model.new_cache()
    steps = [model(x[:, :5], cache)] + [model(x[:, t : t + 1], cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)
    prompt = x[:, :3]
    cached = model.generate(prompt, max_new_tokens=20, do_sample=False)  # slides past max_seq_len
    recomputed = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False)
    assert torch.equal(cached, recomputed)


def test_gpt_dynamic_refuses_a_cache_and_scales_only_past_L():
    model = small_gpt(positions="rope", rope_scaling=DYNAMIC)
    plain = small_gpt(positions="rope")
    plain.load_state_dict(model.state_dict())
    x = torch.randint(0, 13, (2, 16), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x[:, :8]), plain(x[:, :8]), rtol=0, atol=0)  # total length <= L
    assert not torch.allclose(model(x), plain(x))  # 16 > L = 8: another base
    with pytest.raises(ValueError, match="dynamic.*use_cache=False"):
        model(x[:, :4], model.new_cache())
    with pytest.raises(ValueError, match="dynamic.*use_cache=False"):
        model.generate(x[:, :4], max_new_tokens=2, do_sample=False)
    out = model.generate(x[:, :4], max_new_tokens=20, do_sample=False, use_cache=False)
    assert out.shape == (2, 24)
