"""The trainer's step loop: the fast path equals accelerate's, the guard, train mode."""

import pytest
import torch
from torch import nn

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import NonFiniteLossError, TensorDataSource, Trainer, TrainerConfig


def _trainer(model=None, lam=0.0, steps=8, callbacks=()):
    torch.manual_seed(0)
    data = sample_2d("moons", 256, seed=0)
    model = model if model is not None else MLP2D(hidden=32, depth=2)
    config = TrainerConfig(steps=steps, lr=1e-3, ema_decay=0.9, progress=False, cpu=True, seed=2)
    source = TensorDataSource(data.points, batch_size=32, seed=1)
    return Trainer(model, UCGMObjective("linear", lam), source, config, callbacks=callbacks)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_direct_path_equals_accelerate_path(lam):
    fast = _trainer(lam=lam)
    slow = _trainer(lam=lam)
    assert fast._direct  # single CPU process without a scaler: accelerate is a pass-through
    slow._direct = False  # force accelerate's backward, clip_grad_norm_ and optimizer step
    a, b = fast.fit(), slow.fit()
    assert a.losses == b.losses
    for p, q in zip(
        fast.unwrapped_model.parameters(), slow.unwrapped_model.parameters(), strict=True
    ):
        assert torch.equal(p, q)
    for p, q in zip(fast.ema_model.parameters(), slow.ema_model.parameters(), strict=True):
        assert torch.equal(p, q)


class _InfGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


class _BadGradNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = MLP2D(hidden=16, depth=1)
        self.poison = False

    def forward(self, x, t):
        out = self.net(x, t)
        return _InfGrad.apply(out) if self.poison else out


@pytest.mark.parametrize("direct", [True, False])
def test_non_finite_gradient_norm_updates_nothing(direct):
    trainer = _trainer(_BadGradNet())
    trainer._direct = direct
    trainer.fit(steps=2)
    weights = [p.detach().clone() for p in trainer.unwrapped_model.parameters()]
    ema = [p.detach().clone() for p in trainer.ema_model.parameters()]
    adam_steps = [float(s["step"]) for s in trainer.optimizer.state_dict()["state"].values()]
    trainer.unwrapped_model.poison = True
    with pytest.raises(NonFiniteLossError, match=r"step 3: the gradient norm is (inf|nan)"):
        trainer.train_step()
    assert trainer.step == 2 and len(trainer.losses) == 2
    assert all(p.grad is None for p in trainer.unwrapped_model.parameters())
    for p, w in zip(trainer.unwrapped_model.parameters(), weights, strict=True):
        assert torch.equal(p, w)
    for p, w in zip(trainer.ema_model.parameters(), ema, strict=True):
        assert torch.equal(p, w)
    assert [
        float(s["step"]) for s in trainer.optimizer.state_dict()["state"].values()
    ] == adam_steps


def test_training_mode_restored_after_a_callback_evaluates():
    modes = []

    class Recorder(MLP2D):
        def forward(self, x, t, y=None):
            if torch.is_grad_enabled():  # training forwards (the time check runs no-grad, in eval)
                modes.append(self.training)
            return super().forward(x, t, y)

    def evaluate(trainer, step, logs):
        trainer.unwrapped_model.eval()

    trainer = _trainer(Recorder(hidden=16, depth=1), steps=4, callbacks=[(2, evaluate)])
    trainer.fit()
    assert modes == [True] * 4
