import itertools
import weakref

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from simple_llm import HeadAttention, HeadView, KVCache, MultiHeadAttention, padding_mask


def make(H=2, C=8, hs=4, max_seq_len=16, dtype=torch.float32):
    return MultiHeadAttention(H, C, hs, max_seq_len, dropout=0.0).to(dtype).eval()


def both_paths(mha, x, mask=None):
    """Output of the fast path and of the explicit path."""
    return mha(x, mask), mha(x, mask, return_weights=True)[0]


def pre_projection(mha, out):
    """Undo the output projection: (B, T, C) -> (B, T, H*hs) (needs an invertible proj)."""
    return torch.linalg.solve(mha.proj.weight, (out - mha.proj.bias).unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("H, C, hs", [(4, 16, 4), (2, 8, 5), (3, 10, 2), (1, 6, 6)])
def test_shapes_including_emb_size_not_heads_times_head_size(H, C, hs):
    mha = make(H, C, hs)
    x = torch.randn(2, 7, C)
    out, weights = mha(x, return_weights=True)
    assert mha(x).shape == out.shape == (2, 7, C)
    assert weights.shape == mha.get_attention_weights(x).shape == (2, H, 7, 7)
    assert mha.qkv.weight.shape == (3 * H * hs, C)
    assert mha.proj.weight.shape == (C, H * hs)


def test_parameter_count_is_4c2_plus_4c():
    C = 64
    mha = MultiHeadAttention(8, C, 8, 32)
    assert sum(p.numel() for p in mha.parameters()) == 4 * C * C + 4 * C


@pytest.mark.parametrize("masked", [False, True])
def test_fast_and_explicit_paths_agree(masked):
    mha = make(3, 12, 4).double()
    x = torch.randn(3, 7, 12, dtype=torch.float64)
    mask = padding_mask([7, 4, 1], 7) if masked else None
    fast, explicit = both_paths(mha, x, mask)
    torch.testing.assert_close(fast, explicit, rtol=1e-10, atol=1e-12)


def test_dropout_is_a_no_op_in_eval_and_active_in_train():
    mha = MultiHeadAttention(2, 8, 4, 16, dropout=0.5)
    x = torch.randn(2, 5, 8)
    mha.eval()
    expected = torch.nn.functional.linear(
        torch.nn.functional.scaled_dot_product_attention(
            *mha.qkv(x).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4), is_causal=True
        )
        .transpose(1, 2)
        .reshape(2, 5, 8),
        mha.proj.weight,
        mha.proj.bias,
    )
    torch.testing.assert_close(mha(x), expected)
    assert torch.equal(mha(x), mha(x))
    mha.train()
    assert not torch.equal(mha(x), mha(x))
    assert (mha(x) == 0).float().mean() > 0.2


@pytest.mark.parametrize("return_weights", [False, True])
def test_causality_future_token_does_not_change_past(return_weights):
    mha = make(2, 8, 4)
    x = torch.randn(2, 6, 8)

    def run(x):
        return mha(x, return_weights=True)[0] if return_weights else mha(x)

    for t in range(5):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randn(2, 5 - t, 8)
        torch.testing.assert_close(run(changed)[:, : t + 1], run(x)[:, : t + 1], rtol=0, atol=1e-6)


def test_masked_key_gets_exactly_zero_weight_and_rows_sum_to_one():
    mha = make(2, 8, 4)
    x = torch.randn(2, 5, 8)
    mask = padding_mask([5, 3])
    weights = mha.get_attention_weights(x, mask)
    assert (weights[1, :, :, 3:] == 0).all()
    assert (weights.triu(1) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 5))


def test_per_head_mask_pattern():
    mha = make(2, 8, 4)
    x = torch.randn(1, 4, 8)
    mask = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    mask[0, 1] = torch.eye(4, dtype=torch.bool)  # head 1 attends only to itself
    weights = mha.get_attention_weights(x, mask)
    assert torch.equal(weights[0, 1], torch.eye(4))
    torch.testing.assert_close(weights[0, 0], mha.get_attention_weights(x)[0, 0])
    assert torch.equal(mha.head(1).get_attention_weights(x, mask)[0], torch.eye(4))
    fast, explicit = both_paths(mha, x, mask)
    torch.testing.assert_close(fast, explicit)


