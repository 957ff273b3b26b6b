"""Sharded safetensors latents: the on-disk format and a resumable, rank-sharded data source.

Layout of a latent folder (written by ``scale/extract_latents.py``)::

    shard-00000.safetensors   latents (n, C, H, W), latents_flip (n, C, H, W), labels (n,) int64
    shard-00001.safetensors   ...
    stats.safetensors         per-channel mean (C,), std (C,) and count of the latents
    index.json                shard names, item counts and sha256, latent shape, classes

Every file is written atomically (:func:`ucgm_lab.training.checkpoint.atomic_write`), so a
crash never leaves a half-written file under its real name. ``index.json`` is written last:
a folder without it is an unfinished extraction.

:class:`LatentShardDataSource` follows the trainer's data-source contract exactly like
:class:`~ucgm_lab.training.data.TensorDataSource`: the global batch order depends only on the
seed and the epoch (a permutation drawn from ``seed * 1_000_003 + epoch``, followed by the
horizontal-flip coin of every item), rank r takes items r, r + W, ... of every global batch,
and ``state_dict`` records (epoch, position), so a resumed run sees the same batches.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .checkpoint import atomic_write, file_sha256
from .data import Batch

__all__ = [
    "FLIP_KEY",
    "INDEX_FILE",
    "LABEL_KEY",
    "LATENT_KEY",
    "STATS_FILE",
    "LatentIndex",
    "LatentNormalizer",
    "LatentShardDataSource",
    "LatentShardError",
    "LatentStats",
    "ShardInfo",
    "file_sha256",
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
INDEX_FORMAT_VERSION = 1

Normalization = Literal["per_channel", "scalar", "none"]


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


# ---------------------------------------------------------------------- index and statistics
@dataclass(frozen=True)
class ShardInfo:
    """One shard of the index.

    Attributes:
        name: File name inside the latent folder.
        count: Number of items.
        sha256: Hex digest of the file (None if not recorded).
    """

    name: str
    count: int
    sha256: str | None = None


@dataclass(frozen=True)
class LatentIndex:
    """The contents of ``index.json``.

    Attributes:
        shards: The shards in global item order.
        latent_shape: (C, H, W).
        num_classes: Number of classes of the labels.
        dtype: Storage dtype of the latents (e.g. "F16").
        metadata: Free-form provenance (autoencoder, image size, class names, ...).
    """

    shards: tuple[ShardInfo, ...]
    latent_shape: tuple[int, int, int]
    num_classes: int
    dtype: str = "F32"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Total number of items."""
        return sum(s.count for s in self.shards)

    def to_json(self) -> str:
        """Serialise (with a format version)."""
        payload = {
            "format_version": INDEX_FORMAT_VERSION,
            "latent_shape": list(self.latent_shape),
            "num_classes": self.num_classes,
            "dtype": self.dtype,
            "total": self.total,
            "shards": [{"name": s.name, "count": s.count, "sha256": s.sha256} for s in self.shards],
            "metadata": self.metadata,
        }
        return json.dumps(payload, indent=2, sort_keys=True)

    def save(self, root: str | Path) -> Path:
        """Atomically write ``root / index.json``."""
        text = self.to_json()
        return atomic_write(Path(root) / INDEX_FILE, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, root: str | Path) -> LatentIndex:
        """Read ``root / index.json``.

        Raises:
            LatentShardError: If it is missing (an unfinished extraction) or malformed.
        """
        path = Path(root) / INDEX_FILE
        if not path.is_file():
            raise LatentShardError(
                f"{path} does not exist: {root} is not a finished latent folder. Run "
                "scale/extract_latents.py (again: it resumes and skips finished shards)."
            )
        try:
            raw = json.loads(path.read_text())
            if raw.get("format_version") != INDEX_FORMAT_VERSION:
                raise ValueError(
                    f"format_version {raw.get('format_version')!r}, expected {INDEX_FORMAT_VERSION}"
                )
            shards = tuple(
                ShardInfo(s["name"], int(s["count"]), s.get("sha256")) for s in raw["shards"]
            )
            shape = tuple(int(v) for v in raw["latent_shape"])
            if len(shape) != 3 or not shards:
                raise ValueError(
                    "latent_shape must have 3 entries and there must be at least one shard"
                )
            return cls(
                shards,
                shape,
                int(raw["num_classes"]),
                str(raw.get("dtype", "F32")),
                dict(raw.get("metadata", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LatentShardError(f"{path} is not a valid latent index ({exc}).") from exc


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


# ---------------------------------------------------------------------- data source
class LatentShardDataSource:
    """Shuffled epochs over a sharded latent folder, split across processes, resumable exactly.

    Batches never straddle an epoch boundary (the remainder of an epoch is dropped). With
    ``flip`` every item of an epoch uses its flipped latent with probability 1/2 (a coin drawn
    with the epoch's permutation, so it is also reproduced on resume).

    Reading: by default the shards are memory-mapped and only the rows of a batch are read
    (``safe_open`` slices); ``preload=True`` loads everything into memory first (small sets).

    Args:
        root: The latent folder (with ``index.json``).
        batch_size: Global batch size (summed over processes); divisible by ``world_size``.
        seed: Seed of the order and the flips.
        rank: This process's index.
        world_size: Number of processes.
        flip: Use the flipped latents as augmentation.
        normalizer: Applied to every batch (default: identity).
        preload: Load all shards into memory at construction.
        verify_checksums: Check every shard's sha256 against the index at construction.

    Raises:
        LatentShardError: Naming the file, for a missing index or a missing, corrupt or
            inconsistent shard (all shards' headers are checked at construction).
    """

    global_order = True
    """The stream of global batches depends only on the seed and the position, not on the
    number of processes: a resume with another process count keeps the data order."""

    def __init__(
        self,
        root: str | Path,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        flip: bool = True,
        normalizer: LatentNormalizer | None = None,
        preload: bool = False,
        verify_checksums: bool = False,
    ) -> None:
        self.root = Path(root)
        self.index = LatentIndex.load(self.root)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by the number of processes "
                f"{world_size}."
            )
        if batch_size > self.index.total:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {self.index.total} latents in {self.root}."
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}), got {rank}.")
        self.batch_size, self.seed = batch_size, int(seed)
        self.rank, self.world_size = rank, world_size
        self.flip = bool(flip)
        self.normalizer = normalizer or LatentNormalizer("none")
        self.paths = [self.root / s.name for s in self.index.shards]
        for info, path in zip(self.index.shards, self.paths, strict=True):
            head = inspect_shard(path)
            if head["count"] != info.count or head["shape"] != self.index.latent_shape:
                raise LatentShardError(
                    f"Latent shard {path} holds {head['count']} latents of shape {head['shape']}; "
                    f"{self.root / INDEX_FILE} says {info.count} of shape "
                    f"{self.index.latent_shape}."
                )
            if verify_checksums and info.sha256 is not None and file_sha256(path) != info.sha256:
                raise LatentShardError(
                    f"Latent shard {path} does not match its sha256 in the index: it is corrupt."
                )
        self._starts = [0]
        for info in self.index.shards:
            self._starts.append(self._starts[-1] + info.count)
        self._memory: list[dict[str, Tensor]] | None = None
        if preload:
            self._memory = [read_shard(p) for p in self.paths]
        self._handles: dict[int, Any] = {}
        self.epoch, self.position = 0, 0
        self._order: tuple[Tensor, Tensor] | None = None

    @property
    def size(self) -> int:
        """Number of latents."""
        return self.index.total

    @property
    def batches_per_epoch(self) -> int:
        """Number of global batches in one epoch."""
        return self.size // self.batch_size

    def _epoch_order(self) -> tuple[Tensor, Tensor]:
        if self._order is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.size, generator=g)
            flips = torch.rand(self.size, generator=g) < 0.5
            self._order = (perm, flips if self.flip else torch.zeros_like(flips))
        return self._order

    def _read(self, item: int, flipped: bool) -> tuple[Tensor, int]:
        shard = bisect.bisect_right(self._starts, item) - 1
        row = item - self._starts[shard]
        key = FLIP_KEY if flipped else LATENT_KEY
        try:
            if self._memory is not None:
                tensors = self._memory[shard]
                return tensors[key][row], int(tensors[LABEL_KEY][row])
            handle = self._handles.get(shard)
            if handle is None:
                handle = self._handles[shard] = safe_open(str(self.paths[shard]), framework="pt")
            x = handle.get_slice(key)[row : row + 1][0]
            y = int(handle.get_slice(LABEL_KEY)[row : row + 1][0])
            return x, y
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise LatentShardError(
                f"Could not read item {row} of latent shard {self.paths[shard]} "
                f"({type(exc).__name__}: {exc})."
            ) from exc

    def read_items(self, indices: Tensor, flips: Tensor) -> Batch:
        """Read global items (flipped where ``flips`` is true), normalised, with their labels."""
        xs, ys = [], []
        for item, flipped in zip(indices.tolist(), flips.tolist(), strict=True):
            x, y = self._read(item, flipped)
            xs.append(x)
            ys.append(y)
        x = self.normalizer.normalize(torch.stack(xs))
        return Batch(x, torch.tensor(ys, dtype=torch.long))

    def next_batch(self) -> Batch:
        """This process's share of the next global batch (moves the position).

        Returns:
            :class:`~ucgm_lab.training.data.Batch` with x of shape (batch_size / world_size,
            C, H, W) (float32, normalised) and y of shape (batch_size / world_size,).
        """
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        perm, flips = self._epoch_order()
        start = self.position * self.batch_size
        idx = perm[start : start + self.batch_size][self.rank :: self.world_size]
        self.position += 1
        return self.read_items(idx, flips[idx])

    def state_dict(self) -> dict[str, Any]:
        """Epoch and batch position, with what they refer to (seed, size, batch size, flips)."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "size": self.size,
            "batch_size": self.batch_size,
            "flip": self.flip,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the data set, seed, batch size and flips must match."""
        mine = self.state_dict()
        for key in ("seed", "size", "batch_size", "flip"):
            if key in state and state[key] != mine[key]:
                raise ValueError(
                    f"The checkpoint's data position is for {key}={state[key]!r}; this run has "
                    f"{key}={mine[key]!r} (latents in {self.root}). Exact resume needs the same "
                    "data and settings."
                )
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None
