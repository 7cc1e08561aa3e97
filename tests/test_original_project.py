"""The original project's users: its import paths and its saved state_dicts work here.

The fixture classes below reproduce the key layout and the forward pass of the original modules
(github.com/pese-git/simple-llm, simple_llm/transformer/*.py): per-head ``_q``/``_k``/``_v``
linears with a ``_tril_mask`` buffer, ``_heads`` + ``_layer`` + ``_dropout`` in multi-head
attention (whose ``mask`` argument was ignored), ``_layer1``/``_relu``/``_layer2``/``_dropout`` (or
an earlier ``net`` Sequential) in the feed-forward block, and a post-LN decoder
``_norm2(_ff(h) + h)`` with ``h = _norm1(_heads(x) + x)``.
"""

import importlib
import io
import math
import re

import pytest
import torch
import torch.nn as nn

import simple_llm
from simple_llm import Decoder, FeedForward, HeadAttention, MultiHeadAttention

B, T, C, H, hs, MAX_T = 2, 7, 12, 3, 4, 16


class OriginalHead(nn.Module):
    def __init__(self, emb_size, head_size, max_seq_len):
        super().__init__()
        self._k = nn.Linear(emb_size, head_size)
        self._q = nn.Linear(emb_size, head_size)
        self._v = nn.Linear(emb_size, head_size)
        self.register_buffer("_tril_mask", torch.ones(max_seq_len, max_seq_len).tril().bool())

    def forward(self, x):
        t = x.size(1)
        scores = self._q(x) @ self._k(x).transpose(-2, -1) / math.sqrt(self._q.out_features)  # (B, T, T)
        scores = scores.masked_fill(~self._tril_mask[:t, :t], float("-inf"))
        return scores.softmax(dim=-1) @ self._v(x)  # (B, T, hs)


class OriginalMultiHead(nn.Module):
    def __init__(self, num_heads, emb_size, head_size, max_seq_len, dropout=0.1):
        super().__init__()
        self._heads = nn.ModuleList(OriginalHead(emb_size, head_size, max_seq_len) for _ in range(num_heads))
        self._layer = nn.Linear(num_heads * head_size, emb_size)
        self._dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None):  # the original accepted a mask and ignored it
        return self._dropout(self._layer(torch.cat([head(x) for head in self._heads], dim=-1)))


class OriginalFeedForward(nn.Module):
    def __init__(self, emb_size, dropout=0.1):
        super().__init__()
        self._layer1 = nn.Linear(emb_size, 4 * emb_size)
        self._relu = nn.ReLU()
        self._layer2 = nn.Linear(4 * emb_size, emb_size)
        self._dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.dtype != self._layer1.weight.dtype:  # the original cast its weights to the input's dtype
            self._layer1.to(x.dtype)
            self._layer2.to(x.dtype)
        return self._dropout(self._layer2(self._relu(self._layer1(x))))


