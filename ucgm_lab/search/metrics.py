"""The search's metrics: a fast fixed-direction sliced W2, the default metric per data kind."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["Metric", "SlicedW2", "default_metric"]

Metric = Callable[[Tensor, Tensor], float]


class SlicedW2:
    """Sliced W2 with fixed directions, fast for repeated scoring against one reference.

    The value of :func:`ucgm_lab.metrics.sliced_wasserstein2` (POT's estimator, the same
    ``seed`` and hence the same directions). For clouds of equal size it is computed by
    sorting the projections (exact for uniform weights) with NumPy, about ten times faster
    than torch's CPU sort, and the sorted projections of the last reference are cached:
    a search scores hundreds of clouds against the same reference. The cache is keyed by the
    reference's content, not its address: a private copy of the last reference is compared
    exactly (``torch.equal``, one pass over M x 2 numbers, far cheaper than the sort), so a
    new reference allocated where a freed one lived, or one edited in place, is re-sorted.

    A reference k times larger than the samples (M = k N, 2D) is also exact and fast: sorted
    sample j is matched with the j-th block of k sorted reference points, so per direction
    W2^2 = (1 / M) sum_j (k s_j^2 - 2 s_j S_j + Q_j) with the block sums S_j, Q_j of the
    reference's projections and their squares (cached). A large reference removes the
    reference's share of the metric's sampling noise, which is what a search that selects
    among close settings needs (docs/architecture.md, "The sampler-settings search").

    Args:
        n_projections: Number of directions.
        seed: Seed of the directions.
    """

    def __init__(self, n_projections: int = 256, seed: int = 0) -> None:
        import ot

        if (
            isinstance(n_projections, bool)
            or not isinstance(n_projections, int)
            or n_projections < 1
        ):
            raise ValueError(f"n_projections must be a positive integer, got {n_projections!r}.")
        self.n_projections, self.seed = n_projections, seed
        self._theta = np.asarray(ot.sliced.get_random_projections(2, n_projections, seed)).T
        self._ref_copy: Tensor | None = None
        self._ref_sorted: np.ndarray | None = None
        self._blocks: tuple[int, np.ndarray, np.ndarray] | None = None

    def _sorted(self, points: Tensor) -> np.ndarray:
        return np.sort(self._theta @ points.detach().cpu().double().numpy().T, axis=-1)

    def _is_cached(self, reference: Tensor) -> bool:
        """Whether ``reference`` holds exactly the numbers of the cached one."""
        cached = self._ref_copy
        return (
            cached is not None
            and cached.shape == reference.shape
            and cached.dtype == reference.dtype
            and cached.device == reference.device
            and bool(torch.equal(cached, reference.detach()))
        )

    def __call__(self, samples: Tensor, reference: Tensor) -> float:
        """Sliced W2 between ``samples`` (N, 2) and ``reference`` (M, 2)."""
        n, m = samples.shape[0], reference.shape[0]
        plain = samples.ndim == 2 == reference.ndim and samples.shape[1] == 2 == reference.shape[1]
        if not plain or n == 0 or m % n != 0:
            from ..metrics import sliced_wasserstein2

            return sliced_wasserstein2(
                samples, reference, n_projections=self.n_projections, seed=self.seed
            )
        if not self._is_cached(reference):
            self._ref_sorted, self._blocks = self._sorted(reference), None
            self._ref_copy = reference.detach().clone()
        if m == n:
            diff = self._sorted(samples) - self._ref_sorted
            return float(np.sqrt(np.mean(diff * diff)))
        k = m // n
        if self._blocks is None or self._blocks[0] != n:
            ref = self._ref_sorted.reshape(self.n_projections, n, k)
            self._blocks = (n, ref.sum(-1), (ref * ref).sum(-1))
        _, block_sum, block_sq = self._blocks
        s = self._sorted(samples)
        per_point = k * s * s - 2 * s * block_sum + block_sq
        return float(np.sqrt(max(per_point.sum() / (m * self.n_projections), 0.0)))


def default_metric(reference: Tensor) -> Metric:
    """The default metric for a kind of data (lower is better).

    * 2D points (M, 2): sliced W2 with 256 fixed directions (:class:`SlicedW2`, the value
      of :func:`ucgm_lab.metrics.sliced_wasserstein2`).
    * digits images (M, 1, 8, 8): the digits Frechet distance
      (:func:`ucgm_lab.metrics.digits.digits_frechet`; the reference is not used, the metric
      compares with the digits train split).
    * other images (M, C, H, W): the Frechet distance in the features of a fixed random CNN
      (:class:`ucgm_lab.metrics.image_frechet.ImageFrechet`; offline, any shape).

    Raises:
        ValueError: For any other shape (pass ``metric=`` yourself).
    """
    if reference.ndim == 2 and reference.shape[1] == 2:
        return SlicedW2()
    if tuple(reference.shape[1:]) == (1, 8, 8):
        from ..metrics.digits import digits_frechet

        frechet = digits_frechet()
        return lambda samples, _reference: frechet.distance(samples)
    if reference.ndim == 4:
        from ..metrics.image_frechet import ImageFrechet

        return ImageFrechet()
    raise ValueError(
        f"No default metric for data of shape {tuple(reference.shape)}: the defaults cover 2D "
        "points (M, 2), digits images (M, 1, 8, 8) and other images (M, C, H, W). Pass "
        "metric=callable(samples, reference) -> float."
    )
