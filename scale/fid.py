"""FID pieces for scale/sample.py: per-process feature moments, reference stats, extractors.

Every process accumulates the count, the sum and the sum of outer products of its features
centred at a shift ``c`` shared by all processes (the reference mean when there is one):

    n,  s = sum_i (f_i - c),  S = sum_i (f_i - c)(f_i - c)^T          (float64)

These add across processes (one all-reduce of d + d^2 numbers, no images or features are
gathered), and give the mean mu = c + s / n and the unbiased covariance
sigma = (S - s s^T / n) / (n - 1), exactly what ``numpy.cov`` (ddof = 1) gives on the pooled
features. Centring at a nearby shift keeps the float64 sums accurate. The Fréchet distance
itself is :func:`ucgm_lab.metrics.frechet.frechet_distance`.

The Inception network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF-ported
weights that FID numbers in papers use), imported lazily so that everything else works without
torch-fidelity and torchvision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ucgm_lab.metrics.frechet import frechet_distance
from ucgm_lab.metrics.inception import INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL
from ucgm_lab.training.checkpoint import atomic_write

__all__ = [
    "INCEPTION_WEIGHTS_FILE",
    "INCEPTION_WEIGHTS_URL",
    "FeatureMoments",
    "PixelFeatures",
    "ReferenceStats",
    "fid_from_moments",
    "load_inception",
]


@dataclass(frozen=True)
class ReferenceStats:
    """Mean and covariance of reference features (e.g. ADM's ImageNet 256 reference batch).

    Attributes:
        mu: Shape (d,), float64.
        sigma: Shape (d, d), float64.
    """

    mu: np.ndarray
    sigma: np.ndarray

    @classmethod
    def load(cls, path: str | Path, *, allow_unverified: bool = False) -> ReferenceStats:
        """Read a ``.npz`` with arrays ``mu`` and ``sigma`` (and the digest ``sha256``).

        Files written by :meth:`save` carry a sha256 of mu and sigma, which is verified; a
        file without one is refused unless ``allow_unverified`` (statistics from elsewhere,
        e.g. ADM's reference batches: ``evaluation.reference_stats_unverified: true``).

        Raises:
            FileNotFoundError: If the file is missing.
            ValueError: Naming the file, if it lacks mu/sigma, their shapes disagree, they are
                not finite, the digest is missing (unless allowed) or does not match.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Reference statistics {path} do not exist (a .npz with mu and sigma)."
            )
        try:
            with np.load(path) as data:
                mu, sigma = (
                    np.asarray(data["mu"], np.float64),
                    np.asarray(data["sigma"], np.float64),
                )
                stored = str(data["sha256"]) if "sha256" in data.files else None
                digest = _stats_digest(data["mu"], data["sigma"])
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(
                f"{path} must be a .npz holding arrays 'mu' (d,) and 'sigma' (d, d) ({exc})."
            ) from exc
        if stored is None and not allow_unverified:
            raise ValueError(
                f"{path} carries no digest (sha256) of mu and sigma, so an edit could not be "
                "detected; statistics written by ucgm-lab carry one. For statistics from "
                "elsewhere (e.g. ADM's reference batches) set "
                "evaluation.reference_stats_unverified: true "
                "(ReferenceStats.load(path, allow_unverified=True))."
            )
        if stored is not None and stored != digest:
            raise ValueError(
                f"{path} fails its digest: mu or sigma were changed after it was written. "
                "Recompute the statistics."
            )
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(
                f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; expected (d,) and (d, "
                "d)."
            )
        for name, array in (("mu", mu), ("sigma", sigma)):
            if not np.isfinite(array).all():
                raise ValueError(
                    f"{path}: {name} contains NaN or infinite values; reference statistics must "
                    "be finite (recompute them from the reference images)."
                )
        return cls(mu, sigma)

    def save(self, path: str | Path) -> Path:
        """Write atomically as ``.npz``: mu, sigma and ``sha256``, their digest."""
        mu, sigma = np.asarray(self.mu), np.asarray(self.sigma)
        digest = np.array(_stats_digest(mu, sigma))

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a handle: np.savez would append .npz to a name
                np.savez(fh, mu=mu, sigma=sigma, sha256=digest)

        return atomic_write(path, write)


def _stats_digest(mu: np.ndarray, sigma: np.ndarray) -> str:
    """sha256 over each array's name, dtype, shape and bytes (hex)."""
    digest = hashlib.sha256()
    for name, array in (("mu", mu), ("sigma", sigma)):
        a = np.ascontiguousarray(array)
        digest.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class FeatureMoments:
    """Running count, shifted sum and shifted scatter of feature vectors (float64).

    Args:
        shift: The centre c, shape (d,); the same on every process.
        device: Where the sums live (the device of the features).
    """

    def __init__(self, shift: Tensor | np.ndarray, device: torch.device | str = "cpu") -> None:
        self.shift = torch.as_tensor(np.asarray(shift), dtype=torch.float64, device=device)
        d = self.shift.shape[0]
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.total = torch.zeros(d, dtype=torch.float64, device=device)
        self.scatter = torch.zeros(d, d, dtype=torch.float64, device=device)

    def update(self, features: Tensor) -> None:
        """Add features of shape (n, d)."""
        f = features.to(device=self.shift.device, dtype=torch.float64) - self.shift
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.scatter += f.T @ f

    def all_reduce(self, reduce: Any) -> None:
        """Sum the moments over processes with ``reduce(tensor, "sum")``.

        scale/sample.py passes ``ucgm_lab.training.collectives.all_reduce``; accelerate's
        ``reduce`` has the same signature.
        """
        packed = torch.cat([self.count.reshape(1), self.total, self.scatter.flatten()])
        packed = reduce(packed, "sum")
        d = self.total.shape[0]
        self.count = packed[0].clone()
        self.total = packed[1 : 1 + d].clone()
        self.scatter = packed[1 + d :].reshape(d, d).clone()

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu (d,), sigma (d, d)) as float64 numpy arrays (unbiased covariance)."""
        n = float(self.count)
        if n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {int(n)}.")
        s, scatter = self.total.cpu(), self.scatter.cpu()
        mu = self.shift.cpu() + s / n
        sigma = (scatter - torch.outer(s, s) / n) / (n - 1)
        sigma = 0.5 * (sigma + sigma.T)
        return mu.numpy(), sigma.numpy()


def fid_from_moments(moments: FeatureMoments, reference: ReferenceStats) -> float:
    """Fréchet distance between the accumulated features and the reference statistics."""
    mu, sigma = moments.stats()
    if mu.shape != reference.mu.shape:
        raise ValueError(
            f"features have dimension {mu.shape[0]}, the reference statistics "
            f"{reference.mu.shape[0]}."
        )
    return frechet_distance(mu, sigma, reference.mu, reference.sigma)


class PixelFeatures(nn.Module):
    """Smoke-test features: images average-pooled to ``size`` x ``size``, scaled to [0, 1].

    Not FID: a cheap, dependency-free stand-in that exercises the whole evaluation path.
    """

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.size = size

    @property
    def dim(self) -> int:
        """Feature dimension 3 * size ** 2."""
        return 3 * self.size * self.size

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) -> (B, 3 * size ** 2) float32."""
        x = F.adaptive_avg_pool2d(images.float() / 255.0, self.size)
        return x.flatten(1)


class _InceptionFeatures(nn.Module):
    """torch-fidelity's InceptionV3 returning the 2048-d pool features."""

    dim = 2048

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) -> (B, 2048) float32."""
        return self.extractor(images)[0]


def load_inception(weights: str | Path | None, device: torch.device | str = "cpu") -> nn.Module:
    """torch-fidelity's InceptionV3 (2048-d features) from a local weights file.

    Raises:
        FileNotFoundError: If ``weights`` is None or missing (names the file to get).
        ImportError: If torch-fidelity (and torchvision, which it needs) cannot be imported.
    """
    if weights is None or not Path(weights).is_file():
        where = (
            "evaluation.inception_weights is not set"
            if weights is None
            else f"{weights} does not exist"
        )
        raise FileNotFoundError(
            f"FID needs torch-fidelity's InceptionV3 weights, but {where}. Download "
            f"{INCEPTION_WEIGHTS_URL} on a machine with network access and set "
            "evaluation.inception_weights to its path (e.g. --override "
            "evaluation.inception_weights=PATH); evaluation.features=none only generates images."
        )
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as exc:  # noqa: BLE001 - torchvision import errors are not all ImportErrors
        raise ImportError(
            "FID needs torch-fidelity (pip install 'torch-fidelity>=0.3,<0.5', which needs a "
            "torchvision build matching your torch) but it could not be imported "
            f"({type(exc).__name__}: {exc}). Use evaluation.features=none to only generate images."
        ) from exc
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
    )
    return _InceptionFeatures(extractor).to(device).eval()