def test_fully_masked_row_gives_zeros_before_projection_in_both_paths():
    mha = make(2, 8, 4)
    x = torch.randn(2, 4, 8)
    mask = torch.tensor(
        [[False, True, True, True], [True, True, True, True]]
    )  # query 0 of item 0 sees nothing
    for out in both_paths(mha, x, mask):
        assert torch.equal(out[0, 0], mha.proj.bias)  # zero attention output, then proj
        torch.testing.assert_close(pre_projection(mha, out)[0, 0], torch.zeros(8), atol=1e-5, rtol=0)
        assert torch.isfinite(out).all()
    weights = mha.get_attention_weights(x, mask)
    assert torch.equal(weights[0, :, 0], torch.zeros(2, 4))
    torch.testing.assert_close(weights[0, :, 1:].sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize("return_weights", [False, True])
def test_fully_masked_row_has_finite_gradients(return_weights):
    mha = make(2, 8, 4)
    x = torch.randn(2, 4, 8, requires_grad=True)
    mask = torch.zeros(2, 4, dtype=torch.bool)  # every row fully masked
    mask[1, 2] = True
    out = mha(x, mask, return_weights=True)[0] if return_weights else mha(x, mask)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


@pytest.mark.parametrize("return_weights", [False, True])
def test_gradcheck_float64(return_weights):
    mha = make(2, 4, 3, dtype=torch.float64)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[False, True, True], [True, True, False]])  # one fully masked row

    def run(x, mask):
        return mha(x, mask, return_weights=True)[0] if return_weights else mha(x, mask)

    assert torch.autograd.gradcheck(lambda x: run(x, None), (x,))
    assert torch.autograd.gradcheck(lambda x: run(x, mask), (x,))


def test_gradcheck_weights_float64():
    mha = make(2, 4, 3, dtype=torch.float64)
    x = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: mha.get_attention_weights(x), (x,))


@pytest.mark.parametrize("masked", [False, True])
def test_second_derivative_only_on_the_explicit_path(masked):
    """SDPA's fused CPU kernel has no double backward; the explicit path (return_weights=True) has."""
    mha = make(2, 4, 3, dtype=torch.float64)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mask = padding_mask([3, 2]) if masked else None
    assert torch.autograd.gradgradcheck(lambda x: mha(x, mask, return_weights=True)[0], (x,))
    (grad,) = torch.autograd.grad(mha(x, mask).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="derivative for .*flash_attention.* is not implemented"):
        grad.sum().backward()


def test_same_input_twice_is_bitwise_equal():
    mha = make(4, 32, 8)
    x = torch.randn(3, 9, 32)
    mask = padding_mask([9, 5, 2])
    assert torch.equal(mha(x), mha(x))
    assert torch.equal(mha(x, mask), mha(x, mask))
    assert torch.equal(mha.get_attention_weights(x), mha.get_attention_weights(x))


def test_bfloat16_error_is_bounded_by_float64_reference():
    """bf16 error vs a float64 reference stays within a few times the error of rounding to bf16."""
    mha = make(4, 64, 16, max_seq_len=32, dtype=torch.float64)
    x = torch.randn(2, 32, 64, dtype=torch.float64)
    mask = padding_mask([32, 20], 32)
    for m in (None, mask):
        ref = mha(x, m)
        rounded = mha.to(torch.bfloat16).to(torch.float64)(x.bfloat16().double(), m)  # inputs rounded only
        mha.double()
        bf16 = make(4, 64, 16, max_seq_len=32, dtype=torch.bfloat16)
        bf16.load_state_dict(mha.state_dict())
        out = bf16(x.bfloat16(), m).double()
        assert out.dtype == torch.float64
        rounding_error = (rounded - ref).abs().max()
        eps = torch.finfo(torch.bfloat16).eps
        assert (out - ref).abs().max() <= max(8 * rounding_error, 4 * eps * ref.abs().max())


