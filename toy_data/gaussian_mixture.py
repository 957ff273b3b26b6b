"""Exact 2D Gaussian mixtures: sampling, density, score, noising and posterior mean.

The noising convention is the UCGM one: ``x_t = alpha * z + gamma * x`` with
``z ~ N(0, I)`` independent of the data point ``x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from toy_data._checks import check_positive_int, generator_device
from toy_data.containers import ToySample

__all__ = ["GaussianMixture2D", "default_gaussian_mixture"]

_LOG_2PI = math.log(2.0 * math.pi)
# Parameters are stored in float64 and cast to the input's dtype/device per call.
_PARAM_DTYPE = torch.float64


def _inverse_and_logdet_2x2(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form inverse and log-determinant of symmetric 2x2 matrices.

    Args:
        c: Matrices, shape ``(..., 2, 2)``.

    Returns:
        The inverses, shape ``(..., 2, 2)``, and log-determinants, shape ``(...)``.
    """
    a, b, d = c[..., 0, 0], c[..., 0, 1], c[..., 1, 1]
    det = a * d - b * b
    inv = (
        torch.stack([torch.stack([d, -b], dim=-1), torch.stack([-b, a], dim=-1)], dim=-2)
        / det[..., None, None]
    )
    return inv, torch.log(det)


