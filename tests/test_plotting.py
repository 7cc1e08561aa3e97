import matplotlib
import matplotlib.text

matplotlib.use("Agg")

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simple_llm import MultiHeadAttention, plot_attention_heads
from simple_llm.plotting import MAX_WIDTH_IN, MIN_FONT_PT


def heads_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


@pytest.mark.parametrize("H, rows", [(1, 1), (2, 1), (4, 2), (5, 3)])
def test_grid_one_heatmap_per_head_and_one_colour_bar(H, rows):
    weights = torch.softmax(torch.randn(H, 5, 5), dim=-1)
    fig = plot_attention_heads(weights, lang="en")
    assert isinstance(fig, Figure)
    axes = heads_axes(fig)
    assert len(axes) == H and len(fig.axes) == H + 1
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == rows
    assert [ax.get_title() for ax in axes] == [f"Head {h}" for h in range(H)]
    assert fig.get_figwidth() <= MAX_WIDTH_IN  # 600 px at 100 dpi: readable on a phone
    assert plt.get_fignums() == []  # no pyplot state touched


def test_shared_colour_scale_and_labels_ru():
    weights = torch.softmax(torch.randn(3, 4, 4), dim=-1)
    fig = plot_attention_heads(weights)
    images = [ax.images[0] for ax in heads_axes(fig)]
    assert all(im.get_clim() == (0.0, pytest.approx(weights.max().item())) for im in images)
    ax = heads_axes(fig)[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Голова 0", "ключ", "запрос")
    assert fig.axes[-1].get_ylabel() == "вес внимания"
    torch.testing.assert_close(torch.tensor(images[2].get_array()), weights[2])


def test_english_colour_bar_title_and_tokens():
    fig = plot_attention_heads(torch.rand(2, 3, 3), tokens=["a", "b", "c"], lang="en", title="demo")
    ax = heads_axes(fig)[1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert fig.axes[-1].get_ylabel() == "attention weight"
    assert fig.get_suptitle() == "demo"


def test_batch_and_seed_list_inputs_pick_batch_index():
    mha = MultiHeadAttention(2, 8, 4, 8).eval()
    x = torch.randn(3, 4, 8)
    weights = mha.get_attention_weights(x)
    from_list = plot_attention_heads([head.get_attention_weights(x) for head in mha.heads], batch_index=2)
    from_batch = plot_attention_heads(weights, batch_index=2)
    for fig in (from_list, from_batch):
        torch.testing.assert_close(
            torch.tensor(heads_axes(fig)[1].images[0].get_array()), weights[2, 1].detach()
        )


def test_vmax_clips_the_shared_scale_and_marks_the_colour_bar():
    weights = torch.tensor([[[1.0, 0.0], [0.3, 0.7]], [[1.0, 0.0], [0.6, 0.4]]])  # (H, T, T), row 0 = 1.0
    clipped = plot_attention_heads(weights, vmax=0.7)
    full = plot_attention_heads(weights)
    assert all(ax.images[0].get_clim() == (0.0, 0.7) for ax in heads_axes(clipped))
    assert all(ax.images[0].get_clim() == (0.0, 1.0) for ax in heads_axes(full))
    assert heads_axes(clipped)[-1].images[0].colorbar.extend == "max"  # an arrow: weights above 0.7
    assert heads_axes(full)[-1].images[0].colorbar.extend == "neither"
    torch.testing.assert_close(torch.tensor(heads_axes(clipped)[1].images[0].get_array()), weights[1])


def test_figure_renders_every_head_and_label_inside_the_canvas():
    weights = torch.softmax(torch.randn(5, 4, 4), dim=-1)
    fig = plot_attention_heads(weights, tokens="abcd", title="demo")
    agg = FigureCanvasAgg(fig)  # the figure is closed to pyplot: draw it as savefig would
    agg.draw()
    pixels = np.asarray(agg.buffer_rgba())
    width, height = fig.get_size_inches() * fig.dpi
    assert pixels.shape == (round(height), round(width), 4)
    renderer = agg.get_renderer()
    drawn, canvas = fig.get_tightbbox(renderer), fig.bbox  # drawn: in inches, canvas: in pixels
    inside = [drawn.x0 * fig.dpi >= -1, drawn.y0 * fig.dpi >= -1]
    inside += [drawn.x1 * fig.dpi <= canvas.x1 + 1, drawn.y1 * fig.dpi <= canvas.y1 + 1]
    assert all(inside), f"something is drawn outside the figure: {drawn} vs {canvas}"
    boxes = [ax.get_window_extent(renderer) for ax in heads_axes(fig)]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), "heads overlap"
    for h, ax in enumerate(heads_axes(fig)):
        # The centre pixel of every cell shows the colour map's colour of that weight.
        image = ax.images[0]
        for i, j in itertools.product(range(4), range(4)):
            x, y = ax.transData.transform((j, i))  # imshow: column j, row i; pixels from the bottom
            shown = pixels[round(height - y), round(x), :3].astype(int)
            expected = np.round(np.array(image.cmap(image.norm(weights[h, i, j].item()))[:3]) * 255)
            assert np.abs(shown - expected).max() <= 2, f"head {h}, cell ({i}, {j}): {shown} != {expected}"


@pytest.mark.parametrize(
    "weights, kwargs, error, match",
    [
        (torch.rand(2, 3, 3), {"lang": "de"}, ValueError, "'de'"),
        (torch.rand(2, 3, 3), {"tokens": ["a", "b"]}, ValueError, "2 labels, expected T=3"),
        (torch.rand(3, 3), {}, ValueError, r"\(3, 3\)"),
        (torch.rand(2, 3, 4), {}, ValueError, r"\(2, 3, 4\)"),
        (torch.rand(2, 2, 3, 3), {"batch_index": 2}, ValueError, "batch_index=2"),
        (torch.rand(2, 2, 3, 3), {"batch_index": 0.0}, TypeError, r"0\.0"),
        ([torch.rand(1, 3, 3), torch.rand(1, 4, 4)], {}, ValueError, r"\(1, 4, 4\)"),
        ([], {}, TypeError, "non-empty"),
        ("weights", {}, TypeError, "str"),
        (torch.rand(2, 3, 3), {"vmax": 0.0}, ValueError, r"vmax.*0\.0"),
        (torch.rand(2, 3, 3), {"vmax": float("nan")}, ValueError, "nan"),
        (torch.rand(2, 3, 3), {"vmax": "0.5"}, TypeError, "'0.5'"),
        (torch.rand(0, 3, 3), {}, ValueError, r"at least one head and one token, got shape \(0, 3, 3\)"),
        (torch.rand(2, 0, 0), {}, ValueError, r"got shape \(2, 0, 0\)"),
        (torch.rand(1, 2, 0, 0), {}, ValueError, r"got shape \(2, 0, 0\)"),
        ([torch.rand(1, 0, 0)], {}, ValueError, r"got shape \(1, 0, 0\)"),
        (torch.full((1, 2, 2), float("nan")), {}, ValueError, "NaN"),
        (torch.ones(1, 2, 2, dtype=torch.long), {}, TypeError, "torch.int64"),
        (torch.rand(2, 3, 3), {"tokens": 3}, TypeError, "got 3"),
        (
            torch.rand(2, 3, 3),
            {"batch_index": 1},
            ValueError,
            r"batch_index=1 needs \(B, H, T, T\).*\(2, 3, 3\)",
        ),
        (torch.rand(2, 3, 3), {"batch_index": "0"}, TypeError, "batch_index must be an int, got '0'"),
    ],
)
def test_bad_input(weights, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_attention_heads(weights, **kwargs)


def test_no_text_smaller_than_the_phone_minimum():
    fig = plot_attention_heads(torch.rand(4, 6, 6), tokens=list("abcdef"), lang="en", title="t")
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert texts
    assert min(t.get_fontsize() for t in texts) >= MIN_FONT_PT