class TestHeadViews:
    def test_seed_access_gives_per_head_weights_equal_to_fused(self):
        mha = make(3, 12, 4)
        x = torch.randn(2, 5, 12)
        per_head = [head.get_attention_weights(x) for head in mha.heads]
        assert len(per_head) == 3 and per_head[0].shape == (2, 5, 5)
        torch.testing.assert_close(torch.stack(per_head, dim=1), mha.get_attention_weights(x))

    def test_head_outputs_concatenated_then_projected_equal_forward(self):
        mha = make(3, 12, 5)
        x = torch.randn(2, 6, 12)
        mask = padding_mask([6, 2])
        for m in (None, mask):
            heads = torch.cat([head(x, m) for head in mha.heads], dim=-1)  # (B, T, H*hs)
            assert heads.shape == (2, 6, 15)
            torch.testing.assert_close(mha.proj(heads), mha(x, m))
            torch.testing.assert_close(torch.cat([mha.head(h).forward(x, m) for h in range(3)], -1), heads)

    def test_head_weights_are_views_of_fused_parameters(self):
        mha = make(3, 12, 4)
        storage = mha.qkv.weight.untyped_storage().data_ptr()
        for h, head in enumerate(mha.heads):
            w_q, w_k, w_v = head.weights
            b_q, b_k, b_v = head.biases
            for i, (w, b) in enumerate(zip((w_q, w_k, w_v), (b_q, b_k, b_v))):
                rows = slice((i * 3 + h) * 4, (i * 3 + h + 1) * 4)
                assert w.untyped_storage().data_ptr() == storage
                assert w.shape == (4, 12) and torch.equal(w, mha.qkv.weight[rows])
                assert torch.equal(b, mha.qkv.bias[rows])

    def test_in_place_change_is_seen_by_heads(self):
        mha = make(2, 8, 4)
        x = torch.randn(1, 4, 8)
        head = mha.head(1)
        before = head(x)
        with torch.no_grad():
            mha.qkv.weight[(2 * 2 + 1) * 4 : (2 * 2 + 2) * 4].mul_(2.0)  # V rows of head 1 (H=2, hs=4)
        torch.testing.assert_close(head(x), 2 * before - head.biases[2].detach())

    def test_gradient_flows_to_fused_parameters_only_in_head_rows(self):
        mha = make(3, 12, 4)
        mha.head(1)(torch.randn(2, 5, 12)).sum().backward()
        rows = torch.zeros(36, dtype=torch.bool)
        for i in range(3):
            rows[(i * 3 + 1) * 4 : (i * 3 + 2) * 4] = True
        grad = mha.qkv.weight.grad
        assert grad[rows].ne(0).any()
        assert (grad[~rows] == 0).all()
        assert mha.qkv.bias.grad[rows].ne(0).any()

    def test_no_extra_parameters_no_submodules_no_cycles(self):
        mha = make(3, 12, 4)
        names = [name for name, _ in mha.named_parameters()]
        assert len(mha.heads) == 3 and mha.head(0).index == 0
        assert [head.index for head in mha._heads] == [0, 1, 2]  # the original project's name
        assert [name for name, _ in mha.named_parameters()] == names
        assert [name for name, _ in mha.named_modules()] == ["", "qkv", "proj", "dropout"]
        ref = weakref.ref(mha)
        del mha
        assert ref() is None  # freed by reference counting alone

    @pytest.mark.parametrize(
        "h, error", [(3, ValueError), (-1, ValueError), (1.0, TypeError), (True, TypeError)]
    )
    def test_head_index_out_of_range(self, h, error):
        with pytest.raises(error, match=str(h)):
            make(3, 12, 4).head(h)
        with pytest.raises(error, match=str(h)):
            HeadView(make(3, 12, 4), h)  # HeadView is public: built directly, it checks the same

    def test_head_view_of_something_else_is_named(self):
        with pytest.raises(TypeError, match="mha must be a MultiHeadAttention, got HeadAttention"):
            HeadView(HeadAttention(8, 4, 16), 0)


def memory_events(mha, x, mask=None, return_weights=False):
    """Sizes in bytes of the tensor allocations (+) and frees (-) of one forward, in time order."""
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        mha(x, mask, return_weights=return_weights)
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    return [e.nbytes() for e in events]


