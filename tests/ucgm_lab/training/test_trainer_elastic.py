"""Resume with another number of processes (gloo on the CPU): the global data order is kept."""

import json
from pathlib import Path

import pytest
import torch

from scale.launch import launch_on_cpu
from tests.scale.helpers import REPO
from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import Trainer, TrainerConfig
from ucgm_lab.training.checkpoint import save_checkpoint
from ucgm_lab.training.trainer import ResumeMismatchError

pytestmark = pytest.mark.timeout(600)
WORKER = Path(__file__).with_name("elastic_worker.py")


def _run(out: Path, steps: int, processes: int, resume: Path | None = None) -> list[dict]:
    """The worker under ``accelerate launch`` on ``processes`` CPU processes (gloo)."""
    out.mkdir(parents=True, exist_ok=True)
    args = [str(out), str(steps)] + ([str(resume)] if resume else [])
    result = launch_on_cpu(str(WORKER), args, processes, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-6000:]
    return [json.loads((out / f"batches_rank{r}.json").read_text()) for r in range(processes)]


def _global_batches(records: list[dict]) -> list[list[int]]:
    """Reassemble the global batches: rank r held items r, r + W, ... of each."""
    world = len(records)
    steps = len(records[0]["batches"])
    merged = []
    for s in range(steps):
        batch = [None] * sum(len(r["batches"][s]) for r in records)
        for rank, record in enumerate(records):
            batch[rank::world] = record["batches"][s]
        merged.append(batch)
    return merged


@pytest.mark.parametrize("first,second", [(1, 2), (2, 1)])
def test_resume_with_another_process_count_keeps_the_global_batches(tmp_path, first, second):
    straight = _global_batches(_run(tmp_path / "straight", 8, 1))
    assert len(straight) == 8
    part1 = _run(tmp_path / "a", 3, first)
    resumed = _run(tmp_path / "b", 8, second, resume=tmp_path / "a" / "ckpt" / "last.pt")
    assert all(r["start"] == 3 and r["step"] == 8 and r["losses"] == 8 for r in resumed)
    seen = _global_batches(part1) + _global_batches(resumed)
    assert seen == straight  # steps 1-3 on `first`, 4-8 (across an epoch end) on `second`


def _trainer(tmp_path, source):
    config = TrainerConfig(steps=4, lr=1e-3, progress=False, cpu=True, checkpoint_dir=str(tmp_path))
    return Trainer(MLP2D(hidden=8, depth=1), UCGMObjective("linear"), source, config)


class _LocalSource:
    """A data source without global_order: its order may depend on the process count."""

    batch_size = 8

    def __init__(self):
        self.position = 0
        self.points = sample_2d("moons", 64, seed=0).points

    def next_batch(self):
        from ucgm_lab.training import Batch

        self.position += 1
        return Batch(self.points[:8], None)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def test_elastic_resume_refuses_sources_without_a_global_order(tmp_path):
    trainer = _trainer(tmp_path, _LocalSource())
    trainer.fit(steps=1)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    state["num_processes"] = 2
    state["ranks"] = state["ranks"] * 2
    save_checkpoint(tmp_path / "two.pt", state)  # re-sealed: the edit is the case
    with pytest.raises(ResumeMismatchError, match="does not declare global_order"):
        _trainer(tmp_path, _LocalSource()).resume(tmp_path / "two.pt")


def test_elastic_resume_refuses_ranks_at_different_positions(tmp_path):
    from ucgm_lab.training import TensorDataSource

    points = sample_2d("moons", 64, seed=0).points
    trainer = _trainer(tmp_path, TensorDataSource(points, batch_size=8))
    trainer.fit(steps=1)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    other = {**state["ranks"][0], "data": {**state["ranks"][0]["data"], "position": 5}}
    state["num_processes"], state["ranks"] = 2, [state["ranks"][0], other]
    save_checkpoint(tmp_path / "two.pt", state)  # re-sealed: the edit is the case
    with pytest.raises(ResumeMismatchError, match="different data positions"):
        _trainer(tmp_path, TensorDataSource(points, batch_size=8)).resume(tmp_path / "two.pt")
