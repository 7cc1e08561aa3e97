import pytest
import torch

from simple_llm import Decoder, FeedForward, MultiHeadAttention, padding_mask


def make(norm_first=False):
    return Decoder(2, 8, 4, 16, dropout=0.0, norm_first=norm_first).eval()


def test_submodules_and_post_ln_default():
    block = Decoder(2, 8, 4, 16)
    assert isinstance(block.attention, MultiHeadAttention) and isinstance(block.feed_forward, FeedForward)
    assert isinstance(block.norm1, torch.nn.LayerNorm) and isinstance(block.norm2, torch.nn.LayerNorm)
    assert block.norm_first is False


@pytest.mark.parametrize("masked", [False, True])
def test_post_ln_formula(masked):
    block = make()
    x = torch.randn(2, 5, 8)
    mask = padding_mask([5, 3]) if masked else None
    h = block.norm1(x + block.attention(x, mask))
    torch.testing.assert_close(block(x, mask), block.norm2(h + block.feed_forward(h)))


@pytest.mark.parametrize("masked", [False, True])
def test_pre_ln_formula(masked):
    block = make(norm_first=True)
    x = torch.randn(2, 5, 8)
    mask = padding_mask([5, 3]) if masked else None
    h = x + block.attention(block.norm1(x), mask)
    torch.testing.assert_close(block(x, mask), h + block.feed_forward(block.norm2(h)))


@pytest.mark.parametrize("norm_first", [False, True])
def test_causality(norm_first):
    block = make(norm_first)
    x = torch.randn(2, 6, 8)
    for t in range(5):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randn(2, 5 - t, 8)
        torch.testing.assert_close(block(changed)[:, : t + 1], block(x)[:, : t + 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_padded_keys_do_not_change_real_tokens(norm_first):
    block = make(norm_first)
    x = torch.randn(1, 6, 8)
    pad = padding_mask([4], 6)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 8)
    torch.testing.assert_close(block(changed, pad)[:, :4], block(x, pad)[:, :4], rtol=0, atol=1e-6)
    torch.testing.assert_close(block(x, pad)[:, :4], block(x[:, :4]), rtol=0, atol=1e-6)


def test_dropout_is_a_no_op_in_eval():
    block = Decoder(2, 8, 4, 16, dropout=0.5).eval()
    x = torch.randn(2, 5, 8)
    assert torch.equal(block(x), block(x))


def test_bad_arguments():
    with pytest.raises(TypeError, match="norm_first must be a bool, got 'yes'"):
        Decoder(2, 8, 4, 16, norm_first="yes")
    with pytest.raises(ValueError, match="num_heads must be a positive int, got 0"):
        Decoder(0, 8, 4, 16)
    with pytest.raises(ValueError, match=r"C=8.*\(1, 3, 5\)"):
        make(norm_first=True)(torch.ones(1, 3, 5))
    with pytest.raises(TypeError, match="int64"):
        make()(torch.ones(1, 3, 8, dtype=torch.long))
