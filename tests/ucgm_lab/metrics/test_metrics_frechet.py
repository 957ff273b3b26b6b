import numpy as np
import pytest
import scipy.linalg
import torch

from ucgm_lab.metrics import (
    GaussianStats,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
)


def _random_spd(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _reference_fd(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_diagonal_covariances_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.5])
    v1, v2 = np.array([1.0, 4.0, 0.0]), np.array([9.0, 1.0, 2.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    value = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert value == pytest.approx(expected, rel=1e-12)
    by_hand = (1 + 4 + 0.25) + (1 + 9 - 6) + (4 + 1 - 4) + (0 + 2 - 0)
    assert value == pytest.approx(by_hand, rel=1e-12)


def test_one_dimensional_case():
    # FD between N(m1, s1^2) and N(m2, s2^2) is (m1-m2)^2 + (s1-s2)^2
    value = frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[0.25]])
    )
    assert value == pytest.approx(9.0 + 1.5**2, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_full_covariances_against_scipy_sqrtm(seed):
    d = 6
    rng = np.random.default_rng(100 + seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(d, seed), _random_spd(d, seed + 10)
    expected = _reference_fd(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-8)


def test_identical_gaussians_give_zero_and_value_is_nonnegative():
    s = _random_spd(5, 3)
    mu = np.arange(5.0)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-10)
    # rank-deficient covariance: still exact (no eps offset needed)
    v = np.random.default_rng(4).normal(size=(5, 2))
    low_rank = v @ v.T
    assert frechet_distance(mu, low_rank, mu, low_rank) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu, low_rank, mu, s) >= 0.0
    assert frechet_distance(mu, low_rank, mu, s) == pytest.approx(
        _reference_fd(mu, low_rank, mu, s), rel=1e-6
    )


def test_gaussian_stats_matches_manual_estimate():
    x = np.random.default_rng(5).normal(size=(200, 4)) @ np.diag([1.0, 2.0, 0.5, 3.0])
    stats = gaussian_stats(torch.from_numpy(x))
    assert isinstance(stats, GaussianStats)
    mu = x.sum(axis=0) / 200
    centred = x - mu
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, centred.T @ centred / 199, rtol=1e-10)
    assert stats.n == 200
    one_dim = gaussian_stats(np.array([1.0, 2.0, 3.0]))
    assert one_dim.sigma.shape == (1, 1) and one_dim.sigma[0, 0] == pytest.approx(1.0)


def test_frechet_from_stats_and_features():
    rng = np.random.default_rng(6)
    f1 = rng.normal(size=(500, 3))
    f2 = rng.normal(size=(400, 3)) * 2.0 + 1.0
    s1, s2 = gaussian_stats(f1), gaussian_stats(f2)
    expected = _reference_fd(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert frechet_distance_from_stats(s1, s2) == pytest.approx(expected, rel=1e-8)
    torch_value = frechet_distance(
        torch.from_numpy(s1.mu), torch.from_numpy(s1.sigma), s2.mu, s2.sigma
    )
    assert torch_value == pytest.approx(expected, rel=1e-8)


def test_bad_inputs():
    s = np.eye(3)
    mu = np.zeros(3)
    with pytest.raises(ValueError, match=r"sigma1 must have shape \(d, d\) = \(3, 3\)"):
        frechet_distance(mu, np.eye(2), mu, s)
    with pytest.raises(ValueError, match="mu1 and mu2 must have the same shape"):
        frechet_distance(mu, s, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="mu2 must have shape"):
        frechet_distance(mu, s, np.zeros((3, 1)), s)
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(mu, s + np.triu(np.ones((3, 3)), 1), mu, s)
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(mu, s, mu, np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(np.array([np.nan, 0, 0]), s, mu, s)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 3)))


def test_gaussian_stats_names_its_fields_and_prints_no_arrays():
    features = np.random.default_rng(0).normal(size=(300, 64))
    stats = gaussian_stats(features)
    text = repr(stats)
    assert text == "GaussianStats(mu=<array (64,)>, sigma=<array (64, 64)>, n=300)"
    assert ".mu" in gaussian_stats.__doc__ and ".sigma" in gaussian_stats.__doc__
    np.testing.assert_allclose(stats.mu, features.mean(0))
