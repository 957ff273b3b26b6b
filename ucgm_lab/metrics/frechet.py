"""Fréchet distance between Gaussians: the formula behind FID.

``FD = |mu1 - mu2|**2 + tr(S1) + tr(S2) - 2 tr((S1 S2)**(1/2))``, the squared 2-Wasserstein
distance between ``N(mu1, S1)`` and ``N(mu2, S2)``. FID is this value for Gaussians fitted
(with :func:`gaussian_stats`) to Inception features of real and generated images; the same
function works for any features, e.g. raw pixels of small images.

The trace term is computed from eigenvalues, not with ``scipy.linalg.sqrtm``: with
``R = S1**(1/2)`` (symmetric square root from ``eigh``), ``S1 S2`` is similar to the symmetric
PSD matrix ``R S2 R``, so ``tr((S1 S2)**(1/2)) = sum_k sqrt(lambda_k(R S2 R))``. This is real by
construction, needs no epsilon offset, and stays accurate for singular (e.g. rank-deficient
sample) covariances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ucgm_lab.metrics._points import PointsLike, as_points


@dataclass(frozen=True, repr=False)
class GaussianStats:
    """Mean and covariance of a set of feature vectors: ``stats.mu``, ``stats.sigma``, ``stats.n``.

    Attributes:
        mu: Mean, shape ``(d,)``, float64.
        sigma: Unbiased covariance (``ddof=1``), shape ``(d, d)``, float64.
        n: Number of feature vectors the statistics were computed from.
    """

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    def __repr__(self) -> str:
        """The field names and shapes, not the arrays."""
        d = self.mu.shape[0]
        return f"GaussianStats(mu=<array ({d},)>, sigma=<array ({d}, {d})>, n={self.n})"


def gaussian_stats(features: PointsLike) -> GaussianStats:
    """Fit a Gaussian to feature vectors.

    Args:
        features: Tensor or array of shape ``(n, d)`` with ``n >= 2``.

    Returns:
        :class:`GaussianStats`: ``.mu`` the sample mean, shape ``(d,)``; ``.sigma`` the
        unbiased sample covariance, shape ``(d, d)``; ``.n`` the number of vectors. Two of them
        give the Frechet distance: ``frechet_distance_from_stats(a, b)``, or
        ``frechet_distance(a.mu, a.sigma, b.mu, b.sigma)``.

    Raises:
        ValueError: If ``features`` is not ``(n, d)`` with ``n >= 2`` finite rows.
    """
    arr = as_points(features, "features")
    if arr.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {arr.shape[0]}")
    mu = arr.mean(axis=0)
    sigma = np.atleast_2d(np.cov(arr, rowvar=False))
    return GaussianStats(mu=mu, sigma=sigma, n=arr.shape[0])


def _check_gaussian(mu: np.ndarray, sigma: np.ndarray, name: str) -> np.ndarray:
    """Validate one ``(mu, sigma)`` pair and return ``sigma`` symmetrised."""
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must have shape (d,), got {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ValueError(f"sigma{name} must have shape (d, d) = ({d}, {d}), got {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu{name} and sigma{name} must be finite")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if float(np.abs(sigma - sigma.T).max()) > 1e-6 * scale:
        raise ValueError(f"sigma{name} must be a symmetric covariance matrix")
    return 0.5 * (sigma + sigma.T)


def _psd_sqrt(sigma: np.ndarray, name: str) -> np.ndarray:
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues are clipped to 0."""
    eigvals, eigvecs = np.linalg.eigh(sigma)
    tol = 1e-8 * max(float(np.abs(eigvals).max()), 1.0)
    if eigvals.min() < -tol:
        raise ValueError(
            f"sigma{name} must be positive semi-definite, smallest eigenvalue {eigvals.min():.3g}"
        )
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(
    mu1: PointsLike, sigma1: PointsLike, mu2: PointsLike, sigma2: PointsLike
) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (the FID formula).

    Returns ``|mu1 - mu2|**2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)**(1/2))``: the
    squared 2-Wasserstein distance between the two Gaussians, in squared feature units. ``0``
    means identical Gaussians. Rounding can make the formula slightly negative for (nearly)
    identical inputs; the result is clipped at ``0``.

    Args:
        mu1: Mean ``(d,)`` (numpy array or tensor).
        sigma1: Symmetric PSD covariance ``(d, d)``.
        mu2: Mean ``(d,)``.
        sigma2: Symmetric PSD covariance ``(d, d)``.

    Returns:
        The Fréchet distance ``>= 0``.

    Raises:
        ValueError: If shapes disagree, values are non-finite, or a covariance is not
            symmetric positive semi-definite (up to rounding).
    """
    arrays = []
    for value in (mu1, sigma1, mu2, sigma2):
        if hasattr(value, "detach"):
            value = value.detach().cpu().double().numpy()
        arrays.append(np.asarray(value, dtype=np.float64))
    m1, s1, m2, s2 = arrays
    s1 = _check_gaussian(m1, s1, "1")
    s2 = _check_gaussian(m2, s2, "2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape, got {m1.shape} and {m2.shape}")
    root1 = _psd_sqrt(s1, "1")
    _psd_sqrt(s2, "2")  # validates sigma2
    middle = root1 @ s2 @ root1
    eigvals = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_covmean = float(np.sqrt(np.clip(eigvals, 0.0, None)).sum())
    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def frechet_distance_from_stats(stats1: GaussianStats, stats2: GaussianStats) -> float:
    """:func:`frechet_distance` of two :class:`GaussianStats`."""
    return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma)