def _as_column(value: float | torch.Tensor, n: int, what: str, like: torch.Tensor) -> torch.Tensor:
    """Convert a per-batch or scalar coefficient to shape ``(n or 1, 1)``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t.reshape(1, 1)
    if t.ndim == 1 and t.shape[0] == n:
        return t.reshape(n, 1)
    if t.ndim == 2 and t.shape == (n, 1):
        return t
    raise ValueError(
        f"{what} must be a float, a 0-dim tensor, or a tensor of shape ({n},) or ({n}, 1) "
        f"matching x_t; got shape {tuple(t.shape)}."
    )


@dataclass(frozen=True, eq=False)
class GaussianMixture2D:
    """A mixture of ``K`` Gaussians in 2D with full covariances.

    Parameters are validated and stored in ``float64`` on the CPU; every method
    casts them to the dtype and device of its input, so pass ``float64`` inputs
    for high-precision results.

    Attributes:
        means: Component means, shape ``(K, 2)``.
        covariances: Symmetric positive-definite component covariances,
            shape ``(K, 2, 2)``.
        weights: Mixture weights, shape ``(K,)``; non-negative, normalised to sum
            to one on construction. ``None`` means uniform weights.
    """

    means: torch.Tensor
    covariances: torch.Tensor
    weights: torch.Tensor | None = None

    def __post_init__(self) -> None:
        means = torch.as_tensor(self.means, dtype=_PARAM_DTYPE).detach().cpu()
        covs = torch.as_tensor(self.covariances, dtype=_PARAM_DTYPE).detach().cpu()
        if means.ndim != 2 or means.shape[1] != 2 or means.shape[0] == 0:
            raise ValueError(f"means must have shape (K, 2) with K >= 1; got {tuple(means.shape)}.")
        k = means.shape[0]
        if covs.shape != (k, 2, 2):
            raise ValueError(
                f"covariances must have shape (K, 2, 2) = ({k}, 2, 2); got {tuple(covs.shape)}. "
                "Use GaussianMixture2D.isotropic(means, stds) for isotropic components."
            )
        if not torch.allclose(covs, covs.transpose(1, 2)):
            raise ValueError("covariances must be symmetric.")
        a, b, d = covs[:, 0, 0], covs[:, 0, 1], covs[:, 1, 1]
        bad = torch.nonzero((a <= 0) | (a * d - b * b <= 0)).flatten().tolist()
        if bad:
            raise ValueError(f"covariances must be positive definite; components {bad} are not.")
        if self.weights is None:
            weights = torch.full((k,), 1.0 / k, dtype=_PARAM_DTYPE)
        else:
            weights = torch.as_tensor(self.weights, dtype=_PARAM_DTYPE).detach().cpu()
            if weights.shape != (k,):
                raise ValueError(
                    f"weights must have shape (K,) = ({k},); got {tuple(weights.shape)}."
                )
            if bool((weights < 0).any()) or float(weights.sum()) <= 0:
                raise ValueError("weights must be non-negative with a positive sum.")
            weights = weights / weights.sum()
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covariances", covs)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def isotropic(
        cls,
        means: torch.Tensor,
        stds: float | torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> GaussianMixture2D:
        """Build a mixture whose components have covariance ``std_k**2 * I``.

        Args:
            means: Component means, shape ``(K, 2)``.
            stds: Per-coordinate standard deviation, a float or shape ``(K,)``.
            weights: Mixture weights, shape ``(K,)``, or ``None`` for uniform.

        Returns:
            The mixture.
        """
        means_t = torch.as_tensor(means, dtype=_PARAM_DTYPE)
        k = means_t.shape[0]
        stds_t = torch.as_tensor(stds, dtype=_PARAM_DTYPE).expand(k)
        covs = stds_t[:, None, None] ** 2 * torch.eye(2, dtype=_PARAM_DTYPE)
        return cls(means_t, covs, weights)

    @property
    def num_components(self) -> int:
        """Number of mixture components ``K``."""
        return int(self.means.shape[0])

    def _params_like(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not torch.is_floating_point(x) or x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(
                f"x must be a floating-point tensor of shape (n, 2); got dtype {x.dtype} "
                f"and shape {tuple(x.shape)}."
            )
        kw = {"dtype": x.dtype, "device": x.device}
        return self.means.to(**kw), self.covariances.to(**kw), self.weights.to(**kw)

    def _log_joint(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-component ``log w_k + log N(x; m_k, S_k)`` (n, K), S^-1 (K,2,2), x - m (n,K,2)."""
        means, covs, weights = self._params_like(x)
        inv, logdet = _inverse_and_logdet_2x2(covs)
        diff = x[:, None, :] - means[None]
        maha = torch.einsum("nki,kij,nkj->nk", diff, inv, diff)
        log_joint = torch.log(weights)[None] - 0.5 * (maha + logdet[None]) - _LOG_2PI
        return log_joint, inv, diff

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density of the mixture.

        Args:
            x: Points, shape ``(n, 2)``.

        Returns:
            ``log p(x)``, shape ``(n,)``.
        """
        log_joint, _, _ = self._log_joint(x)
        return torch.logsumexp(log_joint, dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities ``p(k | x)``.

        Args:
            x: Points, shape ``(n, 2)``.

        Returns:
            Responsibilities, shape ``(n, K)``; rows sum to one.
        """
        log_joint, _, _ = self._log_joint(x)
        return torch.softmax(log_joint, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Exact score ``grad_x log p(x) = -sum_k p(k|x) S_k^{-1} (x - m_k)``.

        Args:
            x: Points, shape ``(n, 2)``.

        Returns:
            The score, shape ``(n, 2)``.
        """
        log_joint, inv, diff = self._log_joint(x)
        resp = torch.softmax(log_joint, dim=1)
        per_component = -torch.einsum("kij,nkj->nki", inv, diff)
        return (resp[..., None] * per_component).sum(dim=1)

    def sample_from_components(
        self, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw one point from component ``labels[i]`` for every ``i``.

        Args:
            labels: Component ids in ``0 .. K-1``, shape ``(n,)``, integer dtype.
            generator: Optional torch generator for reproducibility.

        Returns:
            Points, shape ``(n, 2)``, ``float32``, on the generator's device.
        """
        k = self.num_components
        if labels.ndim != 1 or labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"labels must be a 1D integer tensor; got {labels.dtype} {tuple(labels.shape)}."
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(
                f"labels must lie in 0..{k - 1}; got range "
                f"{int(labels.min())}..{int(labels.max())}."
            )
        device = generator_device(generator)
        labels = labels.to(device)
        chol = torch.linalg.cholesky(self.covariances).to(device)
        eps = torch.randn(
            labels.shape[0], 2, generator=generator, device=device, dtype=_PARAM_DTYPE
        )
        x = self.means.to(device)[labels] + torch.einsum("nij,nj->ni", chol[labels], eps)
        return x.to(torch.float32)

    def sample(self, n: int, generator: torch.Generator | None = None) -> ToySample:
        """Sample ``n`` i.i.d. points with their component ids.

        Args:
            n: Number of points (positive int).
            generator: Optional torch generator for reproducibility.

        Returns:
            ``ToySample`` with ``points`` (n, 2) float32 and ``labels`` (n,) int64
            (the component each point was drawn from).
        """
        n = check_positive_int(n, "n")
        device = generator_device(generator)
        labels = torch.multinomial(
            self.weights.to(device), n, replacement=True, generator=generator
        )
        return ToySample(points=self.sample_from_components(labels, generator), labels=labels)

    def noised(self, alpha: float | torch.Tensor, gamma: float | torch.Tensor) -> GaussianMixture2D:
        """Exact law of ``x_t = alpha * z + gamma * x`` with ``z ~ N(0, I)``, ``x ~ self``.

        Component ``k`` becomes ``N(gamma * m_k, gamma**2 * S_k + alpha**2 * I)``;
        the weights are unchanged.

        Args:
            alpha: Noise coefficient, a float or 0-dim tensor.
            gamma: Data coefficient, a float or 0-dim tensor.

        Returns:
            The noised mixture.

        Raises:
            ValueError: If ``alpha`` or ``gamma`` is not a scalar, or both are zero.
        """
        a = self._scalar(alpha, "alpha")
        g = self._scalar(gamma, "gamma")
        if a == 0.0 and g == 0.0:
            raise ValueError("alpha and gamma must not both be zero (x_t would be the constant 0).")
        covs = g**2 * self.covariances + a**2 * torch.eye(2, dtype=_PARAM_DTYPE)
        return GaussianMixture2D(g * self.means, covs, self.weights)

    @staticmethod
    def _scalar(value: float | torch.Tensor, what: str) -> float:
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"{what} must be a float or a one-element tensor for noised(); got shape "
                    f"{tuple(value.shape)}. Use posterior_mean for per-sample coefficients."
                )
            return float(value.item())
        return float(value)

    def posterior_mean(
        self,
        x_t: torch.Tensor,
        alpha: float | torch.Tensor,
        gamma: float | torch.Tensor,
    ) -> torch.Tensor:
        """Exact denoiser ``E[x | x_t]`` for ``x_t = alpha * z + gamma * x``.

        With ``C_k = gamma**2 S_k + alpha**2 I`` and noised responsibilities
        ``r_k ∝ w_k N(x_t; gamma m_k, C_k)``::

            E[x | x_t] = sum_k r_k (m_k + gamma S_k C_k^{-1} (x_t - gamma m_k)).

        Args:
            x_t: Noised points, shape ``(n, 2)``.
            alpha: Noise coefficient: a float, 0-dim tensor, or per-sample
                tensor of shape ``(n,)`` or ``(n, 1)``.
            gamma: Data coefficient, same accepted shapes as ``alpha``.

        Returns:
            The posterior mean, shape ``(n, 2)``, in ``x_t``'s dtype.

        Raises:
            ValueError: On bad shapes, or where ``alpha`` and ``gamma`` are both zero.
        """
        means, covs, weights = self._params_like(x_t)
        n = x_t.shape[0]
        a = _as_column(alpha, n, "alpha", x_t)
        g = _as_column(gamma, n, "gamma", x_t)
        if bool(((a == 0) & (g == 0)).any()):
            raise ValueError("alpha and gamma must not both be zero.")
        eye = torch.eye(2, dtype=x_t.dtype, device=x_t.device)
        c = g[:, :, None, None] ** 2 * covs[None] + a[:, :, None, None] ** 2 * eye  # (n|1,K,2,2)
        inv, logdet = _inverse_and_logdet_2x2(c)
        diff = x_t[:, None, :] - g[:, :, None] * means[None]  # (n,K,2)
        c_inv_diff = torch.einsum("nkij,nkj->nki", inv.expand(n, -1, -1, -1), diff)
        maha = (diff * c_inv_diff).sum(-1)
        log_joint = torch.log(weights)[None] - 0.5 * (maha + logdet) - _LOG_2PI
        resp = torch.softmax(log_joint, dim=1)
        cond_means = means[None] + g[:, :, None] * torch.einsum("kij,nkj->nki", covs, c_inv_diff)
        return (resp[..., None] * cond_means).sum(dim=1)


