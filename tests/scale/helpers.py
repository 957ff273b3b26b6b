"""Shared helpers of the scale/ tests: synthetic latent folders and a tiny autoencoder."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

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

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "scale" / "configs" / "tiny_cpu.yaml"


def make_latent_folder(
    root: Path,
    n: int = 32,
    shape: tuple[int, int, int] = (4, 4, 4),
    num_classes: int = 4,
    shard_size: int = 12,
    seed: int = 0,
) -> LatentIndex:
    """Write n synthetic latents (class-dependent means) as shards + stats + index."""
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


def tiny_autoencoder(path: Path):
    """Save a randomly initialised 3-level AutoencoderKL (16x16 RGB <-> 4x4x4) to ``path``."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    ae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    ae.save_pretrained(path)
    return ae


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def accelerate_launch(script: str, args: list[str], num_processes: int = 2, timeout: int = 300):
    """Run ``accelerate launch --multi_gpu --num_processes N script args`` on the CPU."""
    env = subprocess_env()
    env["ACCELERATE_USE_CPU"] = "true"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(REPO / "scale" / script),
        *args,
    ]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def train_overrides(latents: Path, run: Path, *extra: str) -> list[str]:
    """Arguments of scale/train.py for the tiny config on ``latents``, writing to ``run``."""
    args = ["--config", str(TINY_CONFIG), "--override", f"data.path={latents}"]
    args += ["--override", f"training.output_dir={run}"]
    for item in extra:
        args += ["--override", item]
    return args
