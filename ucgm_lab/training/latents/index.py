"""``index.json`` of a latent folder: the shards, their counts and sha256, the latent shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write
from .shards import INDEX_FILE, LatentShardError

__all__ = [
    "INDEX_FORMAT_VERSION",
    "LatentIndex",
    "ShardInfo",
]

INDEX_FORMAT_VERSION = 1


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
