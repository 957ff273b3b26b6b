"""scikit-learn's bundled 8x8 handwritten digits as a small image data set.

The data (1797 grey-scale 8x8 images, classes 0-9) ships inside scikit-learn,
so loading never touches the network.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from toy_data.containers import ImageDataset

__all__ = ["DIGITS_SPLITS", "load_digits_images"]

DIGITS_SPLITS: tuple[str, ...] = ("all", "train", "test")
_MAX_PIXEL = 16.0  # sklearn digits pixels are integers 0..16


def _stratified_test_mask(labels: torch.Tensor, test_fraction: float, seed: int) -> torch.Tensor:
    """Boolean mask (N,) choosing ``round(test_fraction * count)`` random items per class."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(labels.shape[0], dtype=torch.bool)
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        n_test = round(test_fraction * idx.numel())
        n_test = min(max(n_test, 1), idx.numel() - 1)
        chosen = idx[torch.randperm(idx.numel(), generator=generator)[:n_test]]
        mask[chosen] = True
    return mask


def load_digits_images(
    split: str = "all", test_fraction: float = 0.2, seed: int = 0
) -> ImageDataset:
    """Load the sklearn 8x8 digits as images scaled to ``[-1, 1]``.

    Pixel values ``0 .. 16`` map linearly to ``-1 .. 1`` (``x / 8 - 1``). The
    train/test split is stratified by class and seeded: for each class,
    ``round(test_fraction * count)`` images (at least one, and at least one left
    for training) go to ``"test"``, the rest to ``"train"``. The two splits are
    disjoint, together cover ``"all"``, and keep the original order.

    Args:
        split: ``"all"`` (1797 images), ``"train"`` or ``"test"``.
        test_fraction: Fraction of each class held out for ``"test"``, in ``(0, 1)``.
        seed: Seed of the split; the same seed always gives the same split.

    Returns:
        ``ImageDataset`` with ``images`` (N, 1, 8, 8) float32 in ``[-1, 1]``,
        ``labels`` (N,) int64 in ``0..9``, ``num_classes=10`` and
        ``class_names=("0", ..., "9")``.

    Raises:
        ValueError: For an unknown ``split`` or a ``test_fraction`` outside ``(0, 1)``.
    """
    if split not in DIGITS_SPLITS:
        raise ValueError(
            f"split must be one of {', '.join(map(repr, DIGITS_SPLITS))}; got {split!r}."
        )
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not (0.0 < test_fraction < 1.0)
    ):
        raise ValueError(
            f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {seed!r} ({type(seed).__name__}).")

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / (_MAX_PIXEL / 2) - 1.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    if split != "all":
        test_mask = _stratified_test_mask(labels, test_fraction, seed)
        keep = test_mask if split == "test" else ~test_mask
        images, labels = images[keep], labels[keep]
    return ImageDataset(
        images=images.contiguous(),
        labels=labels,
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
    )
