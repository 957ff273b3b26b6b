import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from toy_data.gaussian_mixture import GaussianMixture2D, default_gaussian_mixture

F64 = torch.float64


@pytest.fixture
def gm() -> GaussianMixture2D:
    return GaussianMixture2D(
        means=torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]]),
        covariances=torch.tensor(
            [[[0.2, 0.05], [0.05, 0.1]], [[0.05, 0.0], [0.0, 0.3]], [[0.1, -0.04], [-0.04, 0.1]]]
        ),
        weights=torch.tensor([2.0, 1.0, 1.0]),  # unnormalised on purpose
    )


def _moments(gm: GaussianMixture2D) -> tuple[torch.Tensor, torch.Tensor]:
    w, m, S = gm.weights, gm.means, gm.covariances
    mean = (w[:, None] * m).sum(0)
    second = (w[:, None, None] * (S + m[:, :, None] * m[:, None, :])).sum(0)
    return mean, second - mean[:, None] * mean[None, :]


# --- construction --------------------------------------------------------------------


def test_weights_normalised_and_default_uniform(gm):
    assert torch.allclose(gm.weights, torch.tensor([0.5, 0.25, 0.25], dtype=F64))
    u = GaussianMixture2D(torch.zeros(4, 2), torch.eye(2).expand(4, 2, 2))
    assert torch.allclose(u.weights, torch.full((4,), 0.25, dtype=F64))
    assert u.num_components == 4


def test_isotropic_constructor():
    g = GaussianMixture2D.isotropic(torch.zeros(2, 2), torch.tensor([0.5, 2.0]))
    expected = torch.stack([0.25 * torch.eye(2), 4.0 * torch.eye(2)]).to(F64)
    assert torch.allclose(g.covariances, expected)
    g2 = GaussianMixture2D.isotropic(torch.zeros(3, 2), 0.1)
    assert torch.allclose(g2.covariances, 0.01 * torch.eye(2, dtype=F64).expand(3, 2, 2))


