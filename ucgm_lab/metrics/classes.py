"""Class-conditional scores of labelled 2D samples: per-class W2, class accuracy, class spread.

A class-conditional model is scored per class: a sample must not only look like the data, it
must look like the data of the class it was asked for. Guidance (CFG, or the enhanced target
of section 3.1) exists to raise the class accuracy and sharpens the classes (spread below 1).

Two forms of the per-class W2 share one definition, the mean over the classes k present of a
distance between the samples of class k and reference points of class k
(:func:`mean_over_classes`):

* :func:`class_conditional_w2` (notebook 13's "class W2"): exact W2 against fresh data of
  each class, as many points as samples;
* :class:`ClassSlicedW2`: sliced W2 against a given *class-ordered* reference (row i of
  class i mod K, :func:`class_ordered_points`), with the samples in the same order
  (:func:`balanced_labels`). It is the metric of the sampler-settings search for
  class-conditional models (``metric(samples, reference) -> float``: the labels are
  implied by the row order, which the search keeps for its validation runs, whose labels
  are the selection labels repeated).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from ..runtime import single_thread
from .two_d import wasserstein2

__all__ = [
    "ClassSlicedW2",
    "balanced_labels",
    "class_accuracy",
    "class_conditional_w2",
    "class_metrics",
    "class_ordered_points",
    "class_spread",
    "mean_over_classes",
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


def mean_over_classes(
    samples: Tensor, labels: Tensor, distance: Callable[[Tensor, int], float]
) -> float:
    """Mean over the classes k present in ``labels`` of ``distance(samples of class k, k)``.

    The one definition behind :func:`class_conditional_w2` and :class:`ClassSlicedW2`: every
    class counts the same, however many samples it has.

    Args:
        samples: Shape (n, ...).
        labels: Class ids, shape (n,).
        distance: ``distance(points of class k (n_k, ...), k) -> float``.

    Returns:
        The mean distance.
    """
    if labels.shape != samples.shape[:1]:
        raise ValueError(
            f"labels must have shape ({samples.shape[0]},) (one class id per sample), "
            f"got {tuple(labels.shape)}."
        )
    values = [distance(samples[labels == k], int(k)) for k in sorted(set(labels.tolist()))]
    if not values:
        raise ValueError("no samples to score (labels is empty).")
    return float(sum(values) / len(values))


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

    def w2(mine: Tensor, k: int) -> float:
        return wasserstein2(mine, _class_points(dataset, int(mine.shape[0]), k, seed + k))

    return mean_over_classes(samples, labels, w2)


def class_ordered_points(dataset: str, per_class: int, seed: int = 0) -> Tensor:
    """Data points of every class of a 2D data set, class-ordered: row i is of class i mod K.

    The reference :class:`ClassSlicedW2` expects (K = the data set's number of classes).

    Args:
        dataset: 2D data set name (``toy_data``).
        per_class: Points per class.
        seed: Seed (class k uses ``seed + k``).

    Returns:
        Shape (K * per_class, 2), float32.
    """
    from toy_data import num_classes, sample_2d_class

    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}.")
    k_count = num_classes(dataset)
    with single_thread():
        blocks = [
            sample_2d_class(dataset, per_class, k, seed=seed + k).points for k in range(k_count)
        ]
    # (K, per_class, 2) -> (per_class, K, 2): row i holds class i mod K
    return torch.stack(blocks).transpose(0, 1).reshape(-1, 2).contiguous()


class ClassSlicedW2:
    """Mean over classes of the sliced W2 between class-k samples and class-k reference points.

    The class-aware metric of the sampler-settings search for class-conditional 2D models
    (:func:`mean_over_classes` with :class:`ucgm_lab.search.SlicedW2`, 256 fixed directions):
    ``metric(samples, reference) -> float``, lower is better. Both clouds are class-ordered:
    row i is of class i mod K (samples drawn with :func:`balanced_labels`, the reference
    from :func:`class_ordered_points`). A reference per class k times larger than the
    samples per class is exact and fast (``SlicedW2``'s block sums, its sorted projections
    cached per class).

    Args:
        num_classes: K.
        n_projections: Directions of the sliced W2.
        seed: Seed of the directions.
    """

    def __init__(self, num_classes: int, n_projections: int = 256, seed: int = 0) -> None:
        from ..search import SlicedW2  # lazy: the search imports the sampler

        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
        self.num_classes = num_classes
        self._per_class = [SlicedW2(n_projections, seed) for _ in range(num_classes)]

    def _check(self, points: Tensor, what: str) -> None:
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] % self.num_classes:
            raise ValueError(
                f"{what} must be class-ordered 2D points (n, 2) with n a multiple of the "
                f"{self.num_classes} classes (row i of class i mod {self.num_classes}), "
                f"got shape {tuple(points.shape)}."
            )

    def __call__(self, samples: Tensor, reference: Tensor) -> float:
        """Mean over the K classes of sliced W2(samples[k::K], reference[k::K])."""
        self._check(samples, "samples")
        self._check(reference, "reference")
        k_count = self.num_classes

        def sw2(mine: Tensor, k: int) -> float:
            return self._per_class[k](mine, reference[k::k_count])

        return mean_over_classes(samples, balanced_labels(k_count, samples.shape[0]), sw2)


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
