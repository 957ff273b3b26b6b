"""The digits metric: a Frechet distance in the feature space of the project's digits classifier.

A *teaching* metric, not FID: FID fits Gaussians to 2048-d Inception features of 299x299
images; 8x8 digits are far from Inception's training data, so here the features are the
64-d penultimate layer of :class:`~ucgm_lab.metrics.digits_classifier.DigitsClassifier`, a tiny CNN
trained by the project on the digits train split. The distance itself is the same formula
(:func:`ucgm_lab.metrics.frechet_distance`).

* Reference: the Gaussian of the features of the 1438 train-split images.
* Samples are scored at the size of the test split (359 images, the test split's labels), so
  that the **floor** -- the distance of the held-out test split itself, 359 real digits the
  classifier never saw -- is what a perfect model would score. Values near the floor mean
  "as close to the training digits as fresh real digits are"; the Frechet distance of a
  finite sample is biased upwards, which is why the sample size is fixed.
* Pixels are clamped to [-1, 1] first (the range of real digits), as FID pipelines quantise
  to uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from ..data import load_image_data
from .digits_classifier import CLASSIFIER_DIR, DigitsClassifier, load_classifier
from .frechet import GaussianStats, frechet_distance_from_stats, gaussian_stats
from .two_d import FloorResult

__all__ = ["DigitsFrechet", "digits_frechet"]


@dataclass(frozen=True, eq=False)
class DigitsFrechet:
    """Frechet distance of digit images to the digits train split in classifier-feature space.

    Attributes:
        classifier: The feature network (eval mode).
        reference: Gaussian of the train split's features.
        test_images: The held-out test split, shape (n, 1, 8, 8) (defines the floor).
        test_labels: Its labels, shape (n,): sample the model with these to score it.
    """

    classifier: DigitsClassifier
    reference: GaussianStats
    test_images: Tensor
    test_labels: Tensor

    @property
    def num_samples(self) -> int:
        """The number of images a model should be scored on (the test split's size)."""
        return int(self.test_labels.shape[0])

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 1024) -> Tensor:
        """Classifier features of images.

        Args:
            images: Shape (N, 1, 8, 8), pixels nominally in [-1, 1] (clamped).
            batch_size: Images per forward pass.

        Returns:
            Shape (N, 64), float32.
        """
        x = images.detach().float().cpu().clamp(-1.0, 1.0)
        parts = [
            self.classifier.features(x[i : i + batch_size])
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(parts)

    def stats(self, images: Tensor) -> GaussianStats:
        """Gaussian (mean, covariance) of the features of ``images`` (N >= 2, shape (N, 1, 8, 8))."""
        return gaussian_stats(self.features(images))

    def distance(self, images: Tensor) -> float:
        """Frechet distance between ``images`` (N, 1, 8, 8) and the train split (lower is better).

        Use N = :attr:`num_samples` images to compare with :meth:`floor`.
        """
        return frechet_distance_from_stats(self.stats(images), self.reference)

    __call__ = distance

    def floor(self) -> FloorResult:
        """The distance of the held-out test split: what a perfect model scores."""
        value = self.distance(self.test_images)
        return FloorResult(mean=value, std=0.0, values=(value,), n=self.num_samples)

    def accuracy(self, images: Tensor, labels: Tensor) -> float:
        """Fraction of ``images`` (N, 1, 8, 8) the classifier reads as ``labels`` (N,)."""
        with torch.no_grad():
            pred = self.classifier(images.detach().float().cpu().clamp(-1.0, 1.0)).argmax(1)
        return float((pred == labels.cpu()).float().mean())


@lru_cache(maxsize=4)
def _cached(directory: str) -> DigitsFrechet:
    classifier = load_classifier(directory)
    train, test = load_image_data("digits", "train"), load_image_data("digits", "test")
    with torch.no_grad():
        reference = gaussian_stats(classifier.features(train.images))
    return DigitsFrechet(classifier, reference, test.images, test.labels)


def digits_frechet(directory: str | Path = CLASSIFIER_DIR) -> DigitsFrechet:
    """The digits metric with the stored classifier (cached per folder).

    Raises:
        CheckpointError: The classifier checkpoint is missing (the message says how to build it).
    """
    return _cached(str(Path(directory)))
