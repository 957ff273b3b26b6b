import numpy as np
import pytest
import torch

from ucgm_lab.widgets.images import KappaRhoExplorer, cache_trajectories


class Net(torch.nn.Module):
    """A class-conditional stand-in: pulls towards a class-dependent image."""

    num_classes = null_class = 10

    def forward(self, x, t, y=None):
        target = (y.float() / 5 - 1)[:, None, None, None].expand_as(x) if y is not None else 0 * x
        return x - target  # ~ z - x for the linear transport when x is the target


@pytest.fixture(scope="module")
def cache():
    y = torch.arange(10).repeat(2)
    return cache_trajectories(Net(), "linear", y, kappas=(0.0, 0.5), rhos=(0.0, 1.0), steps=4)


def test_cache_holds_every_pair_from_the_same_noise(cache):
    assert set(cache.outputs) == {(0.0, 0.0), (0.0, 1.0), (0.5, 0.0), (0.5, 1.0)}
    assert cache.nfe == 4 and cache.get(0.5, 1.0).x_hat.shape == (4, 20, 1, 8, 8)
    torch.testing.assert_close(cache.get(0.0, 0.0).states[0], cache.get(0.5, 1.0).states[0])
    with pytest.raises(KeyError, match="not cached"):
        cache.get(0.25, 0.0)


def test_update_changes_the_figure_data(cache):
    explorer = KappaRhoExplorer(cache, num_samples=20, trajectory_images=(0, 1))
    before = np.array(explorer.samples_image.get_array())
    traj_before = np.array(explorer.trajectory_image.get_array())
    explorer.update(0.0, 1.0)
    assert explorer.rho == 1.0 and "rho=1" in explorer._ax_samples.get_title()
    assert not np.allclose(before, explorer.samples_image.get_array())
    assert not np.allclose(traj_before, explorer.trajectory_image.get_array())
    assert explorer.trajectory_image.get_array().shape[1] == 4 * 9 + 1  # one column per step


def test_widget_sliders_drive_the_update(cache):
    explorer = KappaRhoExplorer(cache, num_samples=10)
    box = explorer.widget()
    kappa, rho = box.children[0].children
    assert list(kappa.options) == [0.0, 0.5] and list(rho.options) == [0.0, 1.0]
    before = np.array(explorer.samples_image.get_array())
    kappa.value = 0.5
    assert explorer.kappa == 0.5
    rho.value = 1.0
    assert explorer.rho == 1.0
    assert not np.allclose(before, explorer.samples_image.get_array())


def test_several_caches_get_a_model_drop_down(cache):
    other = cache_trajectories(
        Net(), "linear", torch.arange(10).repeat(2), kappas=(0.0, 0.5), rhos=(0.0, 1.0), steps=2
    )
    explorer = KappaRhoExplorer({"four steps": cache, "two steps": other}, num_samples=10)
    box = explorer.widget()
    model, kappa, rho = box.children[0].children
    assert list(model.options) == ["four steps", "two steps"]
    width_before = explorer.trajectory_image.get_array().shape[1]
    model.value = "two steps"
    assert (
        explorer.name == "two steps"
        and explorer.trajectory_image.get_array().shape[1] < width_before
    )
    assert "two steps: NFE 2" in explorer._ax_samples.get_title()
    with pytest.raises(KeyError, match="No cache"):
        explorer.update(0.0, 0.0, "nope")
    bad = cache_trajectories(Net(), "linear", torch.arange(10), kappas=(0.0,), rhos=(0.0,), steps=2)
    with pytest.raises(ValueError, match="grid"):
        KappaRhoExplorer({"a": cache, "b": bad})


def test_scores_are_cached_with_a_metric_and_tabulated():
    from ucgm_lab.metrics.digits import digits_frechet

    metric = digits_frechet()
    cache = cache_trajectories(
        Net(), "linear", metric.test_labels, kappas=(0.0, 0.5), rhos=(0.0,), steps=2, metric=metric
    )
    assert set(cache.scores) == {(0.0, 0.0), (0.5, 0.0)}
    assert cache.scores[(0.0, 0.0)] == metric.distance(cache.get(0.0, 0.0).sample)
    table = cache.score_table()
    assert table.splitlines()[0] == "| kappa | rho=0 |" and len(table.splitlines()) == 4
    explorer = KappaRhoExplorer(cache)
    assert "digits FD" in explorer._ax_samples.get_title()
