"""Small frozen dataclasses returned by the toy data loaders and samplers."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ImageDataset", "ToySample"]


@dataclass(frozen=True, eq=False)
class ToySample:
    """A batch of 2D points with optional integer class labels.

    Attributes:
        points: Sampled points, shape ``(n, 2)``, ``float32``.
        labels: Class ids in ``0 .. num_classes - 1``, shape ``(n,)``, ``int64``;
            ``None`` when the distribution has no meaningful classes.
    """

    points: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(
                f"ToySample.points must have shape (n, 2); got {tuple(self.points.shape)}."
            )
        if self.labels is not None and (
            self.labels.ndim != 1 or self.labels.shape[0] != self.points.shape[0]
        ):
            raise ValueError(
                "ToySample.labels must have shape (n,) matching points "
                f"(n={self.points.shape[0]}); got {tuple(self.labels.shape)}."
            )

    def __len__(self) -> int:
        return int(self.points.shape[0])


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """An in-memory labelled image data set.

    Attributes:
        images: Images, shape ``(N, C, H, W)``, ``float32`` scaled to ``[-1, 1]``.
        labels: Class ids in ``0 .. num_classes - 1``, shape ``(N,)``, ``int64``.
        num_classes: Number of classes.
        class_names: Human-readable name of each class (length ``num_classes``),
            or an empty tuple when unknown.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(
                f"ImageDataset.images must have shape (N, C, H, W); got {tuple(self.images.shape)}."
            )
        if self.labels.ndim != 1 or self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(
                "ImageDataset.labels must have shape (N,) matching images "
                f"(N={self.images.shape[0]}); got {tuple(self.labels.shape)}."
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"ImageDataset.class_names has {len(self.class_names)} entries but "
                f"num_classes is {self.num_classes}."
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of a single image."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self.images.shape[0])
