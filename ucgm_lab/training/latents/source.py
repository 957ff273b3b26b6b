"""The resumable, rank-sharded data source over a latent folder (the trainer's contract)."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..checkpoint import file_sha256
from ..data import Batch
from .index import LatentIndex
from .shards import (
    FLIP_KEY,
    INDEX_FILE,
    LABEL_KEY,
    LATENT_KEY,
    LatentShardError,
    inspect_shard,
    read_shard,
)
from .stats import LatentNormalizer

__all__ = [
    "LatentShardDataSource",
]


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
