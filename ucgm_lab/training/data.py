"""Data sources for the trainer: deterministic, shardable across processes, resumable exactly.

A data source yields batches ``(x, y)`` and has a ``state_dict``: where it is in its stream.
The stream of global batches depends only on the seed, so N steps in one go and N/2 + N/2
steps with a resume in between see the same batches. With several processes each rank takes
an interleaved slice of every global batch (rank r gets items r, r + W, r + 2W, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

__all__ = ["Batch", "DataSource", "TensorDataSource"]


@dataclass(frozen=True)
class Batch:
    """One process's share of a global batch.

    Attributes:
        x: Data, shape (b, ...).
        y: Class ids, shape (b,), or None.
    """

    x: Tensor
    y: Tensor | None


class DataSource(Protocol):
    """What the trainer needs from data: batches and an exact position."""

    def next_batch(self) -> Batch:
        """The next batch for this process."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The position in the stream."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position returned by :meth:`state_dict`."""
        ...


class TensorDataSource:
    """Shuffled epochs over in-memory tensors.

    Every epoch uses a fresh permutation drawn from ``seed + epoch``; batches never straddle an
    epoch boundary (the remainder of an epoch is dropped, like ``drop_last=True``).

    Args:
        x: Data, shape (N, ...).
        y: Optional class ids, shape (N,).
        batch_size: Global batch size (summed over processes); must be divisible by
            ``world_size``.
        seed: Seed of the shuffling.
        rank: This process's index.
        world_size: Number of processes.
    """

    global_order = True
    """The stream of global batches depends only on the seed and the position, not on the
    number of processes: a resume with another process count keeps the data order."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None = None,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not torch.is_tensor(x) or x.ndim < 2:
            raise ValueError(
                f"x must be a tensor of shape (N, ...), got {getattr(x, 'shape', type(x))}."
            )
        if y is not None and (not torch.is_tensor(y) or y.shape != (x.shape[0],)):
            raise ValueError(
                f"y must have shape ({x.shape[0]},) to match x, got {getattr(y, 'shape', None)}."
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by the number of processes {world_size}."
            )
        if batch_size > x.shape[0]:
            raise ValueError(f"batch_size {batch_size} exceeds the data set size {x.shape[0]}.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}), got {rank}.")
        self.x, self.y = x, y
        self.batch_size, self.seed = batch_size, int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._perm: Tensor | None = None

    @property
    def batches_per_epoch(self) -> int:
        """Number of global batches in one epoch."""
        return self.x.shape[0] // self.batch_size

    def _permutation(self) -> Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(self.x.shape[0], generator=g)
        return self._perm

    def next_batch(self) -> Batch:
        """The next batch for this process (moves the position)."""
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position, self._perm = self.epoch + 1, 0, None
        start = self.position * self.batch_size
        idx = self._permutation()[start : start + self.batch_size][self.rank :: self.world_size]
        self.position += 1
        return Batch(self.x[idx], None if self.y is None else self.y[idx])

    def state_dict(self) -> dict[str, Any]:
        """Epoch and batch position (the data and seed are the caller's)."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "size": int(self.x.shape[0]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the data set size and seed must match."""
        if int(state["size"]) != self.x.shape[0] or int(state["seed"]) != self.seed:
            raise ValueError(
                f"The checkpoint's data position is for a data set of {state['size']} items with seed "
                f"{state['seed']}; this run has {self.x.shape[0]} items and seed {self.seed}."
            )
        self.epoch, self.position, self._perm = int(state["epoch"]), int(state["position"]), None
