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

The package: :mod:`.shards` (the shard files: names, write, inspect, read; the folder's file
names), :mod:`.index` (``index.json``: :class:`LatentIndex`), :mod:`.stats` (per-channel
statistics and :class:`LatentNormalizer`) and :mod:`.source` (:class:`LatentShardDataSource`);
every name is importable from ``ucgm_lab.training.latents`` as before.
"""

from ..checkpoint import file_sha256
from .index import INDEX_FORMAT_VERSION as INDEX_FORMAT_VERSION
from .index import LatentIndex, ShardInfo
from .shards import (
    FLIP_KEY,
    INDEX_FILE,
    LABEL_KEY,
    LATENT_KEY,
    STATS_FILE,
    LatentShardError,
    inspect_shard,
    read_shard,
    shard_name,
    write_shard,
)
from .source import LatentShardDataSource
from .stats import LatentNormalizer, LatentStats
from .stats import Normalization as Normalization
from .stats import channel_moments as channel_moments

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
