import pytest
import torch
import torch.nn.functional as F

from simple_llm import HeadAttention


def reference(head, x, mask=None):
    """F.scaled_dot_product_attention with the head's weights; mask True = attend."""
    q, k, v = head.q_proj(x), head.k_proj(x), head.v_proj(x)
    T = x.size(1)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    if mask is not None:
        allowed = allowed & mask
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


@pytest.mark.parametrize("B, T, C, hs", [(1, 1, 4, 3), (2, 7, 8, 5), (3, 4, 6, 16)])
def test_equals_sdpa_reference_float64(B, T, C, hs):
    head = HeadAttention(C, hs, max_seq_len=8).double()
    x = torch.randn(B, T, C, dtype=torch.float64)
    out = head(x)
    assert out.shape == (B, T, hs)
    torch.testing.assert_close(out, reference(head, x), rtol=1e-10, atol=1e-12)


def test_key_padding_matches_reference_and_masked_key_gets_zero_weight():
    head = HeadAttention(8, 4, max_seq_len=8).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]])
    torch.testing.assert_close(head(x, pad), reference(head, x, pad[:, None, :]), rtol=1e-10, atol=1e-12)
    weights = head.get_attention_weights(x, pad)
    assert (weights[1, :, 3:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5, dtype=torch.float64))


def test_weights_are_causal_and_rows_sum_to_one():
    head = HeadAttention(8, 4, max_seq_len=8)
    weights = head.get_attention_weights(torch.randn(2, 6, 8))
    assert weights.shape == (2, 6, 6)
    assert (weights.triu(1) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 6))


def test_causality_future_token_does_not_change_past():
    head = HeadAttention(8, 4, max_seq_len=8)
    x = torch.randn(2, 6, 8)
    for t in range(5):
        changed = x.clone()
        changed[:, t + 1] = torch.randn(2, 8)
        assert torch.allclose(head(changed)[:, : t + 1], head(x)[:, : t + 1], rtol=0, atol=1e-6)


def test_fully_masked_row_gives_zeros_and_finite_grads():
    head = HeadAttention(8, 4, max_seq_len=8)
    x = torch.randn(1, 3, 8, requires_grad=True)
    pad = torch.tensor([[False, True, True]])  # query 0 sees only key 0, which is padding
    out = head(x, pad)
    assert torch.equal(out[0, 0], torch.zeros(4))
    assert torch.equal(head.get_attention_weights(x, pad)[0, 0], torch.zeros(3))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())
    assert torch.isfinite(x.grad).all()


def test_gradcheck_float64_with_and_without_mask():
    head = HeadAttention(4, 3, max_seq_len=4).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[True, True, True], [False, True, True]])
    assert torch.autograd.gradcheck(lambda x: head(x), (x,))
    assert torch.autograd.gradcheck(lambda x: head(x, pad), (x,))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 4, 8), ValueError, "emb_size must be a positive int, got 0"),
        ((8, -1, 8), ValueError, "head_size must be a positive int, got -1"),
        ((8, 4, 2.0), TypeError, r"max_seq_len must be a positive int, got 2\.0"),
        ((True, 4, 8), TypeError, "emb_size must be a positive int, got True"),
    ],
)
def test_bad_constructor_arguments(args, error, match):
    with pytest.raises(error, match=match):
        HeadAttention(*args)


@pytest.mark.parametrize(
    "x, error, match",
    [
        ([[1.0]], TypeError, "list"),
        (torch.ones(1, 3, 8, dtype=torch.long), TypeError, "int64"),
        (torch.ones(3, 8), ValueError, r"\(3, 8\)"),
        (torch.ones(1, 3, 7), ValueError, r"C=8.*\(1, 3, 7\)"),
        (torch.ones(1, 9, 8), ValueError, "T=9 exceeds max_seq_len=8"),
        (torch.ones(1, 0, 8), ValueError, r"\(1, 0, 8\)"),
    ],
)
def test_bad_input(x, error, match):
    head = HeadAttention(8, 4, max_seq_len=8)
    with pytest.raises(error, match=match):
        head(x)


def test_public_attributes_and_parameters():
    head = HeadAttention(8, 4, max_seq_len=16)
    assert (head.emb_size, head.head_size, head.max_seq_len) == (8, 4, 16)
    assert sum(p.numel() for p in head.parameters()) == 3 * (8 * 4 + 4)
