"""A training run whose Trainer makes its own accelerator (for launcher-configuration tests).

Run as ``python plain_worker.py OUT`` or under ``accelerate launch``: trains a small MLP for
2 steps with checkpoints in ``OUT/ckpt`` and writes ``OUT/done_rank<r>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def main(out: str) -> None:
    data = sample_2d("moons", 32, seed=0)
    config = TrainerConfig(
        steps=2, progress=False, cpu=True, checkpoint_dir=str(Path(out) / "ckpt")
    )
    trainer = Trainer(
        MLP2D(hidden=16, depth=1),
        UCGMObjective("linear"),
        TensorDataSource(data.points, batch_size=8),
        config,
    )
    trainer.fit()
    (Path(out) / f"done_rank{trainer.accelerator.process_index}").write_text("ok")
    trainer.accelerator.end_training()  # no gloo teardown at exit (see elastic_worker.py)


if __name__ == "__main__":
    main(sys.argv[1])
