"""Shared helpers of the scale/ tests (the builders themselves live in scale.synthetic and
scale.launch, which the rehearsal uses too)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scale.launch import free_port, launch_on_cpu, subprocess_env
from scale.synthetic import make_image_folder, make_latent_folder, tiny_autoencoder

__all__ = [
    "REPO",
    "TINY_CONFIG",
    "accelerate_launch",
    "free_port",
    "make_image_folder",
    "make_latent_folder",
    "subprocess_env",
    "tiny_autoencoder",
    "train_overrides",
]

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "scale" / "configs" / "tiny_cpu.yaml"


def accelerate_launch(
    script: str, args: list[str], num_processes: int = 2, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``accelerate launch --multi_gpu -m scale.<script without .py>`` on 2 CPU processes."""
    module = "scale." + script.removesuffix(".py")
    return launch_on_cpu(module, args, num_processes, timeout, cwd=REPO)


def train_overrides(latents: Path, run: Path, *extra: str) -> list[str]:
    """Arguments of scale.train for the tiny config on ``latents``, writing to ``run``."""
    args = ["--config", str(TINY_CONFIG), "--override", f"data.path={latents}"]
    args += ["--override", f"training.output_dir={run}"]
    for item in extra:
        args += ["--override", item]
    return args
