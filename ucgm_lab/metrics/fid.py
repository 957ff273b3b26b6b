"""FID for CIFAR-10 and ImageNet images with torch-fidelity's InceptionV3, when you have it.

FID (Heusel et al. 2017) is the Frechet distance between Gaussians fitted to the 2048-d pool
features of an InceptionV3 network. Published numbers use the TensorFlow-ported weights that
torch-fidelity loads; this helper uses them too and computes the distance with
:func:`ucgm_lab.metrics.frechet_distance`. Nothing is downloaded: you need

* the package ``torch-fidelity`` (``pip install 'torch-fidelity>=0.3,<0.5'``; it needs a
  torchvision build matching your torch), and
* the weights file ``weights-inception-2015-12-05-6726825d.pth`` (from
  :data:`INCEPTION_WEIGHTS_URL`), given as ``weights=...`` or through the environment variable
  ``UCGM_LAB_INCEPTION_WEIGHTS``.

Both are imported or read lazily, so the rest of the library works without them; when one
is missing, :func:`fid` raises an error that names it. For 8x8 digits use the offline digits
metric (:mod:`ucgm_lab.metrics.digits`) instead: Inception features of 8x8 images mean little.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from .frechet import GaussianStats, frechet_distance_from_stats, gaussian_stats
from .inception import INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL

__all__ = [
    "INCEPTION_WEIGHTS_ENV",
    "INCEPTION_WEIGHTS_FILE",
    "INCEPTION_WEIGHTS_URL",
    "fid",
    "inception_features",
    "load_inception",
    "resolve_inception_weights",
    "to_uint8",
]

INCEPTION_WEIGHTS_ENV = "UCGM_LAB_INCEPTION_WEIGHTS"
_PIP = "pip install 'torch-fidelity>=0.3,<0.5'"


def resolve_inception_weights(weights: str | Path | None = None) -> Path:
    """The Inception weights file: ``weights``, else ``$UCGM_LAB_INCEPTION_WEIGHTS``.

    A folder is accepted if it holds ``weights-inception-2015-12-05-6726825d.pth``.

    Raises:
        FileNotFoundError: Nothing given, or the file does not exist; the message names the
            file, where to download it and how to point to it.
    """
    source = "the argument weights"
    if weights is None:
        weights = os.environ.get(INCEPTION_WEIGHTS_ENV) or None
        source = f"${INCEPTION_WEIGHTS_ENV}"
    how = (
        f"FID needs torch-fidelity's InceptionV3 weights file {INCEPTION_WEIGHTS_FILE}. Download it "
        f"from {INCEPTION_WEIGHTS_URL} on a machine with network access, then pass "
        f"weights='path/to/{INCEPTION_WEIGHTS_FILE}' or set the environment variable "
        f"{INCEPTION_WEIGHTS_ENV} to that path."
    )
    if weights is None:
        raise FileNotFoundError(
            f"No Inception weights given (argument weights and ${INCEPTION_WEIGHTS_ENV} unset). {how}"
        )
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / INCEPTION_WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"The Inception weights file {path} (from {source}) does not exist. {how}"
        )
    return path


def load_inception(
    weights: str | Path | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """torch-fidelity's InceptionV3 returning 2048-d features of uint8 (B, 3, H, W) images.

    Raises:
        FileNotFoundError: The weights file is missing (see :func:`resolve_inception_weights`).
        ImportError: torch-fidelity cannot be imported (the message says how to install it).
    """
    path = resolve_inception_weights(weights)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as exc:  # noqa: BLE001 - a broken torchvision raises more than ImportError
        raise ImportError(
            f"FID needs the package torch-fidelity ({_PIP}; it needs a torchvision build matching "
            f"your torch), which could not be imported ({type(exc).__name__}: {exc})."
        ) from exc
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    return extractor.to(device).eval()


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1], shape (B, C, H, W) with C = 1 or 3, as uint8 (B, 3, H, W) in [0, 255]."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 1 or 3, H, W), got {tuple(images.shape)}.")
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@torch.no_grad()
def inception_features(
    images: Tensor, extractor: nn.Module, batch_size: int = 100, device: str | torch.device = "cpu"
) -> Tensor:
    """2048-d Inception features of images in [-1, 1], shape (N, C, H, W) -> (N, 2048).

    torch-fidelity resizes to 299x299 inside the network.
    """
    parts = []
    for i in range(0, images.shape[0], batch_size):
        out = extractor(to_uint8(images[i : i + batch_size]).to(device))
        parts.append((out[0] if isinstance(out, (tuple, list)) else out).float().cpu())
    return torch.cat(parts)


def fid(
    samples: Tensor,
    reference: Tensor | GaussianStats,
    *,
    weights: str | Path | None = None,
    batch_size: int = 100,
    device: str | torch.device = "cpu",
) -> float:
    """FID between generated images and reference images (or their precomputed statistics).

    Args:
        samples: Generated images in [-1, 1], shape (N, C, H, W), C = 1 or 3 (N >= 2; FID is
            usually reported at N = 50000 and is biased upwards for small N).
        reference: Real images of the same kind, or :class:`~ucgm_lab.metrics.GaussianStats`
            of their Inception features (e.g. of the CIFAR-10 train split, computed once with
            ``gaussian_stats(inception_features(...))``).
        weights: The Inception weights file (default ``$UCGM_LAB_INCEPTION_WEIGHTS``).
        batch_size: Images per forward pass.
        device: Where Inception runs.

    Returns:
        The FID (>= 0, lower is better).

    Raises:
        FileNotFoundError: The weights file ``weights-inception-2015-12-05-6726825d.pth`` is
            missing (the message says where to get it and how to point to it).
        ImportError: torch-fidelity is not installed (the message says how to install it).
    """
    extractor = load_inception(weights, device)
    stats = gaussian_stats(inception_features(samples, extractor, batch_size, device))
    if not isinstance(reference, GaussianStats):
        reference = gaussian_stats(inception_features(reference, extractor, batch_size, device))
    return frechet_distance_from_stats(stats, reference)
