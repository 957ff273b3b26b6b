"""A training run that records every global batch it sees (for the elastic-resume test).

Run as ``python elastic_worker.py OUT STEPS [RESUME]`` or under ``accelerate launch``. Every
rank writes ``OUT/batches_rank<r>.json``: for each step, the item ids of its share of the
global batch; the checkpoint goes to ``OUT/ckpt/last.pt``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig

GLOBAL_BATCH = 8


class RecordingSource(TensorDataSource):
    """TensorDataSource that remembers which items (by id) each batch held."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ids = {tuple(row.tolist()): i for i, row in enumerate(self.x)}
        self.seen: list[list[int]] = []

    def next_batch(self):
        batch = super().next_batch()
        self.seen.append([self.ids[tuple(row.tolist())] for row in batch.x])
        return batch


def main(out: str, steps: int, resume: str | None) -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    data = sample_2d("moons", 40, seed=0)  # 5 global batches per epoch: epochs roll over
    source = RecordingSource(
        data.points,
        batch_size=GLOBAL_BATCH,
        seed=4,
        rank=acc.process_index,
        world_size=acc.num_processes,
    )
    config = TrainerConfig(
        steps=steps, lr=1e-3, progress=False, cpu=True, checkpoint_dir=str(Path(out) / "ckpt")
    )
    trainer = Trainer(
        MLP2D(hidden=16, depth=1), UCGMObjective("linear"), source, config, accelerator=acc
    )
    start = trainer.resume(resume) if resume else 0
    trainer.fit()
    record = {
        "start": start,
        "step": trainer.step,
        "batches": source.seen,
        "losses": len(trainer.losses),
    }
    (Path(out) / f"batches_rank{acc.process_index}.json").write_text(json.dumps(record))
    # Destroy the process group before exit: left to interpreter teardown, gloo's threads can
    # abort the process ("terminate called without an active exception", exit code -6).
    acc.end_training()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
