"""Small synthetic inputs for rehearsals and tests: an image folder, a tiny autoencoder, latents.

Nothing here is downloaded. :func:`make_image_folder` draws class-coloured images in the
ImageFolder layout that ``scale.extract_latents`` reads; :func:`tiny_autoencoder` builds a
randomly initialised diffusers ``AutoencoderKL`` from :data:`TINY_AUTOENCODER_CONFIG`
(16 x 16 RGB <-> 4 x 4 x 4 latents) and saves it with ``save_pretrained``;
:func:`make_latent_folder` writes synthetic latents directly (shards, statistics and index,
as extraction would).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucgm_lab.training.latents import (
    STATS_FILE,
    LatentIndex,
    LatentStats,
    ShardInfo,
    channel_moments,
    file_sha256,
    shard_name,
    write_shard,
)

__all__ = [
    "TINY_AUTOENCODER_CONFIG",
    "make_image_folder",
    "make_latent_folder",
    "tiny_autoencoder",
]

TINY_AUTOENCODER_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "block_out_channels": (8, 8, 8),
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 16,
}
"""A 3-level ``AutoencoderKL`` (two downsamplings): 16 x 16 RGB <-> 4 x 4 x 4 latents."""


def tiny_autoencoder(path: str | Path, seed: int = 0) -> Any:
    """Build the randomly initialised :data:`TINY_AUTOENCODER_CONFIG` autoencoder, save it.

    Args:
        path: Folder for ``save_pretrained`` (what ``autoencoder.pretrained`` and
            ``extract_latents --autoencoder`` take).
        seed: Seed of the initialisation.

    Returns:
        The ``diffusers.AutoencoderKL``.
    """
    from diffusers import AutoencoderKL

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = AutoencoderKL(**TINY_AUTOENCODER_CONFIG)
    ae.save_pretrained(path)
    return ae


def make_image_folder(
    root: str | Path, num_classes: int = 4, per_class: int = 16, size: int = 24, seed: int = 0
) -> list[str]:
    """Write ``num_classes * per_class`` PNGs as ``root/class_XX/img_YYY.png`` (ImageFolder).

    Class c is a smooth colour field of its own hue with a bright square at a class-dependent
    place, plus per-image noise and a random shift, so that classes differ visibly and images
    of one class vary.

    Returns:
        The class folder names (sorted: their positions are the class ids).
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
    names = [f"class_{c:02d}" for c in range(num_classes)]
    for c, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        hue = 2 * math.pi * c / num_classes
        colour = 0.5 + 0.4 * np.cos(hue + np.array([0.0, 2.1, 4.2]))
        for i in range(per_class):
            field = colour * (0.6 + 0.4 * (xx if c % 2 else yy))[..., None]
            image = field + 0.08 * rng.standard_normal((size, size, 3))
            q = size // 3
            r0, c0 = (c * q) % (size - q), (c * 2 * q + int(rng.integers(0, 3))) % (size - q)
            image[r0 : r0 + q, c0 : c0 + q] = 1.0
            pixels = (image.clip(0, 1) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
    return names


def make_latent_folder(
    root: str | Path,
    n: int = 32,
    shape: tuple[int, int, int] = (4, 4, 4),
    num_classes: int = 4,
    shard_size: int = 12,
    seed: int = 0,
) -> LatentIndex:
    """Write n synthetic latents (class-dependent means) as shards + statistics + index.

    Latent i has class ``i mod num_classes``; its flip is the latent mirrored along the last
    axis. Values are about 2 + 3 N(class mean, 0.3^2), so per-channel normalisation matters.
    """
    root = Path(root)
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    base = torch.randn(num_classes, *shape, generator=g)
    latents = 2.0 + 3.0 * (base[labels] + 0.3 * torch.randn(n, *shape, generator=g))
    flips = latents.flip(-1)
    root.mkdir(parents=True, exist_ok=True)
    infos = []
    for i in range(math.ceil(n / shard_size)):
        sl = slice(i * shard_size, min(n, (i + 1) * shard_size))
        path = write_shard(
            root / shard_name(i), latents[sl], flips[sl], labels[sl], {"shard": str(i)}
        )
        infos.append(ShardInfo(shard_name(i), sl.stop - sl.start, file_sha256(path)))
    count, s, ss = channel_moments(torch.cat([latents, flips]))
    LatentStats.from_moments(count, s, ss).save(root / STATS_FILE)
    index = LatentIndex(tuple(infos), shape, num_classes, "F32", {"synthetic": True})
    index.save(root)
    return index
