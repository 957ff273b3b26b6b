"""Sample-quality metrics: point-cloud distances, the Fréchet (FID) distance, image metrics.

Images of any shape: ``ImageFrechet``, a Fréchet distance in fixed random CNN features.
"""

from ucgm_lab.metrics.frechet import (
    GaussianStats,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
)
from ucgm_lab.metrics.image_frechet import IMAGE_METRIC, ImageFrechet
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
    "IMAGE_METRIC",
    "METRICS_2D",
    "FloorResult",
    "GaussianStats",
    "ImageFrechet",
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
