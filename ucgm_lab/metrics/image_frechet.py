"""A metric for images of any shape, computable offline: a Frechet distance in fixed random features.

FID needs Inception weights (a download) and 299x299 inputs; the digits metric needs a
classifier trained on digits. For a user's own images -- any channel count and size -- this
module scores samples with the FID formula (:func:`~ucgm_lab.metrics.frechet_distance`) in the
feature space of a small convolutional network whose weights are drawn from a fixed seed and
never trained:

* the images are standardised per channel with the reference's mean and std;
* three 3x3 convolutions with ReLU (widths 32, 64, 64; strides 1, 2, 2), He-initialised from
  ``torch.Generator().manual_seed(seed)``;
* the features are, per layer, the spatial mean and std of every channel (texture statistics:
  noise, blur and sharp edges move them) and the input average-pooled to 4x4 (the layout):
  2 (32 + 64 + 64) + 16 C numbers per image.

Why random features: they need no download and no training (the same weights on every machine,
from the seed), they apply to any image shape, and random convolutional features are known to
keep much of the discriminative power of trained ones for distribution comparison at small scale
(Naeem et al. 2020, "Reliable fidelity and diversity metrics", use random embeddings for the
same reason). Why not W2 on flattened pixels: with a few thousand samples in hundreds of
dimensions its sampling noise is larger than the differences between models (issue 30: 7.54
against 7.11 for 1 and 100 NFE). The value depends on the number of samples (a Frechet distance
of a finite sample is biased upwards): compare models at one sample size, and with the
:meth:`ImageFrechet.floor` of real data at that size (``benchmarks/image_metric.py``,
docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as torch_f
from torch import Tensor

from .frechet import GaussianStats, frechet_distance_from_stats, gaussian_stats
from .two_d import FloorResult

__all__ = ["IMAGE_METRIC", "ImageFrechet"]

IMAGE_METRIC = "image_fd"
"""Key of this metric in ``QualityPoint.metrics``."""

_WIDTHS = (32, 64, 64)
_STRIDES = (1, 2, 2)


class ImageFrechet:
    """Frechet distance between image sets in the features of a fixed random CNN.

    Callable as ``metric(samples, reference) -> float`` (the form
    :func:`~ucgm_lab.search_sampler` and :func:`~ucgm_lab.evaluation.quality_vs_nfe` take).
    The first reference fixes the per-channel standardisation (so that scores against other
    references stay comparable); the statistics of the last few references are cached.

    Args:
        reference: Optional real images, shape (M, C, H, W) or (M, H, W), M >= 2: set now
            (otherwise at the first call).
        seed: Seed of the random weights (the same seed gives the same features everywhere).
        batch_size: Images per forward pass.

    Raises:
        ValueError: Images that are not (N, C, H, W) or (N, H, W) with N >= 2, or of another
            shape than the reference, or with NaN / inf.
    """

    name: ClassVar[str] = IMAGE_METRIC
    """Key of its values in ``QualityPoint.metrics`` (:func:`~ucgm_lab.evaluation.quality_vs_nfe`)."""

    def __init__(
        self, reference: Tensor | None = None, seed: int = 0, batch_size: int = 1024
    ) -> None:
        self.seed, self.batch_size = int(seed), int(batch_size)
        self._weights: list[Tensor] | None = None
        self._key: tuple[Any, ...] | None = None
        self._shape: tuple[int, ...] | None = None
        self._norm: tuple[Tensor, Tensor] | None = None
        self._ref_stats: GaussianStats | None = None
        self._cache: dict[tuple[Any, ...], GaussianStats] = {}
        if reference is not None:
            self.set_reference(reference)

    # ------------------------------------------------------------------ reference
    def set_reference(self, reference: Tensor) -> None:
        """Use ``reference`` (M, C, H, W) as the real images.

        The first reference also fixes the per-channel standardisation and the image shape.
        """
        key = _key(reference)
        if key in self._cache:
            self._ref_stats, self._key = self._cache[key], key
            return
        images = _as_images(reference, "reference")
        if self._norm is None:
            self._shape = tuple(images.shape[1:])
            mean = images.mean(dim=(0, 2, 3))
            std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
            self._norm = (mean[None, :, None, None], std[None, :, None, None])
            self._weights = _random_weights(images.shape[1], self.seed)
        self._ref_stats = gaussian_stats(self.features(images))
        self._key = key
        if len(self._cache) >= 4:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = self._ref_stats

    @property
    def reference_stats(self) -> GaussianStats:
        """The Gaussian of the reference's features (``.mu``, ``.sigma``, ``.n``)."""
        if self._ref_stats is None:
            raise ValueError("No reference images yet: call set_reference(images) first.")
        return self._ref_stats

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """Features of images (N, C, H, W), shape (N, 2 (32 + 64 + 64) + 16 C), float64."""
        if self._weights is None or self._norm is None:
            raise ValueError("No reference images yet: call set_reference(images) first.")
        x = _as_images(images, "images")
        if tuple(x.shape[1:]) != self._shape:
            raise ValueError(
                f"images must have the reference's shape (N, {', '.join(map(str, self._shape))}), "
                f"got {tuple(x.shape)}."
            )
        parts = [
            self._features(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(parts).double()

    def _features(self, x: Tensor) -> Tensor:
        mean, std = self._norm  # type: ignore[misc]
        h = (x - mean) / std
        out = [torch_f.adaptive_avg_pool2d(h, 4).flatten(1)]
        for w, stride in zip(self._weights, _STRIDES, strict=True):  # type: ignore[arg-type]
            h = torch_f.relu(torch_f.conv2d(h, w, stride=stride, padding=1))
            out += [h.mean(dim=(2, 3)), h.flatten(2).std(dim=2)]
        return torch.cat(out, dim=1)

    # ------------------------------------------------------------------ distances
    def distance(self, samples: Tensor) -> float:
        """Frechet distance between ``samples`` (N, C, H, W) and the reference (lower is better)."""
        return frechet_distance_from_stats(
            gaussian_stats(self.features(samples)), self.reference_stats
        )

    def __call__(self, samples: Tensor, reference: Tensor | None = None) -> float:
        """``metric(samples, reference)``: the reference's statistics are cached per tensor."""
        if reference is not None and _key(reference) != self._key:
            self.set_reference(reference)
        return self.distance(samples)

    def floor(self, held_out: Tensor, n: int | None = None, repeats: int = 3) -> FloorResult:
        """The distance of real held-out images (what a perfect model scores at that size).

        Args:
            held_out: Real images not in the reference, shape (N, C, H, W).
            n: Images per draw (default N // repeats); use the size models are scored at.
            repeats: Disjoint draws of n images.
        """
        images = _as_images(held_out, "held_out")
        n = n or len(images) // repeats
        if n < 2 or n * repeats > len(images):
            raise ValueError(
                f"floor needs repeats x n = {repeats} x {n} <= {len(images)} held-out images, n >= 2."
            )
        values = tuple(self.distance(images[i * n : (i + 1) * n]) for i in range(repeats))
        mean = sum(values) / repeats
        std = (sum((v - mean) ** 2 for v in values) / max(repeats - 1, 1)) ** 0.5
        return FloorResult(mean=mean, std=std, values=values, n=n)


def _random_weights(channels: int, seed: int) -> list[Tensor]:
    """He-normal 3x3 kernels of the three layers, from one seeded CPU generator."""
    g = torch.Generator().manual_seed(seed)
    weights, fan_in = [], channels
    for width in _WIDTHS:
        w = torch.randn(width, fan_in, 3, 3, generator=g) * (2.0 / (9 * fan_in)) ** 0.5
        weights.append(w)
        fan_in = width
    return weights


def _as_images(images: Tensor, name: str) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(
            f"{name} must be a tensor of images (N, C, H, W), got {type(images).__name__}."
        )
    x = images.detach().float().cpu()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] < 2:
        raise ValueError(
            f"{name} must be images of shape (N, C, H, W) or (N, H, W) with N >= 2, got "
            f"{tuple(images.shape)}."
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return x


def _key(t: Tensor) -> tuple[Any, ...]:
    return (t.data_ptr(), tuple(t.shape), t._version, t.device.type)
