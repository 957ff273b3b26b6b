"""Toy data sets for ucgm-lab: 2D distributions and small images. Nothing is downloaded.

2D distributions (``sample_2d(name, n, seed=...)`` -> ``ToySample``; all labelled,
scaled to roughly ``[-1.5, 1.5]^2`` with per-coordinate std about 0.5-0.9):

- ``"moons"``: two interleaved half circles (2 classes).
- ``"circles"``: two concentric circles, radii 1 and 0.5 (2 classes).
- ``"swiss_roll"``: a 2D swiss roll (4 classes: position along the roll).
- ``"spirals"``: two interleaved spiral arms (2 classes).
- ``"checkerboard"``: uniform on the dark cells of a 4x4 board (8 classes).
- ``"8gaussians"``: eight Gaussians on the unit circle (8 classes).
- ``"gaussian_mixture"``: ``default_gaussian_mixture()``, a 4-component
  ``GaussianMixture2D`` with exact log density, score, noised law and posterior mean.

Images (``ImageDataset``, pixels scaled to ``[-1, 1]``):

- ``load_digits_images``: scikit-learn's bundled 8x8 digits, (N, 1, 8, 8), 10 classes.
- ``load_cifar10``: CIFAR-10 from a local ``cifar-10-batches-py`` folder,
  (N, 3, 32, 32), 10 classes.
"""

from toy_data.cifar import CIFAR10_CLASSES, load_cifar10
from toy_data.containers import ImageDataset, ToySample
from toy_data.digits import load_digits_images
from toy_data.gaussian_mixture import GaussianMixture2D, default_gaussian_mixture
from toy_data.two_d import (
    class_weights,
    list_2d_datasets,
    num_classes,
    sample_2d,
    sample_2d_class,
)

__all__ = [
    "CIFAR10_CLASSES",
    "GaussianMixture2D",
    "ImageDataset",
    "ToySample",
    "class_weights",
    "default_gaussian_mixture",
    "list_2d_datasets",
    "load_cifar10",
    "load_digits_images",
    "num_classes",
    "sample_2d",
    "sample_2d_class",
]
