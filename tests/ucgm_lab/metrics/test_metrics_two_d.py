import numpy as np
import pytest
import scipy.stats
import torch

from ucgm_lab.metrics import (
    FloorResult,
    energy_distance,
    evaluate_2d,
    metric_floor,
    mmd_rbf,
    sliced_wasserstein2,
    wasserstein2,
)


def _cloud(n, seed=0, d=2):
    return np.random.default_rng(seed).standard_normal((n, d))


def _gaussian_sampler(n, seed):
    return _cloud(n, seed)


@pytest.mark.parametrize("metric", [wasserstein2, sliced_wasserstein2, energy_distance, mmd_rbf])
def test_identical_sets_give_zero(metric):
    a = _cloud(200)
    assert metric(a, a.copy()) == pytest.approx(0.0, abs=1e-10)
    # a permutation is the same empirical distribution
    assert metric(a, a[::-1]) == pytest.approx(0.0, abs=1e-10)


def test_translation_gives_w2_equal_to_shift_norm():
    a = _cloud(300, seed=1)
    v = np.array([0.3, -0.4])
    b = a + v
    assert wasserstein2(a, b) == pytest.approx(0.5, abs=1e-9)
    assert wasserstein2(b, a) == pytest.approx(0.5, abs=1e-9)
    assert energy_distance(a, b) > 0.0
    assert mmd_rbf(a, b) > 0.0
    # each 1-D projection of a translation is a shift by theta.v, so the sliced W2 is
    # sqrt(mean (theta.v)^2) ~ |v| / sqrt(2) for random directions in 2-D.
    sw = sliced_wasserstein2(a, b, n_projections=2000)
    assert sw <= 0.5 + 1e-9
    assert sw == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_w2_in_one_dimension_equals_sorted_matching():
    rng = np.random.default_rng(2)
    a = rng.normal(size=150)
    b = rng.exponential(size=150)
    expected = np.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))
    assert wasserstein2(a, b) == pytest.approx(expected, rel=1e-9)
    assert wasserstein2(a[:, None], b[:, None]) == pytest.approx(expected, rel=1e-9)


def test_w2_with_unequal_sizes():
    a = _cloud(60, seed=3)
    # the same empirical distribution with every point duplicated
    assert wasserstein2(a, np.concatenate([a, a])) == pytest.approx(0.0, abs=1e-9)
    # a single point: all mass moves to it
    p = np.array([[1.0, 2.0]])
    expected = np.sqrt(np.mean(np.sum((a - p) ** 2, axis=1)))
    assert wasserstein2(a, p) == pytest.approx(expected, rel=1e-9)


def test_energy_distance_matches_direct_numpy():
    a = _cloud(120, seed=4)
    b = _cloud(90, seed=5) * 1.5 + 0.2

    def mean_dist(x, y):
        return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1).mean()

    expected = 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
    assert energy_distance(a, b) == pytest.approx(expected, rel=1e-10)
    assert energy_distance(b, a) == pytest.approx(expected, rel=1e-10)


def test_energy_distance_is_square_of_scipy_in_one_dimension():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=80), rng.normal(loc=0.5, size=70)
    assert energy_distance(a, b) == pytest.approx(scipy.stats.energy_distance(a, b) ** 2, rel=1e-9)


def test_energy_distance_blocks_cover_all_rows():
    # more rows than one computation block (1024)
    a = _cloud(1100, seed=7)
    b = _cloud(50, seed=8) + 1.0
    dist_ab = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).mean()
    dist_bb = np.sqrt(((b[:, None, :] - b[None, :, :]) ** 2).sum(-1)).mean()
    dist_aa = (
        sum(
            np.sqrt(((a[i : i + 100, None, :] - a[None, :, :]) ** 2).sum(-1)).sum()
            for i in range(0, 1100, 100)
        )
        / 1100**2
    )
    assert energy_distance(a, b) == pytest.approx(2 * dist_ab - dist_aa - dist_bb, rel=1e-10)


def test_mmd_matches_direct_numpy():
    a = _cloud(100, seed=9)
    b = _cloud(80, seed=10) + 0.3
    widths = (0.5, 2.0)

    def k(x, y):
        sq = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        return np.mean([np.exp(-sq / (2 * h * h)) for h in widths], axis=0).mean()

    expected = k(a, a) + k(b, b) - 2 * k(a, b)
    assert mmd_rbf(a, b, bandwidths=widths) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="bandwidths"):
        mmd_rbf(a, b, bandwidths=(1.0, 0.0))


