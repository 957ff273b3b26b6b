import numpy as np
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
    xs, ys = np.asarray(paths.x), np.asarray(paths.y)
    assert xs.dtype == ys.dtype == np.float32  # compact typed arrays, not lists
    # One polyline per particle: 10 runs of T + 1 = 5 states, each followed by a NaN gap.
    t = out.states.shape[0]
    assert xs.shape == ys.shape == (10 * (t + 1),)
    assert np.isnan(xs).sum() == np.isnan(ys).sum() == 10
    runs = xs.reshape(10, t + 1)
    assert np.isnan(runs[:, -1]).all() and not np.isnan(runs[:, :-1]).any()
    np.testing.assert_allclose(runs[:, :-1], out.states[:, :10, 0].T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ys.reshape(10, t + 1)[:, :-1], out.states[:, :10, 1].T.numpy())
    assert pytest.approx(list(fig.data[-1].x)) == out.states[-1, :10, 0].tolist()
    anim = trajectory_animation(out)
    assert len(anim.frames) == out.states.shape[0]
    assert len(anim.data) == 1 and all(f.traces == (0,) for f in anim.frames)
    data = torch.randn(30, 2)
    anim = trajectory_animation(out, data=data, num_points=20)
    assert [d.name for d in anim.data] == ["data", "states"] and len(anim.data[0].x) == 30
    for f, s in zip(anim.frames, out.states, strict=True):
        assert f.traces == (1,) and len(f.data) == 1  # only the states move; data drawn once
        np.testing.assert_allclose(f.data[0].x, s[:20, 0].numpy())
    # shown first (and in the stored PNG): the samples, not the noise; the slider at its end
    np.testing.assert_allclose(anim.data[1].x, out.states[-1, :20, 0].numpy())
    assert anim.layout.sliders[0].active == len(anim.frames) - 1
    assert anim.layout.updatemenus[0].buttons[0].args[1]["fromcurrent"] is False
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
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "w2 (lower is better)"
    fig = quality_figure(pts, log_y=False, lower_is_better=False, title="t")
    assert (
        fig.layout.yaxis.type == "linear" and fig.layout.yaxis.title.text == "w2 (higher is better)"
    )
    assert quality_figure(pts, lower_is_better=None).layout.yaxis.title.text == "w2"
    assert fig.layout.xaxis.type == "log"
    assert len(points_figure({"a": ref, "b": ref}).data) == 2


def test_density_heatmap_bins_the_points_and_leaves_empty_bins_transparent():
    from ucgm_lab.viz import density_heatmap

    points = np.array([[0.1, 0.1]] * 9 + [[-1.0, 1.5]], dtype=np.float32)
    trace = density_heatmap(points, extent=2.0, bins=4)
    z = np.asarray(trace.z, dtype=float)
    assert trace.type == "heatmap" and z.shape == (4, 4)
    assert np.isnan(z).sum() == 14  # two occupied bins
    assert z[2, 2] == 1.0  # nine points in [0, 1]^2: row = y bin, column = x bin
    assert z[3, 1] == pytest.approx(1 / 3)  # sqrt(1 / 9)
    np.testing.assert_allclose(np.asarray(trace.x, dtype=float), [-1.5, -0.5, 0.5, 1.5])
