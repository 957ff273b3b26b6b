"""Checkpoints of big runs: built on the main process only, on the host; memory-mapped resume."""

import os

import numpy as np
import pytest
import torch

from toy_data import sample_2d
from ucgm_lab.ema import ExponentialMovingAverage
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import CheckpointError, TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training import trainer_checkpoints as checkpoints_module
from ucgm_lab.training.checkpoint import file_sha256, load_checkpoint, save_checkpoint


def _trainer(folder, steps=4, **cfg):
    torch.manual_seed(0)
    data = sample_2d("moons", 256, seed=0)
    cfg = {"steps": steps, "lr": 1e-3, "progress": False, "checkpoint_dir": str(folder), **cfg}
    labels = (data.points[:, 0] > 0.5).long()  # two classes: the enhanced target needs labels
    return Trainer(
        MLP2D(hidden=16, depth=2, num_classes=2),
        UCGMObjective("linear", 0.0, enhancement_ratio=0.5),
        TensorDataSource(data.points, labels, batch_size=32, seed=1),
        TrainerConfig(**cfg),
    )


def test_other_processes_never_build_the_full_state(tmp_path, monkeypatch):
    """Only the main process copies weights, EMA and optimizer state; the others only send
    their RNG states and data positions (the collective gather)."""
    trainer = _trainer(tmp_path)
    trainer.fit(2)
    gathered = []
    real_gather = trainer._gather_rank_states
    monkeypatch.setattr(trainer, "_gather_rank_states", lambda: gathered.append(1) or real_gather())

    def forbidden(*args, **kwargs):
        raise AssertionError("state_dict built on a process that does not write the file")

    monkeypatch.setattr(trainer, "state_dict", forbidden)
    monkeypatch.setattr(Trainer, "is_main_process", property(lambda self: False))
    path = trainer.save(tmp_path / "other.pt")
    assert gathered == [1] and not path.exists()


def test_checkpoint_state_is_host_copies_not_views(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(2)
    state = trainer.state_dict()
    live = dict(trainer.unwrapped_model.state_dict())
    for name, tensor in state["model"].items():
        assert tensor.device.type == "cpu"
        assert tensor.data_ptr() != live[name].data_ptr()
    ema_live = dict(trainer.ema.model.state_dict())
    for name, tensor in state["ema"]["model"].items():
        assert tensor.device.type == "cpu" and tensor.data_ptr() != ema_live[name].data_ptr()
    teacher = state["objective"]["ema_teacher"]["model"]
    assert teacher and all(t.device.type == "cpu" for t in teacher.values())


def test_ema_state_dict_is_a_host_copy():
    ema = ExponentialMovingAverage(torch.nn.Linear(3, 2), 0.9)
    state = ema.state_dict()
    state["model"]["weight"].add_(1.0)
    assert not torch.equal(state["model"]["weight"], ema.model.weight)


def test_memory_mapped_load_equals_a_read_and_never_writes_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"w": torch.arange(6.0), "n": 3})
    digest = file_sha256(path)
    read, mapped = load_checkpoint(path), load_checkpoint(path, mmap=True)
    assert torch.equal(read["w"], mapped["w"]) and mapped["n"] == 3
    mapped["w"].add_(100.0)  # a private mapping: the file keeps its bytes
    assert file_sha256(path) == digest
    assert torch.equal(load_checkpoint(path, mmap=True)["w"], torch.arange(6.0))


def test_memory_mapped_load_still_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class RunsCommand:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "step": RunsCommand()}, evil)
    with pytest.raises(CheckpointError, match="Refused"):
        load_checkpoint(evil, mmap=True)
    assert not marker.exists()


def test_resume_memory_maps_the_file_and_continues_exactly(tmp_path, monkeypatch):
    straight = _trainer(tmp_path / "a")
    straight.fit(4)
    first = _trainer(tmp_path / "b")
    first.fit(2)
    calls = []
    real = checkpoints_module.load_checkpoint
    monkeypatch.setattr(
        checkpoints_module, "load_checkpoint", lambda p, **kw: calls.append(kw) or real(p, **kw)
    )
    resumed = _trainer(tmp_path / "b")
    assert resumed.resume(tmp_path / "b" / "last.pt") == 2
    assert calls == [{"mmap": True}]
    resumed.fit(4)
    for a, b in zip(
        straight.unwrapped_model.parameters(), resumed.unwrapped_model.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema.model.parameters(), resumed.ema.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_carries_its_own_digest_and_an_edit_is_refused(tmp_path):
    """Tampering (issue 24): every file the project writes carries its own digest."""
    from ucgm_lab.training.checkpoint import DIGEST_KEY, seal_checkpoint

    path = tmp_path / "last.pt"
    state = {
        "step": 7,
        "model": {"w": torch.randn(3, 2), "b": torch.zeros(2, dtype=torch.float16)},
        "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1}]},
        "rng": (np.arange(4, dtype=np.uint32), 3, None),
    }
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert isinstance(loaded[DIGEST_KEY], str) and loaded["step"] == 7
    save_checkpoint(path, loaded)  # a state read back saves again (its old digest replaced)
    assert load_checkpoint(path)[DIGEST_KEY] == loaded[DIGEST_KEY]

    edited = {**torch.load(path, weights_only=False), "step": 8}  # digest kept, step edited
    torch.save(edited, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="edited.pt fails its checksum"):
        load_checkpoint(tmp_path / "edited.pt")
    flipped = torch.load(path, weights_only=False)
    flipped["model"]["w"][0, 0] += 1e-6  # one weight, digest kept
    torch.save(flipped, tmp_path / "flipped.pt")
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_checkpoint(tmp_path / "flipped.pt", mmap=True)

    edited.pop(DIGEST_KEY)  # the digest removed as well: refused unless the caller opts out
    torch.save(edited, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match=r"carries no content digest .*allow_unverified=True"):
        load_checkpoint(tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt", allow_unverified=True)["step"] == 8
    seal_checkpoint(tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt")["step"] == 8
