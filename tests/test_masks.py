import pytest
import torch

from simple_llm import MultiHeadAttention, padding_mask
from simple_llm.masks import combine_masks


def test_padding_mask_from_list_and_tensor():
    expected = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert torch.equal(padding_mask([3, 1], max_len=4), expected)
    assert torch.equal(padding_mask(torch.tensor([3, 1]), max_len=4), expected)
    assert padding_mask([2, 5]).shape == (2, 5)


def test_padding_mask_zero_length_row_is_all_false():
    assert not padding_mask([0, 2]).any(dim=1)[0]


@pytest.mark.parametrize(
    "lengths, max_len, error, match",
    [
        ([1.5, 2], None, TypeError, r"1\.5"),
        ([True, 2], None, TypeError, "True"),
        (torch.tensor([1.0, 2.0]), None, TypeError, "float32"),
        (torch.tensor([[1, 2]]), None, ValueError, r"\(1, 2\)"),
        ([], None, ValueError, r"\(0,\)"),
        ([-1, 2], None, ValueError, r"-1"),
        ([2**63, 2], None, ValueError, r"fit in int64\), got \[9223372036854775808, 2\]"),
        ([-(2**63) - 1], None, ValueError, r"got \[-9223372036854775809\]"),
        ([3, 2], 2, ValueError, "max_len=2"),
        ([3, 2], 3.0, TypeError, r"3\.0"),
        ("abc", None, TypeError, "abc"),
    ],
)
def test_padding_mask_rejects_bad_input(lengths, max_len, error, match):
    with pytest.raises(error, match=match):
        padding_mask(lengths, max_len)


def test_no_mask_is_causal():
    allowed, keep = combine_masks(None, 2, 4, 3, torch.device("cpu"))
    assert keep is None
    assert torch.equal(allowed[0, 0], torch.ones(4, 4, dtype=torch.bool).tril())


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((5, 5), (1, 1, 5, 5)),
        ((2, 5), (2, 1, 5, 5)),
        ((2, 1, 5), (2, 1, 5, 5)),
        ((2, 5, 5), (2, 1, 5, 5)),
        ((2, 3, 5, 5), (2, 3, 5, 5)),
    ],
)
def test_accepted_shapes_broadcast_to_batch_heads(shape, expected):
    allowed, keep = combine_masks(torch.ones(shape, dtype=torch.bool), 2, 5, 3, torch.device("cpu"))
    assert torch.broadcast_shapes(allowed.shape, (2, 3, 5, 5)) == (2, 3, 5, 5)
    assert allowed.shape == expected
    assert keep.all()


def test_key_padding_blocks_keys_and_causal_stays():
    pad = torch.tensor([[True, True, False, True]])  # key 2 is padding
    allowed, _ = combine_masks(pad, 1, 4, 1, torch.device("cpu"))
    expected = torch.ones(4, 4, dtype=torch.bool).tril()
    expected[:, 2] = False
    expected[2] = torch.tensor([True, True, False, False])
    assert torch.equal(allowed[0, 0], expected)


def test_fully_masked_rows_are_opened_and_flagged():
    pad = torch.tensor([[False, True, True]])  # query 0 can only see key 0, which is padding
    allowed, keep = combine_masks(pad, 1, 3, 1, torch.device("cpu"))
    assert keep[0, 0, :, 0].tolist() == [False, True, True]
    assert allowed[0, 0, 0].all()


def test_two_d_mask_with_b_equal_t_is_a_pattern_and_b1t_is_padding():
    T = 3
    pad = torch.tensor([[True, True, False], [True, True, True], [True, False, True]])
    as_pattern, _ = combine_masks(pad, T, T, 1, torch.device("cpu"))
    as_padding, _ = combine_masks(pad.view(T, 1, T), T, T, 1, torch.device("cpu"))
    assert as_pattern.shape == (1, 1, T, T)
    assert as_padding.shape == (T, 1, T, T)
    assert torch.equal(as_pattern[0, 0], pad & torch.ones(T, T, dtype=torch.bool).tril())
    assert torch.equal(as_padding[0, 0, 1:], torch.tensor([[True, True, False], [True, True, False]]))


