"""Gradient accumulation: k micro-batches of B / k train like one batch of B, and resume exactly."""

import pytest
import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


class ItemwiseDraws(UCGMObjective):
    """The objective with t and z a fixed function of each data point (not of the batch).

    The library's draws come from one generator stream, so B / k items drawn k times differ
    from B items drawn once; with per-item draws, one batch of B and k micro-batches of B / k
    see exactly the same (x, t, z) for every item, and only the accumulation differs.
    """

    def __call__(self, model, x, y=None, t=None, noise=None, generator=None, **kwargs):
        g = x[:, 0] * 12.9898 + x[:, 1] * 78.233
        t = (torch.sin(g) * 43758.5453).frac().abs() * 0.9 + 0.05
        noise = torch.stack([torch.sin(3.1 * g), torch.cos(1.7 * g)], dim=1)
        return super().__call__(model, x, y, t=t, noise=noise, generator=generator, **kwargs)


def _trainer(k, steps=6, objective=None, grad_clip=0.05, tmp=None):
    torch.manual_seed(0)
    data = sample_2d("moons", 256, seed=0)
    model = MLP2D(hidden=32, depth=2, num_classes=2)
    objective = objective or ItemwiseDraws(
        "linear", 0.0, enhancement_ratio=0.5, label_dropout=0.0, null_class=2
    )
    config = TrainerConfig(
        steps=steps,
        lr=1e-3,
        ema_decay=0.9,
        progress=False,
        cpu=True,
        seed=2,
        grad_clip=grad_clip,
        gradient_accumulation_steps=k,
        checkpoint_dir=None if tmp is None else str(tmp),
    )
    source = TensorDataSource(data.points, data.labels, batch_size=32, seed=1)
    return Trainer(model, objective, source, config)


@pytest.mark.reproducibility
@pytest.mark.parametrize("k", [2, 4])
def test_k_micro_batches_equal_one_batch_of_k_times_the_size(k):
    """Weights, EMA, EMA teacher, Adam moments and losses agree to float tolerance."""
    one, acc = _trainer(1), _trainer(k)
    assert one._direct and not acc._direct  # two different code paths
    a, b = one.fit(), acc.fit()
    # the clip is active (its threshold is below the gradient norms), so it must act on the
    # accumulated gradient, not on each micro-batch, for the two runs to agree
    assert b.losses == pytest.approx(a.losses, rel=1e-5, abs=1e-6)
    pairs = [
        (one.unwrapped_model, acc.unwrapped_model),
        (one.ema_model, acc.ema_model),
        (one.objective.ema_teacher.model, acc.objective.ema_teacher.model),
    ]
    for m1, m2 in pairs:
        for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    s1, s2 = one.optimizer.state_dict()["state"], acc.optimizer.state_dict()["state"]
    for key in s1:
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(s2[key][name], s1[key][name], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_gradients_reaching_the_optimizer_are_those_of_the_full_batch(grad_clip):
    """Adam is nearly invariant to the gradient's scale, so compare the gradients themselves.

    A missing 1 / k (gradients k times too large) or a clip applied per micro-batch (the
    first-step norm is about 4, far above 0.05) would fail here.
    """
    grads = {}
    for k in (1, 2):
        trainer = _trainer(k, steps=3, grad_clip=grad_clip)
        inner = trainer.optimizer.optimizer
        seen = grads[k] = []
        inner.register_step_pre_hook(
            lambda opt, args, kwargs, seen=seen: seen.append(
                [p.grad.detach().clone() for g in opt.param_groups for p in g["params"]]
            )
        )
        trainer.fit()
    assert len(grads[1]) == len(grads[2]) == 3
    for step_1, step_2 in zip(grads[1], grads[2], strict=True):
        for g1, g2 in zip(step_1, step_2, strict=True):
            torch.testing.assert_close(g2, g1, rtol=1e-5, atol=1e-6)


def test_step_ema_teacher_and_data_advance_once_per_optimizer_step():
    trainer = _trainer(4, steps=3)
    trainer.fit()
    assert trainer.step == 3 and len(trainer.losses) == 3
    assert trainer.ema.num_updates == 3
    assert trainer.objective.ema_teacher.num_updates == 3
    assert trainer.data.position == 3
    adam = trainer.optimizer.state_dict()["state"]
    assert {float(s["step"]) for s in adam.values()} == {3.0}


@pytest.mark.reproducibility
def test_resume_with_accumulation_is_exact(tmp_path):
    def make(tmp):
        objective = UCGMObjective("linear", 0.0, enhancement_ratio=0.5)
        return _trainer(2, steps=8, objective=objective, tmp=tmp)

    straight = make(tmp_path / "a")
    full = straight.fit()
    first = make(tmp_path / "b")
    first.fit(steps=4)
    ckpt = first.save()
    torch.manual_seed(99)
    second = make(tmp_path / "b")
    assert second.resume(ckpt) == 4
    resumed = second.fit()
    assert resumed.losses == full.losses
    for a, b in zip(
        straight.unwrapped_model.parameters(), second.unwrapped_model.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema_model.parameters(), second.ema_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_refuses_another_accumulation(tmp_path):
    from ucgm_lab.training.trainer import ResumeMismatchError

    first = _trainer(2, steps=2, tmp=tmp_path)
    first.fit()
    other = _trainer(1, steps=4, tmp=tmp_path)
    with pytest.raises(ResumeMismatchError, match="gradient_accumulation_steps=2"):
        other.resume(tmp_path / "last.pt")


def test_bad_accumulation_settings():
    with pytest.raises(ValueError, match="gradient_accumulation_steps must be an integer >= 1"):
        TrainerConfig(gradient_accumulation_steps=0)
    with pytest.raises(ValueError, match="divisible by processes x gradient_accumulation_steps"):
        _trainer(3)
    from accelerate import Accelerator

    data = sample_2d("moons", 64, seed=0)
    with pytest.raises(ValueError, match="accumulates over 1 micro-batches"):
        Trainer(
            MLP2D(hidden=8, depth=1),
            UCGMObjective("linear"),
            TensorDataSource(data.points, batch_size=8),
            TrainerConfig(gradient_accumulation_steps=2, cpu=True, progress=False),
            accelerator=Accelerator(cpu=True),
        )