@pytest.mark.parametrize(
    "means, covs, weights, match",
    [
        (torch.zeros(3), torch.eye(2).expand(3, 2, 2), None, r"means must have shape \(K, 2\)"),
        (torch.zeros(3, 2), torch.eye(2).expand(2, 2, 2), None, "covariances must have shape"),
        (torch.zeros(1, 2), torch.tensor([[[1.0, 0.5], [0.0, 1.0]]]), None, "symmetric"),
        (torch.zeros(1, 2), torch.tensor([[[1.0, 2.0], [2.0, 1.0]]]), None, "positive definite"),
        (torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), torch.tensor([1.0, -1.0]), "non-neg"),
        (torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), torch.tensor([1.0]), "weights must"),
    ],
)
def test_construction_errors(means, covs, weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture2D(means, covs, weights)


# --- density and score ---------------------------------------------------------------


def test_log_prob_matches_scipy(gm):
    x = torch.randn(50, 2, dtype=F64)
    ref = np.log(
        sum(
            float(w) * multivariate_normal(m.numpy(), S.numpy()).pdf(x.numpy())
            for w, m, S in zip(gm.weights, gm.means, gm.covariances, strict=True)
        )
    )
    assert np.allclose(gm.log_prob(x).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_log_prob_integrates_to_one(gm):
    h = 0.02
    grid = torch.arange(-4.0, 4.0 + h / 2, h, dtype=F64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    density = gm.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp()
    assert abs(float(density.sum()) * h * h - 1.0) < 1e-3


def test_log_prob_dtype_and_shape(gm):
    x = torch.randn(7, 2)
    out = gm.log_prob(x)
    assert out.shape == (7,) and out.dtype == torch.float32
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        gm.log_prob(torch.randn(7, 3))
    with pytest.raises(ValueError, match="floating-point"):
        gm.log_prob(torch.zeros(7, 2, dtype=torch.int64))


def test_score_matches_autograd(gm):
    x = (2 * torch.randn(64, 2, dtype=F64)).requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.log_prob(x).sum(), x)
    assert torch.allclose(gm.score(x.detach()), grad, rtol=1e-10, atol=1e-10)


def test_responsibilities_sum_to_one(gm):
    r = gm.responsibilities(torch.randn(20, 2, dtype=F64))
    assert r.shape == (20, 3)
    assert torch.allclose(r.sum(1), torch.ones(20, dtype=F64))


# --- sampling --------------------------------------------------------------------------


def test_sample_moments_and_labels(gm):
    s = gm.sample(40000, generator=torch.Generator().manual_seed(0))
    assert s.points.shape == (40000, 2) and s.points.dtype == torch.float32
    assert s.labels.dtype == torch.int64
    freq = torch.bincount(s.labels, minlength=3).double() / 40000
    assert torch.allclose(freq, gm.weights, atol=0.015)
    mean, cov = _moments(gm)
    p = s.points.double()
    assert torch.allclose(p.mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(p.T), cov, atol=0.03)
    for k in range(3):  # per-component covariance, incl. the correlated ones
        pk = p[s.labels == k]
        assert torch.allclose(torch.cov(pk.T), gm.covariances[k], atol=0.02)


def test_sample_seeded(gm):
    a = gm.sample(20, generator=torch.Generator().manual_seed(3))
    b = gm.sample(20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.points, b.points) and torch.equal(a.labels, b.labels)
    with pytest.raises(ValueError, match="positive int"):
        gm.sample(0)


def test_sample_from_components_validates_labels(gm):
    with pytest.raises(ValueError, match=r"0\.\.2"):
        gm.sample_from_components(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        gm.sample_from_components(torch.tensor([0.0, 1.0]))


# --- noising ------------------------------------------------------------------------------


def test_noised_parameters(gm):
    a, g = 0.6, 0.8
    nz = gm.noised(a, g)
    assert torch.allclose(nz.means, g * gm.means)
    assert torch.allclose(nz.covariances, g**2 * gm.covariances + a**2 * torch.eye(2, dtype=F64))
    assert torch.allclose(nz.weights, gm.weights)
    same = gm.noised(torch.tensor(0.0), torch.tensor(1.0))
    assert torch.allclose(same.covariances, gm.covariances)


def test_noised_matches_monte_carlo(gm):
    gen = torch.Generator().manual_seed(1)
    a, g = 0.5, 0.7
    x = gm.sample(40000, generator=gen).points.double()
    x_t = a * torch.randn(x.shape, generator=gen, dtype=F64) + g * x
    mean, cov = _moments(gm.noised(a, g))
    assert torch.allclose(x_t.mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(x_t.T), cov, atol=0.02)
    # Average log-likelihood of the samples equals minus the entropy: compare with
    # the log-likelihood of fresh samples from the claimed law.
    fresh = gm.noised(a, g).sample(40000, generator=gen).points.double()
    nz = gm.noised(a, g)
    assert abs(float(nz.log_prob(x_t).mean() - nz.log_prob(fresh).mean())) < 0.03


def test_noised_errors(gm):
    with pytest.raises(ValueError, match="both be zero"):
        gm.noised(0.0, 0.0)
    with pytest.raises(ValueError, match="one-element"):
        gm.noised(torch.tensor([0.1, 0.2]), 1.0)


# --- posterior mean ------------------------------------------------------------------------


def test_posterior_mean_matches_importance_sampling(gm):
    gen = torch.Generator().manual_seed(2)
    a, g = 0.6, 0.8
    prior = gm.sample(400000, generator=gen).points.double()  # (M, 2)
    x_t = torch.tensor([[0.0, 0.0], [-0.9, 0.2], [0.8, 0.4], [0.1, -0.9], [2.0, 2.0]], dtype=F64)
    # E[x | x_t] = E_prior[x N(x_t; g x, a^2 I)] / E_prior[N(x_t; g x, a^2 I)].
    logw = -((x_t[:, None, :] - g * prior[None]) ** 2).sum(-1) / (2 * a**2)  # (5, M)
    w = torch.softmax(logw, dim=1)
    ess = 1.0 / (w**2).sum(1)
    assert (ess > 1000).all()
    estimate = w @ prior
    exact = gm.posterior_mean(x_t, a, g)
    assert exact.shape == (5, 2) and exact.dtype == F64
    assert torch.allclose(exact, estimate, atol=0.02), (exact, estimate)


def test_posterior_mean_satisfies_tweedie(gm):
    a, g = 0.4, 0.9
    x_t = torch.randn(30, 2, dtype=F64)
    tweedie = (x_t + a**2 * gm.noised(a, g).score(x_t)) / g
    assert torch.allclose(gm.posterior_mean(x_t, a, g), tweedie, rtol=1e-9, atol=1e-9)


def test_posterior_mean_limits(gm):
    x_t = torch.randn(10, 2, dtype=F64)
    mean, _ = _moments(gm)
    # gamma = 0: x_t carries no information -> prior mean.
    assert torch.allclose(gm.posterior_mean(x_t, 1.0, 0.0), mean.expand(10, 2))
    # alpha = 0: x_t = gamma x exactly.
    assert torch.allclose(gm.posterior_mean(x_t, 0.0, 2.0), x_t / 2)


def test_posterior_mean_per_sample_coefficients(gm):
    n = 6
    x_t = torch.randn(n, 2, dtype=F64)
    alpha = torch.linspace(0.1, 1.0, n, dtype=F64)
    gamma = torch.linspace(1.0, 0.2, n, dtype=F64)
    batched = gm.posterior_mean(x_t, alpha, gamma)
    column = gm.posterior_mean(x_t, alpha[:, None], gamma[:, None])
    rows = torch.cat([
        gm.posterior_mean(x_t[i : i + 1], float(alpha[i]), float(gamma[i])) for i in range(n)
    ])  # fmt: skip
    assert torch.allclose(batched, rows) and torch.allclose(column, rows)


def test_posterior_mean_float32_and_errors(gm):
    x_t = torch.randn(4, 2)
    assert gm.posterior_mean(x_t, 0.5, 0.5).dtype == torch.float32
    with pytest.raises(ValueError, match="both be zero"):
        gm.posterior_mean(x_t, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"alpha must be .* shape \(4,\)"):
        gm.posterior_mean(x_t, torch.ones(3), 0.5)


def test_posterior_mean_is_the_mse_optimal_denoiser(gm):
    """E[x | x_t] beats shrunk/expanded versions of itself in mean squared error."""
    gen = torch.Generator().manual_seed(4)
    a, g = 0.7, 0.7
    x = gm.sample(50000, generator=gen).points.double()
    x_t = a * torch.randn(x.shape, generator=gen, dtype=F64) + g * x
    pm = gm.posterior_mean(x_t, a, g)
    mse = ((pm - x) ** 2).sum(1).mean()
    for scale in (0.9, 1.1):
        assert mse < ((scale * pm - x) ** 2).sum(1).mean()
    assert mse < ((x_t / g - x) ** 2).sum(1).mean()


# --- default mixture ------------------------------------------------------------------------


def test_default_gaussian_mixture():
    d = default_gaussian_mixture()
    assert d.num_components == 4
    assert torch.allclose(d.weights, torch.tensor([0.20, 0.25, 0.35, 0.20], dtype=F64))
    assert torch.allclose(d.covariances[1], torch.tensor([[0.04, 0.03], [0.03, 0.04]], dtype=F64))
    mean, cov = _moments(d)
    std = cov.diagonal().sqrt()
    assert ((std > 0.5) & (std < 0.7)).all(), std
    assert mean.abs().max() < 0.1
    assert not math.isclose(float(d.covariances[1, 0, 1]), 0.0)