def test_numeric_zero_one_mask_equals_bool_mask():
    bool_mask = torch.rand(2, 4, 4) > 0.3
    a, ka = combine_masks(bool_mask, 2, 4, 1, torch.device("cpu"))
    b, kb = combine_masks(bool_mask.float(), 2, 4, 1, torch.device("cpu"))
    c, kc = combine_masks(bool_mask.long(), 2, 4, 1, torch.device("cpu"))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert torch.equal(ka, kb) and torch.equal(ka, kc)


def test_seed_tril_mask_equals_no_mask():
    mha = MultiHeadAttention(2, 8, 4, 16).eval()
    x = torch.randn(2, 5, 8)
    assert torch.allclose(mha(x, torch.tril(torch.ones(5, 5))), mha(x), atol=1e-6)


def test_non_contiguous_mask_is_accepted():
    mask = (torch.rand(4, 4) > 0.5).t()
    assert not mask.is_contiguous()
    allowed, keep = combine_masks(mask, 2, 4, 1, torch.device("cpu"))
    expected, expected_keep = combine_masks(mask.contiguous(), 2, 4, 1, torch.device("cpu"))
    assert torch.equal(allowed, expected) and torch.equal(keep, expected_keep)


def test_additive_mask_is_rejected_with_conversion_hint():
    additive = torch.zeros(4, 4).masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf"))
    with pytest.raises(ValueError, match=r"-inf.*mask = additive_mask == 0"):
        combine_masks(additive, 2, 4, 1, torch.device("cpu"))
    allowed, _ = combine_masks(additive == 0, 2, 4, 1, torch.device("cpu"))
    assert allowed.shape == (1, 1, 4, 4)


def test_mask_with_other_values_is_rejected():
    with pytest.raises(ValueError, match="0.5"):
        combine_masks(torch.full((4, 4), 0.5), 2, 4, 1, torch.device("cpu"))


def test_wrong_mask_shape_names_shapes():
    with pytest.raises(
        ValueError, match=r"\(3, 4\).*\(4, 4\).*\(2, 4\).*\(2, 1, 4\).*\(2, 4, 4\).*\(2, 5, 4, 4\)"
    ):
        combine_masks(torch.ones(3, 4, dtype=torch.bool), 2, 4, 5, torch.device("cpu"))


def test_mask_on_other_device_is_rejected():
    with pytest.raises(ValueError, match="meta"):
        combine_masks(torch.ones(4, 4, dtype=torch.bool, device="meta"), 2, 4, 1, torch.device("cpu"))


@pytest.mark.parametrize("dtype", [torch.long, torch.float32, torch.bool])
def test_mask_on_the_meta_device_skips_the_value_check(dtype):
    """A meta tensor has no values: an int or float 0/1 mask must not fail in the value check."""
    mask = torch.ones(2, 5, dtype=dtype, device="meta")
    allowed, keep = combine_masks(mask, 2, 5, 3, torch.device("meta"))
    assert allowed.device.type == keep.device.type == "meta"
    assert allowed.shape == (2, 1, 5, 5) and allowed.dtype == torch.bool
    mha = MultiHeadAttention(3, 12, 4, 8).to("meta")
    x = torch.randn(2, 5, 12, device="meta")
    assert mha(x, mask).shape == (2, 5, 12)
    assert mha.get_attention_weights(x, mask).shape == (2, 3, 5, 5)
    assert mha.head(1)(x, mask).shape == (2, 5, 4)


def test_mask_values_are_still_checked_off_the_meta_device():
    with pytest.raises(ValueError, match="2"):
        combine_masks(torch.full((2, 5), 2), 2, 5, 3, torch.device("cpu"))


def test_mask_not_a_tensor_is_rejected():
    with pytest.raises(TypeError, match="list"):
        combine_masks([[1, 0], [1, 1]], 1, 2, 1, torch.device("cpu"))


@pytest.mark.parametrize(
    "T, start, error, match",
    [
        (2, -1, ValueError, "start must be a non-negative int, got -1"),
        (-1, 0, ValueError, "T must be a positive int, got -1"),
        (0, 3, ValueError, "T must be a positive int, got 0"),
        (2.0, 1, TypeError, r"T must be a positive int, got 2\.0"),
        (2, 1.0, ValueError, r"start must be a non-negative int, got 1\.0"),
        (True, 1, TypeError, "T must be a positive int, got True"),
    ],
)
def test_causal_after_checks_its_arguments(T, start, error, match):
    from simple_llm import causal_after

    with pytest.raises(error, match=match):
        causal_after(T, start)
