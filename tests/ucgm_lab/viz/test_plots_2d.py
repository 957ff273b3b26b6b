import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.evaluation import quality_vs_nfe
from ucgm_lab.metrics import FloorResult
from ucgm_lab.viz import (
    points_figure,
    quality_figure,
    trajectory_animation,
    trajectory_figure,
    x_hat_grid_figure,
)


def net(x, t, y=None):
    return x - 0.5  # a fixed field


def test_trajectory_figures_follow_the_sampler():
    noise = torch.randn(50, 2)
    out = sample(net, noise, "linear", 4)
    fig = trajectory_figure(out, num_paths=10)
    paths = fig.data[0]
    assert len([v for v in paths.x if v is None]) == 10  # one polyline per particle
    assert pytest.approx(list(fig.data[-1].x)) == out.states[-1, :10, 0].tolist()
    anim = trajectory_animation(out)
    assert len(anim.frames) == out.states.shape[0]
    grid = x_hat_grid_figure({"a": out, "b": out}, columns=3)
    assert len(grid.data) == 6
    with pytest.raises(ValueError, match="show"):
        trajectory_figure(out, show="z")


def test_quality_figure_has_one_line_per_label_and_the_floor():
    ref = torch.randn(200, 2)
    pts = quality_vs_nfe(net, "linear", ref, [1, 2, 4], label="k0") + quality_vs_nfe(
        net, "linear", ref, [1, 2, 4], label="k5", kappa=0.5
    )
    assert [p.nfe for p in pts[:3]] == [1, 2, 4] and pts[3].settings == {"kappa": 0.5}
    fig = quality_figure(pts, floor=FloorResult(mean=0.1, std=0.01, values=(0.1,), n=200))
    assert [d.name for d in fig.data] == ["k0", "k5"]
    assert fig.layout.shapes[0].y0 == 0.1
    assert len(points_figure({"a": ref, "b": ref}).data) == 2
