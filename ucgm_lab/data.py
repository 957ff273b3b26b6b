"""Data of the lessons by name: 2D point sets (``toy_data``) and images (digits, CIFAR-10).

``data_kind(dataset)`` says which kind a data set name is ("points" or "images"); the recipes,
the zoo and the evaluation take that kind from the name instead of living in two packages.

Digits ship inside scikit-learn, so they always load. CIFAR-10 is read from a local
``cifar-10-batches-py`` folder (never downloaded): :func:`find_cifar10` looks for it at the
path given, then under ``$UCGM_LAB_CIFAR10`` and a few usual places, and returns ``None``
when it is absent so that a notebook can explain where to put it and go on with digits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from toy_data import ImageDataset, load_cifar10, load_digits_images

__all__ = [
    "CIFAR10_ENV",
    "CIFAR10_SEARCH_PATHS",
    "IMAGE_DATASETS",
    "DataKind",
    "cifar10_instructions",
    "data_kind",
    "find_cifar10",
    "load_image_data",
]

IMAGE_DATASETS: tuple[str, ...] = ("digits", "cifar10")
CIFAR10_ENV = "UCGM_LAB_CIFAR10"
"""Environment variable naming the ``cifar-10-batches-py`` folder (or its parent)."""
CIFAR10_SEARCH_PATHS: tuple[str, ...] = ("data", "../data", "~/data", "~/datasets")
"""Folders searched (in order, after the argument and ``$UCGM_LAB_CIFAR10``) for CIFAR-10."""
_FOLDER = "cifar-10-batches-py"

DataKind = Literal["points", "images"]


def data_kind(dataset: str) -> DataKind:
    """The kind of a data set name: "images" for :data:`IMAGE_DATASETS`, "points" for a 2D set.

    Raises:
        ValueError: The name is neither (the message lists both kinds' names).
    """
    if dataset in IMAGE_DATASETS:
        return "images"
    from toy_data import list_2d_datasets

    if dataset in list_2d_datasets():
        return "points"
    raise ValueError(
        f"Unknown data set {dataset!r}; images: {', '.join(IMAGE_DATASETS)}; "
        f"2D points: {', '.join(list_2d_datasets())}."
    )


def cifar10_instructions() -> str:
    """How to make CIFAR-10 available (printed by the notebook when the folder is absent)."""
    return (
        "CIFAR-10 was not found. Download cifar-10-python.tar.gz (about 170 MB) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, unpack it with "
        "`tar -xzf cifar-10-python.tar.gz`, and either put the resulting folder "
        f"'{_FOLDER}' under one of {', '.join(CIFAR10_SEARCH_PATHS)} (relative to the notebook) "
        f"or set the environment variable {CIFAR10_ENV} to its path."
    )


def _holds_cifar10(path: Path) -> Path | None:
    if (path / _FOLDER / "data_batch_1").is_file():
        return path / _FOLDER
    if (path / "data_batch_1").is_file():
        return path
    return None


def find_cifar10(root: str | Path | None = None) -> Path | None:
    """Locate a local ``cifar-10-batches-py`` folder.

    Args:
        root: The folder or its parent. When given it is the only place looked at.

    Returns:
        The ``cifar-10-batches-py`` folder, or ``None`` when it is not found (then
        :func:`cifar10_instructions` says where to put it).
    """
    if root is not None:
        candidates = [Path(root).expanduser()]
    else:
        candidates = []
        if os.environ.get(CIFAR10_ENV):
            candidates.append(Path(os.environ[CIFAR10_ENV]).expanduser())
        candidates += [Path(p).expanduser() for p in CIFAR10_SEARCH_PATHS]
    for path in candidates:
        found = _holds_cifar10(path)
        if found is not None:
            return found
    return None


def load_image_data(
    dataset: str, split: str = "train", root: str | Path | None = None
) -> ImageDataset:
    """Load an image data set by name, pixels in [-1, 1].

    Args:
        dataset: "digits" (scikit-learn's 8x8 digits: 1438 train / 359 test images, shape
            (N, 1, 8, 8)) or "cifar10" (50000 train / 10000 test images, shape (N, 3, 32, 32)).
        split: "train" or "test" (digits: the seeded stratified split of ``toy_data``).
        root: CIFAR-10 folder or its parent (default: :func:`find_cifar10`'s search).

    Returns:
        A ``toy_data.ImageDataset``.

    Raises:
        ValueError: Unknown data set or split.
        FileNotFoundError: CIFAR-10 is not available (the message says how to get it).
    """
    if dataset == "digits":
        return load_digits_images(split)
    if dataset == "cifar10":
        folder = find_cifar10(root)
        if folder is None:
            where = f" at {root}" if root is not None else ""
            raise FileNotFoundError(f"No CIFAR-10 folder{where}. {cifar10_instructions()}")
        return load_cifar10(folder, split)
    raise ValueError(f"Unknown image data set {dataset!r}; known: {', '.join(IMAGE_DATASETS)}.")
