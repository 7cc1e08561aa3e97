import pytest
import torch
import torch.nn as nn

from simple_llm import FeedForward


def affine_fit_residual(f, C):
    """Relative residual of the best affine fit y = W x + b to f over random inputs."""
    x = torch.randn(400, C, dtype=torch.float64)
    y = f(x.view(1, 400, C)).view(400, C)
    design = torch.cat([x, torch.ones(400, 1, dtype=torch.float64)], dim=1)  # (N, C+1)
    solution = torch.linalg.lstsq(design, y).solution
    return ((design @ solution - y).norm() / y.norm()).item()


@pytest.mark.parametrize("C", [1, 5, 16])
def test_equals_linear_relu_linear_with_hidden_size_4c(C):
    reference = nn.Sequential(nn.Linear(C, 4 * C), nn.ReLU(), nn.Linear(4 * C, C)).double()
    ff = FeedForward(C, dropout=0.0).double().eval()
    # Loading fails unless our layers have the reference's shapes: C -> 4C -> C.
    ff.load_state_dict(dict(zip(ff.state_dict(), reference.state_dict().values())))
    x = torch.randn(2, 5, C, dtype=torch.float64)
    torch.testing.assert_close(ff(x), reference(x), rtol=1e-12, atol=1e-12)
    assert sum(p.numel() for p in ff.parameters()) == 8 * C * C + 5 * C


def test_without_activation_two_linears_collapse_into_one():
    ff = FeedForward(8, dropout=0.0).double().eval()
    ff.activation = nn.Identity()
    W = ff.down.weight @ ff.up.weight  # W2 W1
    b = ff.down.weight @ ff.up.bias + ff.down.bias  # W2 b1 + b2
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(ff(x), x @ W.T + b, rtol=1e-12, atol=1e-12)
    assert affine_fit_residual(ff, 8) < 1e-12


def test_with_relu_it_is_not_one_linear_layer():
    ff = FeedForward(8, dropout=0.0).double().eval()
    assert affine_fit_residual(ff, 8) > 1e-2


def test_dropout_is_a_no_op_in_eval():
    ff = FeedForward(8, dropout=0.5).eval()
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(ff(x), ff.down(ff.activation(ff.up(x))), rtol=0, atol=0)
    ff.train()
    assert not torch.equal(ff(x), ff(x))


def test_position_wise():
    ff = FeedForward(8).eval()
    x = torch.randn(1, 4, 8)
    torch.testing.assert_close(ff(x)[:, 2], ff(x[:, 2:3])[:, 0])


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0,), ValueError, "emb_size must be a positive int, got 0"),
        ((8.0,), TypeError, r"8\.0"),
        ((8, 1.5), ValueError, r"1\.5"),
        ((8, None), TypeError, "None"),
    ],
)
def test_bad_constructor_arguments(args, error, match):
    with pytest.raises(error, match=match):
        FeedForward(*args)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (1.0, TypeError, "float"),
        (torch.ones(1, 2, 8, dtype=torch.long), TypeError, "int64"),
        (torch.ones(2, 8), ValueError, r"\(2, 8\)"),
        (torch.ones(1, 2, 4), ValueError, r"C=8"),
        (
            torch.ones(1, 2, 8, dtype=torch.float64),
            TypeError,
            r"torch.float64 .* torch.float32: .*module\.double\(\)",
        ),
    ],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        FeedForward(8)(x)
