"""A long training run for the signal and lock tests (one process or under accelerate launch).

``python signal_worker.py OUT`` trains a small MLP for up to 10**6 steps with checkpoints in
``OUT/ckpt`` (only at the end, or on a stop), writes ``OUT/pid_rank<r>`` with its pid once it
has trained a step, and at the end ``OUT/result_rank<r>.json`` with the step reached and the
signal that stopped it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def main(out: str) -> None:
    folder = Path(out)
    data = sample_2d("moons", 64, seed=0)
    config = TrainerConfig(
        steps=10**6, progress=False, cpu=True, checkpoint_dir=str(folder / "ckpt")
    )

    def announce(trainer: Trainer, step: int, logs: dict) -> None:
        if step == 2:
            rank = trainer.accelerator.process_index
            # Written whole, then renamed: the tests read the pid as soon as the file exists.
            tmp = folder / f".pid_rank{rank}.tmp"
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, folder / f"pid_rank{rank}")

    trainer = Trainer(
        MLP2D(hidden=16, depth=1),
        UCGMObjective("linear"),
        TensorDataSource(data.points, batch_size=8),
        config,
        callbacks=[(1, announce)],
    )
    result = trainer.fit()
    record = {"step": result.step, "stopped_by": result.stopped_by}
    rank = trainer.accelerator.process_index
    (folder / f"result_rank{rank}.json").write_text(json.dumps(record))
    trainer.accelerator.end_training()  # no gloo teardown at exit (see elastic_worker.py)


if __name__ == "__main__":
    main(sys.argv[1])