def test_torch_and_numpy_inputs_agree():
    a, b = _cloud(100, seed=11), _cloud(100, seed=12)
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    for metric in (wasserstein2, sliced_wasserstein2, energy_distance):
        assert metric(ta, tb) == pytest.approx(metric(a.astype(np.float32), b), rel=1e-6)
        assert isinstance(metric(ta, tb), float)


def test_sliced_is_deterministic_per_seed():
    a, b = _cloud(200, seed=13), _cloud(200, seed=14)
    assert sliced_wasserstein2(a, b, seed=1) == sliced_wasserstein2(a, b, seed=1)
    assert sliced_wasserstein2(a, b, seed=1) != sliced_wasserstein2(a, b, seed=2)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein2(a, b, n_projections=0)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "same dimension"),
        (np.zeros((0, 2)), np.zeros((5, 2)), "at least one point"),
        (np.zeros((5, 2, 2)), np.zeros((5, 2)), r"shape \(n, d\)"),
        (np.array([[np.nan, 0.0]]), np.zeros((5, 2)), "NaN"),
    ],
)
def test_bad_point_clouds(a, b, match):
    for metric in (wasserstein2, sliced_wasserstein2, energy_distance, mmd_rbf):
        with pytest.raises(ValueError, match=match):
            metric(a, b)


def test_floor_uses_independent_seeds_and_reports_mean_std():
    seeds = []

    def sampler(n, seed):
        seeds.append(seed)
        return _cloud(n, seed)

    result = metric_floor(energy_distance, sampler, n=100, repeats=3, seed=10)
    assert isinstance(result, FloorResult)
    assert seeds == [10, 11, 12, 13, 14, 15]
    expected = [energy_distance(_cloud(100, 10 + 2 * r), _cloud(100, 11 + 2 * r)) for r in range(3)]
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected))
    assert result.std == pytest.approx(np.std(expected, ddof=1))
    assert result.n == 100
    single = metric_floor("energy", _gaussian_sampler, n=50, repeats=1)
    assert single.std == 0.0 and len(single.values) == 1


def test_floor_is_zero_for_a_sampler_that_ignores_the_seed():
    fixed = _cloud(80, seed=0)
    assert metric_floor("w2", lambda n, seed: fixed[:n], n=80).mean == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize(
    ("metric", "small", "large"),
    [("w2", 100, 800), ("sliced_w2", 100, 1600), ("energy", 100, 1600), ("mmd", 100, 800)],
)
def test_floors_are_positive_and_shrink_with_n(metric, small, large):
    lo = metric_floor(metric, _gaussian_sampler, n=small, repeats=3)
    hi = metric_floor(metric, _gaussian_sampler, n=large, repeats=3)
    assert lo.mean > 0 and hi.mean > 0
    assert hi.mean < lo.mean / 1.5


def test_floor_argument_errors():
    with pytest.raises(ValueError, match="unknown metric 'fid'.*w2, sliced_w2, energy, mmd"):
        metric_floor("fid", _gaussian_sampler, n=10)
    with pytest.raises(ValueError, match="n must be"):
        metric_floor("w2", _gaussian_sampler, n=0)
    with pytest.raises(ValueError, match="repeats must be"):
        metric_floor("w2", _gaussian_sampler, n=10, repeats=0)


def test_evaluate_2d_matches_individual_metrics():
    a, b = torch.randn(150, 2), torch.randn(120, 2) + 0.5
    result = evaluate_2d(a, b)
    assert list(result) == ["w2", "sliced_w2", "energy"]
    assert result["w2"] == pytest.approx(wasserstein2(a, b), rel=1e-12)
    assert result["sliced_w2"] == pytest.approx(sliced_wasserstein2(a, b), rel=1e-12)
    assert result["energy"] == pytest.approx(energy_distance(a, b), rel=1e-12)
    assert evaluate_2d(a, b, metrics=("mmd",)) == {"mmd": pytest.approx(mmd_rbf(a, b))}
    assert list(evaluate_2d(a, b, metrics="energy")) == ["energy"]
    with pytest.raises(ValueError, match=r"unknown metrics \['w1'\]; known"):
        evaluate_2d(a, b, metrics=("w2", "w1"))
