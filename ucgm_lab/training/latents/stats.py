"""Per-channel statistics of the latents (``stats.safetensors``) and the normalizer built on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..checkpoint import atomic_write
from .shards import STATS_FILE, LatentShardError

__all__ = [
    "LatentNormalizer",
    "LatentStats",
    "Normalization",
    "channel_moments",
]

Normalization = Literal["per_channel", "scalar", "none"]


@dataclass(frozen=True)
class LatentStats:
    """Per-channel statistics of the latents (``stats.safetensors``).

    Attributes:
        mean: Shape (C,), float64.
        std: Shape (C,), float64.
        count: Number of values per channel that went into them.
    """

    mean: Tensor
    std: Tensor
    count: int

    @classmethod
    def from_moments(cls, count: int, total: Tensor, total_sq: Tensor) -> LatentStats:
        """From per-channel count, sum and sum of squares (float64), e.g. summed over ranks."""
        if count < 2:
            raise ValueError(f"need at least 2 values per channel, got {count}.")
        mean = total / count
        var = (total_sq - count * mean * mean) / (count - 1)
        return cls(mean=mean.double(), std=var.clamp_min(0).sqrt().double(), count=int(count))

    def save(self, path: str | Path) -> Path:
        """Atomically write as safetensors."""
        tensors = {"mean": self.mean.double().contiguous(), "std": self.std.double().contiguous()}
        return atomic_write(
            path, lambda tmp: save_file(tensors, tmp, metadata={"count": str(self.count)})
        )

    @classmethod
    def load(cls, path: str | Path) -> LatentStats:
        """Read from safetensors; errors name the file."""
        path = Path(path)
        if not path.is_file():
            raise LatentShardError(f"Latent statistics file {path} does not exist.")
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as fh:
                count = int((fh.metadata() or {}).get("count", "0"))
            return cls(mean=tensors["mean"], std=tensors["std"], count=count)
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise LatentShardError(f"Latent statistics file {path} is corrupt ({exc}).") from exc


def channel_moments(latents: Tensor) -> tuple[int, Tensor, Tensor]:
    """Per-channel count, sum and sum of squares (float64) of latents of shape (n, C, H, W)."""
    x = latents.double().transpose(0, 1).reshape(latents.shape[1], -1)
    return x.shape[1], x.sum(1), (x * x).sum(1)


@dataclass(frozen=True)
class LatentNormalizer:
    """Maps stored latents to the model's space and back.

    ``per_channel``: (x - mean_c) / std_c; ``scalar``: x * scale (the SD-VAE convention
    0.18215); ``none``: identity.

    Attributes:
        mode: "per_channel", "scalar" or "none".
        mean: Shape (C,) for per_channel, else None.
        std: Shape (C,) for per_channel, else None.
        scale: Factor for "scalar".
    """

    mode: Normalization = "per_channel"
    mean: Tensor | None = None
    std: Tensor | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("per_channel", "scalar", "none"):
            raise ValueError(
                f"normalization must be per_channel, scalar or none, got {self.mode!r}."
            )
        if self.mode == "per_channel" and (self.mean is None or self.std is None):
            raise ValueError("per_channel normalization needs the channel mean and std.")
        if self.mode == "per_channel" and bool((self.std <= 0).any()):
            raise ValueError(f"per_channel normalization needs std > 0, got {self.std.tolist()}.")

    @classmethod
    def from_folder(
        cls, root: str | Path, mode: Normalization, scale: float = 1.0
    ) -> LatentNormalizer:
        """Build from a latent (or run) folder's ``stats.safetensors`` when mode is per_channel."""
        if mode == "per_channel":
            stats = LatentStats.load(Path(root) / STATS_FILE)
            return cls(mode, stats.mean.float(), stats.std.float(), scale)
        return cls(mode, None, None, scale)

    def _channel(self, v: Tensor, like: Tensor) -> Tensor:
        return v.to(device=like.device, dtype=like.dtype)[None, :, None, None]

    def normalize(self, x: Tensor) -> Tensor:
        """Stored latents (B, C, H, W) -> model space (float32 or x's float64)."""
        x = x.float() if x.dtype != torch.float64 else x
        if self.mode == "per_channel":
            return (x - self._channel(self.mean, x)) / self._channel(self.std, x)
        if self.mode == "scalar":
            return x * self.scale
        return x

    def denormalize(self, x: Tensor) -> Tensor:
        """Model space (B, C, H, W) -> the autoencoder's latent space."""
        if self.mode == "per_channel":
            return x * self._channel(self.std, x) + self._channel(self.mean, x)
        if self.mode == "scalar":
            return x / self.scale
        return x
