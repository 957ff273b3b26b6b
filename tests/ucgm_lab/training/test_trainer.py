import os

import pytest
import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import (
    CheckpointError,
    NonFiniteLossError,
    TensorDataSource,
    Trainer,
    TrainerConfig,
    load_checkpoint,
)


def _setup(tmp_path, steps, lam=0.0, zeta=0.0, conditional=False, **cfg):
    torch.manual_seed(0)
    data = sample_2d("moons", 512, seed=0)
    model = MLP2D(hidden=32, depth=2, num_classes=2 if conditional else None)
    objective = UCGMObjective("linear", lam, enhancement_ratio=zeta)
    source = TensorDataSource(
        data.points, data.labels if conditional else None, batch_size=64, seed=1
    )
    config = TrainerConfig(
        steps=steps,
        lr=1e-3,
        ema_decay=0.9,
        progress=False,
        checkpoint_dir=str(tmp_path),
        seed=3,
        **cfg,
    )
    return Trainer(model, objective, source, config)


@pytest.mark.reproducibility
@pytest.mark.parametrize(
    "lam,zeta,conditional", [(0.0, 0.0, False), (0.0, 0.5, True), (1.0, 0.0, False)]
)
def test_resume_continues_exactly(tmp_path, lam, zeta, conditional):
    straight = _setup(tmp_path / "a", 12, lam, zeta, conditional)
    full = straight.fit()
    first = _setup(tmp_path / "b", 12, lam, zeta, conditional)
    first.fit(steps=6)
    ckpt = first.save()
    # a fresh process: new model (other init), new objective, new data source
    torch.manual_seed(123)
    second = _setup(tmp_path / "b", 12, lam, zeta, conditional)
    assert second.resume(ckpt) == 6
    resumed = second.fit()
    assert resumed.losses == full.losses
    for a, b in zip(
        straight.unwrapped_model.parameters(), second.unwrapped_model.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema_model.parameters(), second.ema_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_loss_goes_down_and_checkpoint_is_atomic(tmp_path):
    trainer = _setup(tmp_path, 150)
    result = trainer.fit()
    assert len(result.losses) == 150
    assert sum(result.losses[-20:]) / 20 < sum(result.losses[:20]) / 20
    assert result.checkpoint == tmp_path / "last.pt"
    # no temporary files left; the numbered copy is a hard link to last.pt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_000000150.pt"]
    assert (tmp_path / "last.pt").samefile(tmp_path / "step_000000150.pt")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "last.pt").stat().st_mode & 0o777 == 0o666 & ~umask
    state = load_checkpoint(result.checkpoint)
    assert state["step"] == 150 and state["model_config"]["kind"] == "mlp2d"


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = _setup(tmp_path, 5, checkpoint_every=2)
    trainer.fit(steps=4)
    good = (tmp_path / "last.pt").read_bytes()
    with torch.no_grad():
        for p in trainer.unwrapped_model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"step 5.*last good checkpoint is .*last\.pt"):
        trainer.fit()
    assert (tmp_path / "last.pt").read_bytes() == good
    assert trainer.step == 4


def test_corrupt_and_missing_checkpoints(tmp_path):
    trainer = _setup(tmp_path, 2)
    with pytest.raises(CheckpointError, match="does not exist"):
        trainer.resume(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        trainer.resume(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ucgm-lab"):
        trainer.resume(tmp_path / "other.pt")


def test_data_source_shards_and_resumes():
    x = torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 2)
    whole = TensorDataSource(x, batch_size=8, seed=5)
    r0 = TensorDataSource(x, batch_size=8, seed=5, rank=0, world_size=2)
    r1 = TensorDataSource(x, batch_size=8, seed=5, rank=1, world_size=2)
    seen = []
    for _ in range(7):  # crosses an epoch boundary (5 batches per epoch)
        b, b0, b1 = whole.next_batch(), r0.next_batch(), r1.next_batch()
        assert torch.equal(
            torch.sort(torch.cat([b0.x, b1.x])[:, 0]).values, torch.sort(b.x[:, 0]).values
        )
        seen.append(b.x[:, 0])
    assert len(torch.cat(seen[:5]).unique()) == 40  # an epoch is a permutation
    state = whole.state_dict()
    nxt = whole.next_batch().x
    again = TensorDataSource(x, batch_size=8, seed=5)
    again.load_state_dict(state)
    assert torch.equal(again.next_batch().x, nxt)
    with pytest.raises(ValueError, match="divisible"):
        TensorDataSource(x, batch_size=7, world_size=2)
    with pytest.raises(ValueError, match="seed"):
        TensorDataSource(x, batch_size=8, seed=6).load_state_dict(state)


def test_bad_config():
    with pytest.raises(ValueError, match="optimizer"):
        TrainerConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainerConfig(ema_decay=2.0)
