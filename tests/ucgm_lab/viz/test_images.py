import numpy as np
import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.viz.images import (
    image_grid_figure,
    image_table_figure,
    tile_images,
    trajectory_columns,
    x_hat_grid_figure,
)


def test_tile_images_places_every_image_with_gaps():
    x = torch.full((5, 1, 2, 3), -1.0)
    x[4] = 1.0
    tile = tile_images(x, nrow=3, pad=1, pad_value=0.25)
    assert tile.shape == (2 * 3 + 1, 3 * 4 + 1)
    assert tile[0].tolist() == [0.25] * 13  # the gap
    assert np.all(tile[4:6, 9:12] == 0.25)  # the sixth slot is empty
    assert np.all(tile[1:3, 1:4] == 0.0)  # pixel -1 -> 0
    assert np.all(tile[4:6, 5:8] == 1.0)  # image 4 in row 1, column 1
    rgb = tile_images(torch.zeros(4, 3, 2, 2))
    assert rgb.shape == (7, 7, 3) and np.all(rgb[1, 1] == 0.5) and np.all(rgb[0, 0] == 1.0)
    with pytest.raises(ValueError, match="shape"):
        tile_images(torch.zeros(2, 2, 4, 4))


def test_table_and_grid_figures_have_one_panel_per_cell():
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    fig = image_table_figure({"a": {"NFE 1": x, "NFE 2": x}, "b": {"NFE 1": x, "NFE 2": x}}, nrow=3)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[:2]] == ["NFE 1", "NFE 2"]
    assert fig.axes[2].get_ylabel() == "b"
    assert len(image_grid_figure(x, title="t").axes) == 1
    with pytest.raises(ValueError, match="columns"):
        image_table_figure({"a": {"x": x}, "b": {"y": x}})


def test_x_hat_grid_shows_estimates_at_decreasing_times():
    def net(x, t, y=None):
        return x * 0.5

    out = sample(net, torch.randn(3, 1, 8, 8), "linear", 10)
    fig = x_hat_grid_figure({"lambda=0": out, "lambda=1": out}, columns=4, images=(0, 2))
    assert len(fig.axes) == 8
    titles = [ax.get_title() for ax in fig.axes[:4]]
    times = [float(t.split("=")[1]) for t in titles]
    assert times == sorted(times, reverse=True) and times[0] > 0.9
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, tile_images(out.x_hat[0, [0, 2]], nrow=1))
    assert trajectory_columns(10, 4) == [0, 3, 6, 9]
