import pytest
import torch
import torch.nn as nn

from simple_llm import Decoder, padding_mask


def make(norm_first=False):
    return Decoder(2, 8, 4, 16, dropout=0.0, norm_first=norm_first).eval()


def torch_layer(C, H, norm_first):
    """PyTorch's encoder layer with our block's architecture: ReLU, hidden 4C, dropout 0, batch first."""
    layer = nn.TransformerEncoderLayer(
        C, H, dim_feedforward=4 * C, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    )
    return layer.double().eval()


def copy_weights(layer, block):
    """Load the encoder layer's parameters into our block (raises if a shape does not match)."""
    names = {
        "attention.qkv.weight": "self_attn.in_proj_weight",
        "attention.qkv.bias": "self_attn.in_proj_bias",
        "attention.proj.weight": "self_attn.out_proj.weight",
        "attention.proj.bias": "self_attn.out_proj.bias",
        "feed_forward.up.weight": "linear1.weight",
        "feed_forward.up.bias": "linear1.bias",
        "feed_forward.down.weight": "linear2.weight",
        "feed_forward.down.bias": "linear2.bias",
    }
    theirs = layer.state_dict()
    ours = {name: theirs[names.get(name, name)] for name in block.state_dict()}  # norm1/norm2: same names
    block.load_state_dict(ours)
    return block


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("B, T, H, hs", [(2, 7, 2, 4), (1, 1, 1, 3), (3, 5, 4, 2)])
@pytest.mark.parametrize("padded", [False, True])
def test_equals_torch_transformer_encoder_layer_with_a_causal_mask(norm_first, B, T, H, hs, padded):
    C = H * hs
    layer = torch_layer(C, H, norm_first)
    block = copy_weights(layer, Decoder(H, C, hs, 16, dropout=0.0, norm_first=norm_first).double().eval())
    x = torch.randn(B, T, C, dtype=torch.float64)
    pad = padding_mask([T] + [max(1, T - 2 - b) for b in range(B - 1)], T) if padded else None
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # (T, T), True = masked out (PyTorch's polarity)
    expected = layer(x, src_mask=causal, is_causal=True, src_key_padding_mask=None if pad is None else ~pad)
    torch.testing.assert_close(block(x, pad), expected, rtol=1e-10, atol=1e-12)


def test_the_two_norm_placements_differ():
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    post, pre = (copy_weights(torch_layer(8, 2, False), make(nf).double()) for nf in (False, True))
    assert not torch.allclose(post(x), pre(x), atol=1e-3)
    assert make().norm_first is False  # post-LN by default, as in the seed and the original Transformer


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
    with pytest.raises(
        TypeError, match=r"x has dtype torch.float64 but the module's weights are torch.float32"
    ):
        make()(torch.ones(1, 3, 8, dtype=torch.float64))