def default_gaussian_mixture() -> GaussianMixture2D:
    """The fixed 4-component mixture behind ``sample_2d("gaussian_mixture", ...)``.

    Components (class ids 0..3), chosen to mix isotropic, axis-aligned and
    correlated covariances and unequal weights:

    ====  ===============  ==========================================  ======
    id    mean             covariance                                  weight
    ====  ===============  ==========================================  ======
    0     (-0.8,  0.6)     0.15**2 * I                                 0.20
    1     ( 0.8,  0.6)     [[0.04, 0.03], [0.03, 0.04]] (correlated)   0.25
    2     ( 0.0, -0.7)     diag(0.35**2, 0.10**2)                      0.35
    3     ( 0.0,  0.2)     0.10**2 * I                                 0.20
    ====  ===============  ==========================================  ======

    Data lies in about ``[-1.3, 1.3] x [-1.1, 1.1]``; per-coordinate std is
    about ``(0.59, 0.60)``.

    Returns:
        A new ``GaussianMixture2D``.
    """
    means = torch.tensor([[-0.8, 0.6], [0.8, 0.6], [0.0, -0.7], [0.0, 0.2]])
    covs = torch.tensor(
        [
            [[0.15**2, 0.0], [0.0, 0.15**2]],
            [[0.04, 0.03], [0.03, 0.04]],
            [[0.35**2, 0.0], [0.0, 0.10**2]],
            [[0.10**2, 0.0], [0.0, 0.10**2]],
        ],
        dtype=torch.float64,
    )
    weights = torch.tensor([0.20, 0.25, 0.35, 0.20])
    return GaussianMixture2D(means, covs, weights)