def test_no_mask_path_memory_is_linear_in_t():
    """The fast path never materialises a (B, H, T, T) tensor; its peak grows linearly with T."""
    B, H, C, T = 1, 4, 32, 2048
    mha = make(H, C, C // H, max_seq_len=2 * T)
    peaks = []
    for t in (T, 2 * T):
        sizes = memory_events(mha, torch.randn(B, t, C))
        assert max(sizes) < B * H * t * t * 4 / 16
        peaks.append(max(itertools.accumulate(sizes)))
    assert peaks[1] <= 2.2 * peaks[0]


def test_masked_fused_path_holds_one_mask_not_weights_per_head():
    """With a mask, torch's CPU flash kernel still runs: its extra memory is one float copy of the
    (B|1, 1, T, T) mask, not H (T, T) weight matrices as the explicit path needs."""
    B, H, C, T = 1, 8, 64, 1024
    mha = make(H, C, C // H, max_seq_len=T)
    x = torch.randn(B, T, C)
    pad = padding_mask([T - 1], T)
    fused = max(itertools.accumulate(memory_events(mha, x, pad)))
    explicit = max(itertools.accumulate(memory_events(mha, x, pad, return_weights=True)))
    weights = B * H * T * T * 4  # one float32 (B, H, T, T) tensor
    assert fused < weights / 4 < weights <= explicit


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_heads": 0}, ValueError, "num_heads must be a positive int, got 0"),
        ({"num_heads": 2.0}, TypeError, r"num_heads must be a positive int, got 2\.0"),
        ({"emb_size": True}, TypeError, "emb_size must be a positive int, got True"),
        ({"head_size": -3}, ValueError, "head_size must be a positive int, got -3"),
        ({"max_seq_len": "8"}, TypeError, "max_seq_len must be a positive int, got '8'"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a float in \[0, 1\), got 1\.0"),
        ({"dropout": -0.1}, ValueError, r"-0\.1"),
        ({"dropout": "0.1"}, TypeError, "'0.1'"),
        ({"dropout": False}, TypeError, "False"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"num_heads": 2, "emb_size": 8, "head_size": 4, "max_seq_len": 8, **kwargs}
    with pytest.raises(error, match=match):
        MultiHeadAttention(**args)


@pytest.mark.parametrize(
    "x, error, match",
    [
        ("not a tensor", TypeError, "str"),
        (torch.ones(1, 3, 8, dtype=torch.int32), TypeError, "int32"),
        (torch.ones(1, 2, 3, 8), ValueError, r"3-D.*\(1, 2, 3, 8\)"),
        (torch.ones(1, 3, 6), ValueError, r"C=8.*\(1, 3, 6\)"),
        (torch.ones(1, 9, 8), ValueError, "T=9 exceeds max_seq_len=8"),
        (torch.ones(2, 0, 8), ValueError, r"\(2, 0, 8\)"),
    ],
)
@pytest.mark.parametrize("return_weights", [False, True])
def test_bad_input(x, error, match, return_weights):
    mha = MultiHeadAttention(2, 8, 4, 8)
    with pytest.raises(error, match=match):
        mha(x, return_weights=return_weights)
    with pytest.raises(error, match=match):
        mha.head(0)(x)


def test_bad_mask_is_rejected_in_every_entry_point():
    mha = make(2, 8, 4)
    x = torch.randn(2, 3, 8)
    bad = torch.ones(2, 4, dtype=torch.bool)
    for call in (mha, mha.get_attention_weights, mha.head(0), mha.head(0).get_attention_weights):
        with pytest.raises(ValueError, match=r"\(2, 4\)"):
            call(x, bad)
    with pytest.raises(ValueError, match="additive_mask == 0"):
        mha(x, torch.zeros(3, 3).masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf")))


def test_two_d_mask_with_b_equal_t_is_a_pattern():
    mha = make(2, 8, 4)
    x = torch.randn(3, 3, 8)
    pad = torch.tensor([[True, True, True], [True, False, True], [True, True, False]])
    as_pattern = mha.get_attention_weights(x, pad)
    assert (as_pattern[:, :, :, :][:, :, 1, 1] == 0).all()  # row 1 of the pattern blocks key 1, every item
    as_padding = mha.get_attention_weights(x, pad.view(3, 1, 3))
    assert (as_padding[1, :, :, 1] == 0).all() and (as_padding[0, :, 1, 1] > 0).all()


HALF_TOL = {torch.float16: {"rtol": 0, "atol": 1e-2}, torch.bfloat16: {"rtol": 0, "atol": 6e-2}}


def every_path(mha, head, x, mask):
    """Each way to run attention, as name -> output; ``head`` is a HeadAttention."""
    cache = KVCache()
    cached = torch.cat([mha(x[:, :2], cache=cache), mha(x[:, 2:], cache=cache)], 1)  # (B, T, C)
    out, weights = mha(x, return_weights=True)
    return {
        "fast": mha(x),
        "fast, mask": mha(x, mask),
        "explicit": out,
        "explicit weights": weights,
        "get_attention_weights, mask": mha.get_attention_weights(x, mask),
        "cache": cached,
        "HeadView": mha.head(1)(x, mask),
        "HeadView weights": mha.head(1).get_attention_weights(x),
        "HeadAttention": head(x, mask),
        "HeadAttention weights": head.get_attention_weights(x),
    }


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_every_path_against_float64(dtype):
    torch.manual_seed(0)
    mha, head = make(2, 8, 4, dtype=torch.float64), HeadAttention(8, 4, 16).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = padding_mask([5, 3])
    reference = every_path(mha, head, x, mask)
    half = every_path(mha.to(dtype), head.to(dtype), x.to(dtype), mask)
    for name, out in half.items():
        assert out.dtype == dtype, name
        torch.testing.assert_close(out.double(), reference[name], **HALF_TOL[dtype], msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_scores_that_overflow_float16_before_scaling_stay_finite(dtype):
    """q.k = 64 * 40 * 40 = 102,400 > 65,504 (float16's largest); divided by sqrt(64) it is 12,800."""
    mha = MultiHeadAttention(2, 1, 64, 8, dropout=0.0).double()
    head = HeadAttention(1, 64, 8).double()
    with torch.no_grad():
        mha.qkv.weight.copy_(
            torch.cat([torch.full((256, 1), 40.0), torch.ones(128, 1)])
        )  # Q, K of 2 heads; V
        mha.qkv.bias.zero_()
        for proj, value in [(head.q_proj, 40.0), (head.k_proj, 40.0), (head.v_proj, 1.0)]:
            proj.weight.fill_(value)
            proj.bias.zero_()
    x = torch.ones(1, 4, 1, dtype=torch.float64)
    mask = padding_mask([3], 4)
    reference = every_path(mha, head, x, mask)
    assert reference["explicit weights"][0, 0, 3, 0].item() == 0.25  # equal scores of 12,800
    for name, out in every_path(mha.to(dtype), head.to(dtype), x.to(dtype), mask).items():
        assert bool(out.isfinite().all()), name
        torch.testing.assert_close(out.double(), reference[name], **HALF_TOL[dtype], msg=name)


@pytest.mark.parametrize("flag", ["False", None, 1, [], 0.0])
def test_return_weights_must_be_a_bool(flag):
    with pytest.raises(TypeError, match=rf"return_weights must be a bool, got {flag!r}".replace("[", r"\[")):
        make()(torch.randn(1, 3, 8), return_weights=flag)


@pytest.mark.parametrize(
    "module_dtype, x_dtype, fix",
    [
        (torch.float32, torch.float64, r"module\.double\(\).*x\.float\(\)"),
        (torch.float64, torch.float32, r"module\.float\(\).*x\.double\(\)"),
        (torch.float32, torch.bfloat16, r"module\.bfloat16\(\).*x\.float\(\)"),
    ],
)
def test_input_dtype_other_than_the_module_is_named_with_the_fix(module_dtype, x_dtype, fix):
    mha, head = make(dtype=module_dtype), HeadAttention(8, 4, 16).to(module_dtype)
    x = torch.randn(1, 3, 8, dtype=x_dtype)
    names = rf"x has dtype {x_dtype} but the module's weights are {module_dtype}: .*{fix}"
    for call in (mha, lambda x: mha(x, return_weights=True), mha.head(0), head, head.get_attention_weights):
        with pytest.raises(TypeError, match=names):
            call(x)


def test_input_on_another_device_is_named():
    x = torch.randn(1, 3, 8, device="meta")
    with pytest.raises(TypeError, match="x is on meta but the module's weights are on cpu"):
        make()(x)
