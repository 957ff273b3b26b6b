"""A script whose Trainer makes its own accelerator and that ends right after ``fit()``.

Run as ``python exit_worker.py OUT`` under ``accelerate launch``. Before the Trainer exists it
registers an ``atexit`` hook; hooks run last-registered first, so this one runs after any hook
the Trainer registers, and writes ``OUT/exit_rank<r>``: whether the default process group was
still initialized then.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

import torch.distributed as dist

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def main(out: str) -> None:
    rank = os.environ.get("RANK", "0")

    def record() -> None:
        alive = dist.is_available() and dist.is_initialized()
        (Path(out) / f"exit_rank{rank}").write_text("initialized" if alive else "destroyed")

    atexit.register(record)
    data = sample_2d("moons", 32, seed=0)
    config = TrainerConfig(steps=2, progress=False, cpu=True)
    trainer = Trainer(
        MLP2D(hidden=16, depth=1),
        UCGMObjective("linear"),
        TensorDataSource(data.points, batch_size=8),
        config,
    )
    trainer.fit()


if __name__ == "__main__":
    main(sys.argv[1])
