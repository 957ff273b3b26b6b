"""Small images on a CPU: the same UCGM knobs on 8x8 digits and CIFAR-10.

* :mod:`~ucgm_lab.images.data`: ``load_image_data("digits" | "cifar10", split)``,
  ``find_cifar10`` (a local ``cifar-10-batches-py`` folder, never downloaded).
* :mod:`~ucgm_lab.images.recipes`: ``ImageRecipe`` + ``train_images`` on the shared trainer.
* :mod:`~ucgm_lab.images.zoo`: the digits zoo (lambda = 0, 0.5, 1) and the digits classifier,
  ``load_image_model``, ``python -m ucgm_lab.images build``.
* :mod:`~ucgm_lab.images.metric`: the digits metric, a Frechet distance in the feature space
  of the project's digits classifier (a teaching metric, not FID), with its floor.
* :mod:`~ucgm_lab.images.fid`: FID with torch-fidelity's Inception weights, when you have them.
* :mod:`~ucgm_lab.images.plots` and :mod:`~ucgm_lab.images.widgets`: image grids, Fig. 2, and
  kappa / rho sliders over cached trajectories.
"""

from .classifier import DigitsClassifier, train_digits_classifier
from .data import cifar10_instructions, find_cifar10, load_image_data
from .evaluation import METRIC_NAME, format_quality_table, image_quality_vs_nfe
from .fid import INCEPTION_WEIGHTS_FILE, fid
from .metric import DigitsFrechet, digits_frechet
from .plots import image_grid_figure, image_table_figure, tile_images, x_hat_grid_figure
from .recipes import CIFAR10_RECIPE, DIGITS_RECIPE, ImageRecipe, ImageRun, train_images
from .timegrid import even_time_points
from .widgets import KappaRhoExplorer, TrajectoryCache, cache_trajectories
from .zoo import (
    CLASSIFIER_NAME,
    IMAGE_ZOO_DIR,
    IMAGE_ZOO_SPECS,
    ImageZooModel,
    ImageZooSpec,
    available,
    build,
    load_classifier,
    load_image_model,
)

__all__ = [
    "CIFAR10_RECIPE",
    "CLASSIFIER_NAME",
    "DIGITS_RECIPE",
    "IMAGE_ZOO_DIR",
    "IMAGE_ZOO_SPECS",
    "INCEPTION_WEIGHTS_FILE",
    "METRIC_NAME",
    "DigitsClassifier",
    "DigitsFrechet",
    "ImageRecipe",
    "ImageRun",
    "ImageZooModel",
    "ImageZooSpec",
    "KappaRhoExplorer",
    "TrajectoryCache",
    "available",
    "build",
    "cache_trajectories",
    "cifar10_instructions",
    "digits_frechet",
    "even_time_points",
    "fid",
    "find_cifar10",
    "format_quality_table",
    "image_grid_figure",
    "image_quality_vs_nfe",
    "image_table_figure",
    "load_classifier",
    "load_image_data",
    "load_image_model",
    "tile_images",
    "train_digits_classifier",
    "train_images",
    "x_hat_grid_figure",
]
