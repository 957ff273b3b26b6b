"""The shard files of a latent folder: their names, writing, checking and reading.

``shard-XXXXX.safetensors`` holds latents (n, C, H, W), latents_flip (n, C, H, W) and labels
(n,) int64; every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..checkpoint import atomic_write

__all__ = [
    "FLIP_KEY",
    "INDEX_FILE",
    "LABEL_KEY",
    "LATENT_KEY",
    "LatentShardError",
    "STATS_FILE",
    "inspect_shard",
    "read_shard",
    "shard_name",
    "write_shard",
]

LATENT_KEY = "latents"
FLIP_KEY = "latents_flip"
LABEL_KEY = "labels"
INDEX_FILE = "index.json"
STATS_FILE = "stats.safetensors"


class LatentShardError(RuntimeError):
    """A latent shard, index or statistics file is missing, corrupt or inconsistent."""


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00042.safetensors``."""
    return f"shard-{index:05d}.safetensors"


# ---------------------------------------------------------------------- shards
def write_shard(
    path: str | Path,
    latents: Tensor,
    latents_flip: Tensor,
    labels: Tensor,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Atomically write one shard.

    Args:
        path: Destination ``.safetensors`` file.
        latents: Shape (n, C, H, W), floating.
        latents_flip: Latents of the horizontally flipped images, shape (n, C, H, W).
        labels: Class ids, shape (n,).
        metadata: String metadata stored in the safetensors header (e.g. the shard number and
            a digest of its source files, used to resume extraction).

    Returns:
        The destination path.
    """
    if (
        latents.ndim != 4
        or latents_flip.shape != latents.shape
        or labels.shape != (latents.shape[0],)
    ):
        raise ValueError(
            f"shard tensors disagree: latents {tuple(latents.shape)}, latents_flip "
            f"{tuple(latents_flip.shape)}, labels {tuple(labels.shape)}."
        )
    tensors = {
        LATENT_KEY: latents.detach().contiguous().cpu(),
        FLIP_KEY: latents_flip.detach().contiguous().cpu(),
        LABEL_KEY: labels.detach().to(torch.int64).contiguous().cpu(),
    }
    meta = {"count": str(latents.shape[0]), **(metadata or {})}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def inspect_shard(path: str | Path) -> dict[str, Any]:
    """Read and check a shard's header without loading its tensors.

    Returns:
        ``{"count", "shape" (C, H, W), "dtype", "metadata"}``.

    Raises:
        LatentShardError: Naming the file, if it is missing, unreadable, truncated or lacks
            the shard tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentShardError(f"Latent shard {path} does not exist.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            keys = set(fh.keys())
            missing = {LATENT_KEY, FLIP_KEY, LABEL_KEY} - keys
            if missing:
                raise LatentShardError(f"Latent shard {path} lacks the tensors {sorted(missing)}.")
            shape = tuple(fh.get_slice(LATENT_KEY).get_shape())
            flip_shape = tuple(fh.get_slice(FLIP_KEY).get_shape())
            label_shape = tuple(fh.get_slice(LABEL_KEY).get_shape())
            dtype = fh.get_slice(LATENT_KEY).get_dtype()
            metadata = dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, LatentShardError):
            raise
        raise LatentShardError(
            f"Latent shard {path} is corrupt or truncated ({type(exc).__name__}: {exc}). Delete it "
            "and run scale/extract_latents.py again: finished shards are kept and only this one "
            "is re-encoded."
        ) from exc
    if len(shape) != 4 or flip_shape != shape or label_shape != (shape[0],):
        raise LatentShardError(
            f"Latent shard {path} has inconsistent shapes: latents {shape}, latents_flip "
            f"{flip_shape}, labels {label_shape}."
        )
    return {
        "count": int(shape[0]),
        "shape": tuple(int(s) for s in shape[1:]),
        "dtype": dtype,
        "metadata": metadata,
    }


def read_shard(path: str | Path) -> dict[str, Tensor]:
    """Load all tensors of a shard.

    Raises:
        LatentShardError: Naming the file, if it is missing or corrupt.
    """
    path = Path(path)
    inspect_shard(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise LatentShardError(
            f"Could not read latent shard {path} ({type(exc).__name__}: {exc})."
        ) from exc
