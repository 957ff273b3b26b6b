"""Class-conditional scores of labelled 2D samples: per-class W2, class accuracy, class spread.

A class-conditional model is scored per class: a sample must not only look like the data, it
must look like the data of the class it was asked for. Guidance (CFG, or the enhanced target
of section 3.1) exists to raise the class accuracy and sharpens the classes (spread below 1).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..runtime import single_thread
from .two_d import wasserstein2

__all__ = [
    "balanced_labels",
    "class_accuracy",
    "class_conditional_w2",
    "class_metrics",
    "class_spread",
]


@functools.lru_cache(maxsize=256)
def _class_points(dataset: str, n: int, class_id: int, seed: int) -> Tensor:
    """Reference points of one class (cached: the explorers ask for the same ones again)."""
    from toy_data import sample_2d_class

    with single_thread():
        return sample_2d_class(dataset, n, class_id, seed=seed).points


@functools.lru_cache(maxsize=16)
def _labelled_points(dataset: str, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Labelled reference points (float64 points, labels), cached."""
    from toy_data import sample_2d

    with single_thread():
        ref = sample_2d(dataset, n, seed=seed)
    return ref.points.double(), ref.labels


def balanced_labels(num_classes: int, n: int) -> Tensor:
    """Class ids 0, 1, ..., K-1, 0, 1, ... of length n (int64): the same count per class (+-1)."""
    if num_classes < 1 or n < 1:
        raise ValueError(f"need num_classes >= 1 and n >= 1, got {num_classes} and {n}.")
    return torch.arange(n) % num_classes


def class_conditional_w2(samples: Tensor, labels: Tensor, dataset: str, seed: int = 123) -> float:
    """Mean over the classes present of W2(samples of class k, fresh data of class k).

    A conditional model is scored per class: a sample must not only look like the data, it
    must look like the data of the class it was asked for.

    Args:
        samples: Shape (n, 2).
        labels: Class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the reference points (as many per class as samples of that class).

    Returns:
        The mean W2.
    """
    values = []
    for k in sorted(set(labels.tolist())):
        mine = samples[labels == k]
        ref = _class_points(dataset, int(mine.shape[0]), int(k), seed + int(k))
        values.append(wasserstein2(mine, ref))
    return float(sum(values) / len(values))


def class_accuracy(
    samples: Tensor, labels: Tensor, dataset: str, seed: int = 321, reference_size: int = 4000
) -> float:
    """Fraction of samples that land in the class they were asked for.

    Each sample is given the class of its nearest neighbour among ``reference_size`` labelled
    data points (a 1-nearest-neighbour classifier of the data set); the score is the fraction
    whose class matches the requested one. Guidance exists to raise it.

    Args:
        samples: Shape (n, 2).
        labels: Requested class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the labelled reference points.
        reference_size: Number of labelled reference points.

    Returns:
        The fraction in [0, 1].
    """
    points, ref_labels = _labelled_points(dataset, reference_size, seed)
    nearest = torch.cdist(samples.double(), points).argmin(dim=1)
    return float((ref_labels[nearest] == labels).double().mean())


def class_spread(
    samples: Tensor, labels: Tensor, dataset: str, seed: int = 456, reference_size: int = 2000
) -> float:
    """How widely samples spread around their class, relative to the data: 1 = like the data.

    For each class k present: the root-mean-square distance of the samples of class k to the
    mean of the data of class k, divided by the same for ``reference_size`` data points of
    class k; the ratios are averaged over the classes. Guidance (CFG, or the enhanced target)
    sharpens the classes: it pulls the ratio below 1.

    Args:
        samples: Shape (n, 2).
        labels: Requested class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the reference points.
        reference_size: Reference points per class.

    Returns:
        The mean ratio (> 0).
    """
    ratios = []
    for k in sorted(set(labels.tolist())):
        ref = _class_points(dataset, reference_size, int(k), seed + int(k)).double()
        centre = ref.mean(dim=0)
        mine = samples[labels == k].double()
        spread = (mine - centre).pow(2).sum(dim=1).mean().sqrt()
        ratios.append(float(spread / (ref - centre).pow(2).sum(dim=1).mean().sqrt()))
    return float(sum(ratios) / len(ratios))


def class_metrics(samples: Tensor, labels: Tensor, dataset: str, seed: int = 0) -> dict[str, float]:
    """The class-conditional scores of a labelled sample.

    Returns:
        ``class_w2`` (:func:`class_conditional_w2`, lower is better), ``class_accuracy``
        (:func:`class_accuracy`, higher is better) and ``class_spread``
        (:func:`class_spread`, 1 is like the data, below 1 is sharpened).
    """
    return {
        "class_w2": class_conditional_w2(samples, labels, dataset, seed=seed + 1000),
        "class_accuracy": class_accuracy(samples, labels, dataset, seed=seed + 2000),
        "class_spread": class_spread(samples, labels, dataset, seed=seed + 3000),
    }
