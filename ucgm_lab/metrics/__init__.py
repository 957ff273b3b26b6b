"""Sample-quality metrics: 2-D point-cloud distances and the Fréchet (FID) distance."""

from ucgm_lab.metrics.frechet import (
    GaussianStats,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
)
from ucgm_lab.metrics.two_d import (
    METRICS_2D,
    FloorResult,
    energy_distance,
    evaluate_2d,
    metric_floor,
    mmd_rbf,
    sliced_wasserstein2,
    wasserstein2,
)

__all__ = [
    "METRICS_2D",
    "FloorResult",
    "GaussianStats",
    "energy_distance",
    "evaluate_2d",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "metric_floor",
    "mmd_rbf",
    "sliced_wasserstein2",
    "wasserstein2",
]
