"""fp16 with a gradient scaler: an overflow skips the step (GradScaler's way), a NaN loss stops.

accelerate gives no GradScaler on the CPU (fp16 there runs without autocast or scaler), so the
scaler is stubbed in: a real ``torch.amp.GradScaler("cpu")`` attached to a CPU accelerator,
with accelerate's fp16 switches (``native_amp``, ``mixed_precision``) turned on so that its
backward scales the loss, its clip unscales the gradients and its optimizer step goes through
``scaler.step`` / ``scaler.update``. The computation itself stays in float32; an initial
scale of 2^127 and a network whose gradients are large make the scaled gradients overflow, as a
too-large fp16 scale does.
"""

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import NonFiniteLossError, TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.checkpoint import save_checkpoint


class _LargeGrad(torch.autograd.Function):
    """Identity forward; the gradient times 1000 (a loss whose gradients are large)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * 1000.0


class _LargeGradNet(MLP2D):
    def forward(self, x, t, y=None):
        return _LargeGrad.apply(super().forward(x, t, y))


class _NanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = MLP2D(hidden=16, depth=1)
        self.poison = False

    def forward(self, x, t):
        out = self.net(x, t)
        return out * float("nan") if self.poison else out


@pytest.fixture
def fp16_accelerator(monkeypatch):
    monkeypatch.setattr(Accelerator, "mixed_precision", property(lambda self: "fp16"))
    acc = Accelerator(cpu=True)
    acc.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=1000)
    acc.native_amp = True
    return acc


def _trainer(acc, model=None, tmp=None):
    torch.manual_seed(0)
    data = sample_2d("moons", 256, seed=0)
    config = TrainerConfig(
        steps=12,
        lr=1e-3,
        ema_decay=0.9,
        progress=False,
        cpu=True,
        seed=2,
        checkpoint_dir=None if tmp is None else str(tmp),
    )
    source = TensorDataSource(data.points, batch_size=32, seed=1)
    model = model if model is not None else _LargeGradNet(hidden=32, depth=2)
    return Trainer(model, UCGMObjective("linear"), source, config, accelerator=acc)


def test_overflow_skips_the_step_and_lowers_the_scale(fp16_accelerator):
    trainer = _trainer(fp16_accelerator)
    assert not trainer._direct
    weights = [p.detach().clone() for p in trainer.unwrapped_model.parameters()]
    loss = trainer.train_step()  # 2^127 x gradients of order 1000: inf
    assert loss == loss and abs(loss) < 1e6  # the (unscaled) loss is finite and recorded
    assert trainer.step == 1 and trainer.skipped_steps == 1 and trainer.losses == [loss]
    for p, w in zip(trainer.unwrapped_model.parameters(), weights, strict=True):
        assert torch.equal(p, w)  # no optimizer step
    assert trainer.ema.num_updates == 0  # no EMA update
    for p, w in zip(trainer.ema_model.parameters(), weights, strict=True):
        assert torch.equal(p, w)
    assert trainer.optimizer.optimizer.state_dict()["state"] == {}  # Adam never stepped
    assert fp16_accelerator.scaler.get_scale() == 2.0**126  # backoff 0.5
    assert all(p.grad is None for p in trainer.unwrapped_model.parameters())


def test_training_proceeds_once_the_scale_has_come_down(fp16_accelerator):
    trainer = _trainer(fp16_accelerator)
    weights = [p.detach().clone() for p in trainer.unwrapped_model.parameters()]
    result = trainer.fit()
    assert result.step == 12
    assert 1 <= result.skipped_steps < 12
    assert trainer.ema.num_updates == 12 - result.skipped_steps
    adam_steps = {
        float(s["step"]) for s in trainer.optimizer.optimizer.state_dict()["state"].values()
    }
    assert adam_steps == {float(12 - result.skipped_steps)}
    assert fp16_accelerator.scaler.get_scale() == 2.0 ** (127 - result.skipped_steps)
    assert any(
        not torch.equal(p, w)
        for p, w in zip(trainer.unwrapped_model.parameters(), weights, strict=True)
    )


def test_a_non_finite_loss_still_stops_training(fp16_accelerator):
    trainer = _trainer(fp16_accelerator, _NanNet())
    trainer.unwrapped_model.poison = True
    with pytest.raises(NonFiniteLossError, match=r"step 1: the loss is nan"):
        trainer.train_step()
    assert trainer.step == 0 and trainer.skipped_steps == 0


def test_the_scaler_state_is_checkpointed_and_resumed(fp16_accelerator, tmp_path):
    trainer = _trainer(fp16_accelerator, tmp=tmp_path)
    trainer.fit(steps=3)
    path = trainer.save()
    scale = fp16_accelerator.scaler.get_scale()
    fp16_accelerator.scaler.update(2.0**10)  # somebody else's scale
    resumed = _trainer(fp16_accelerator, tmp=tmp_path)
    assert resumed.resume(path) == 3
    assert fp16_accelerator.scaler.get_scale() == scale
    assert resumed.skipped_steps == trainer.skipped_steps


def test_no_scaler_means_an_infinite_gradient_norm_is_fatal(tmp_path):
    """Without a scaler nothing rescales: the existing guard stands (and a scaler-less resume of
    a scaled run is refused)."""
    from ucgm_lab.training.trainer import ResumeMismatchError

    plain = _trainer(Accelerator(cpu=True), tmp=tmp_path / "plain")
    plain.fit(steps=1)
    state_path = plain.save()
    data = torch.load(state_path, weights_only=False)
    assert data["scaler"] is None
    with pytest.raises(ResumeMismatchError, match="gradient scaler"):
        # a checkpoint with a scaler into a run without one
        data["scaler"] = {"scale": 1.0}
        save_checkpoint(tmp_path / "scaled.pt", data)
        _trainer(Accelerator(cpu=True)).resume(tmp_path / "scaled.pt")