class OriginalFeedForwardSequential(nn.Module):
    """The earlier version of the original FeedForward: one ``net`` Sequential."""

    def __init__(self, emb_size, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(emb_size, 4 * emb_size),
            nn.ReLU(),
            nn.Linear(4 * emb_size, emb_size),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class OriginalDecoder(nn.Module):
    def __init__(self, num_heads, emb_size, head_size, max_seq_len, dropout=0.1):
        super().__init__()
        self._heads = OriginalMultiHead(num_heads, emb_size, head_size, max_seq_len, dropout)
        self._ff = OriginalFeedForward(emb_size, dropout)
        self._norm1 = nn.LayerNorm(emb_size)
        self._norm2 = nn.LayerNorm(emb_size)

    def forward(self, x, mask=None):
        h = self._norm1(self._heads(x, mask) + x)
        return self._norm2(self._ff(h) + h)


def randomise_norms(module):
    """LayerNorm starts at weight 1, bias 0: give it other values so that a lost key shows."""
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return module


def saved_and_loaded(module):
    """``module.state_dict()`` after a trip through ``torch.save`` and ``torch.load``."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


CASES = {
    "head": (lambda: OriginalHead(C, hs, MAX_T), lambda: HeadAttention(C, hs, MAX_T)),
    "multi_head": (
        lambda: OriginalMultiHead(H, C, hs, MAX_T),
        lambda: MultiHeadAttention(H, C, hs, MAX_T),
    ),
    "feed_forward": (lambda: OriginalFeedForward(C), lambda: FeedForward(C)),
    "feed_forward_sequential": (lambda: OriginalFeedForwardSequential(C), lambda: FeedForward(C)),
    "decoder": (lambda: OriginalDecoder(H, C, hs, MAX_T), lambda: Decoder(H, C, hs, MAX_T)),
}

EXPECTED_KEYS = {
    "head": {"_q.weight", "_k.bias", "_tril_mask"},
    "multi_head": {"_heads.0._q.weight", "_heads.2._v.bias", "_heads.0._tril_mask", "_layer.weight"},
    "feed_forward": {"_layer1.weight", "_layer2.bias"},
    "feed_forward_sequential": {"net.0.weight", "net.2.bias"},
    "decoder": {"_heads._heads.1._k.weight", "_heads._layer.bias", "_ff._layer1.weight", "_norm1.weight"},
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_original_state_dict_loads_and_gives_the_same_output(name, dtype):
    make_original, make_ours = CASES[name]
    torch.manual_seed(0)
    original = randomise_norms(make_original()).to(dtype).eval()
    state = saved_and_loaded(original)
    assert EXPECTED_KEYS[name] <= set(state), sorted(state)
    ours = make_ours().to(dtype).eval()
    result = ours.load_state_dict(state)  # strict: every key used, none missing
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    x = torch.randn(B, T, C, dtype=dtype)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(ours(x), original(x), **tol)
    assert not torch.equal(ours(x), make_ours().to(dtype).eval()(x))  # the weights really moved


def test_per_head_weights_land_in_their_heads():
    torch.manual_seed(0)
    original = OriginalMultiHead(H, C, hs, MAX_T).double().eval()
    ours = MultiHeadAttention(H, C, hs, MAX_T).double().eval()
    ours.load_state_dict(original.state_dict())
    x = torch.randn(B, T, C, dtype=torch.float64)
    for head, original_head in zip(ours.heads, original._heads):
        torch.testing.assert_close(head(x), original_head(x))
        assert torch.equal(head.weights[0], original_head._q.weight)
        assert torch.equal(head.biases[2], original_head._v.bias)


def test_nested_original_decoders_load_into_a_container_of_ours():
    torch.manual_seed(0)
    original = nn.Sequential(*[randomise_norms(OriginalDecoder(H, C, hs, MAX_T)) for _ in range(2)]).eval()
    ours = nn.Sequential(*[Decoder(H, C, hs, MAX_T) for _ in range(2)]).eval()
    ours.load_state_dict(original.state_dict())
    x = torch.randn(B, T, C)
    torch.testing.assert_close(ours(x), original(x))


def test_our_own_state_dict_still_round_trips():
    torch.manual_seed(0)
    block = Decoder(H, C, hs, MAX_T, norm_first=True)
    again = Decoder(H, C, hs, MAX_T, norm_first=True)
    again.load_state_dict(block.state_dict())
    for (key, a), (key_again, b) in zip(block.state_dict().items(), again.state_dict().items()):
        assert key == key_again and torch.equal(a, b)


def test_more_heads_in_the_checkpoint_is_an_unexpected_key():
    state = OriginalMultiHead(4, C, hs, MAX_T).state_dict()
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*_heads\.3\._q\.weight"):
        MultiHeadAttention(3, C, hs, MAX_T).load_state_dict(state)


def test_incomplete_checkpoint_is_reported_not_half_loaded():
    state = OriginalMultiHead(H, C, hs, MAX_T).state_dict()
    del state["_heads.1._v.bias"]
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*qkv\.weight.*qkv\.bias"):
        MultiHeadAttention(H, C, hs, MAX_T).load_state_dict(state)


def test_other_head_size_is_a_size_mismatch():
    state = OriginalMultiHead(H, C, hs + 1, MAX_T).state_dict()
    with pytest.raises(
        RuntimeError, match=r"size mismatch for _heads\.0\._q\.weight: .*\[5, 12\].*\[4, 12\]"
    ):
        MultiHeadAttention(H, C, hs, MAX_T).load_state_dict(state)


@pytest.mark.parametrize(
    "key, shape",
    [("_heads.1._k.weight", (hs, C + 1)), ("_heads.2._v.bias", (hs, 1)), ("_heads.0._q.weight", (hs,))],
)
def test_one_mis_shaped_per_head_tensor_is_a_size_mismatch_naming_it(key, shape):
    state = OriginalMultiHead(H, C, hs, MAX_T).state_dict()
    state[key] = torch.zeros(shape)
    expected = (hs,) if key.endswith("bias") else (hs, C)
    message = rf"size mismatch for {re.escape(key)}: .*{re.escape(str(torch.Size(shape)))}.*{re.escape(str(torch.Size(expected)))}"
    with pytest.raises(RuntimeError, match=message):
        MultiHeadAttention(H, C, hs, MAX_T).load_state_dict(state)


@pytest.mark.parametrize("name", CASES)
def test_both_layouts_in_one_state_dict_are_refused(name):
    make_original, make_ours = CASES[name]
    torch.manual_seed(0)
    ours = make_ours()
    mixed = make_original().state_dict() | ours.state_dict()  # the original's keys and ours
    with pytest.raises(RuntimeError, match="both the original project's layout .* and this package's"):
        make_ours().load_state_dict(mixed)


def test_feed_forward_does_not_cast_its_weights_to_the_input():
    """The original cast its weights to the input's dtype; ours raises and module.double() converts."""
    torch.manual_seed(0)
    original = OriginalFeedForward(C).eval()
    ours = FeedForward(C).eval()
    ours.load_state_dict(original.state_dict())
    x = torch.randn(B, T, C, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 .*module\.double\(\)"):
        ours(x)
    assert ours.up.weight.dtype == torch.float32  # nothing changed behind the caller's back
    torch.testing.assert_close(ours.double()(x), original(x))
    assert original._layer1.weight.dtype == torch.float64  # the original changed itself


@pytest.mark.parametrize(
    "module, name",
    [
        ("head_attention", "HeadAttention"),
        ("multi_head_attention", "MultiHeadAttention"),
        ("feed_forward", "FeedForward"),
        ("decoder", "Decoder"),
    ],
)
def test_original_import_paths_give_our_classes(module, name):
    transformer = importlib.import_module("simple_llm.transformer")
    assert getattr(importlib.import_module(f"simple_llm.transformer.{module}"), name) is getattr(
        simple_llm, name
    )
    assert getattr(transformer, name) is getattr(simple_llm, name)


def test_the_original_documented_import_line_runs():
    from simple_llm.transformer import MultiHeadAttention as Imported

    mha = Imported(num_heads=8, emb_size=512, head_size=64, max_seq_len=1024)
    assert mha(torch.randn(2, 50, 512)).shape == (2, 50, 512)


def test_the_modules_said_to_load_original_checkpoints_are_those_with_a_load_hook():
    """simple_llm.transformer's docstring and the API page name the same modules: those with a hook."""
    import re
    from pathlib import Path

    transformer = importlib.import_module("simple_llm.transformer")
    hooked = set()
    for name, make in [
        ("HeadAttention", lambda: HeadAttention(C, hs, MAX_T)),
        ("MultiHeadAttention", lambda: MultiHeadAttention(H, C, hs, MAX_T)),
        ("FeedForward", lambda: FeedForward(C)),
        ("Decoder", lambda: Decoder(H, C, hs, MAX_T)),
        ("GPT", lambda: simple_llm.GPT(10, MAX_T, C, H, hs, 1)),
    ]:
        if make()._load_state_dict_pre_hooks:
            hooked.add(name)
    assert hooked | {"GPT"} == set(transformer.__all__)
    assert hooked == {"HeadAttention", "MultiHeadAttention", "FeedForward", "Decoder"}
    said = re.search(r"saved from the original (.*?) loads", transformer.__doc__, re.S).group(1)
    assert set(re.findall(r"``(\w+)``", said)) == hooked
    page = (Path(__file__).parents[1] / "docs" / "api.en.md").read_text(encoding="utf-8")
    said = re.search(r"saved from the original (.*?) loads", page, re.S).group(1)
    assert set(re.findall(r"`([A-Z]\w+)`", said)) == hooked  # class names, not the key names
