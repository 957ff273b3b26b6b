"""Few-step diagnostics: each value against an independent recomputation on a tiny model."""

import copy

import pytest
import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.diagnostics import FewStepMonitor, difference_term, progress_postfix


def _model(seed=0):
    torch.manual_seed(seed)
    return MLP2D(hidden=16, depth=1, time_embed_dim=8, time_scale=30.0).double()


def _f_x(net, x, z, s):
    """Linear transport by hand: x_s = s z + (1 - s) x, f^x = x_s - s F (D = -1)."""
    x_s = s[:, None] * z + (1 - s[:, None]) * x
    return x_s - s[:, None] * net(x_s, s)


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_difference_term_matches_hand_computation(lam):
    net = _model()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, 2, generator=gen, dtype=torch.float64)
    z = torch.randn(9, 2, generator=gen, dtype=torch.float64)
    t = 0.1 + 0.8 * torch.rand(9, generator=gen, dtype=torch.float64)
    objective = UCGMObjective("linear", lam, check_time_sensitivity=False)
    got = difference_term(objective, net, x, z, t, None)
    if lam == 1.0:
        e = objective.epsilon
        expected = (_f_x(net, x, z, t + e) - _f_x(net, x, z, t - e)) / (2 * e)
    else:
        r = lam * t
        expected = (_f_x(net, x, z, t) - _f_x(net, x, z, r)) / (t - r)[:, None]
    torch.testing.assert_close(got, expected.detach(), rtol=1e-9, atol=1e-9)


def test_monitor_values_match_independent_recomputation():
    model = _model()
    ema = copy.deepcopy(model)
    monitor = FewStepMonitor(model, ema, seed=4)
    start = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for p in ema.parameters():
            p.mul_(1.25)  # the EMA moved by exactly 25% of its norm
    objective = UCGMObjective("linear", 1.0, clip=0.5, check_time_sensitivity=False)
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = monitor.measure(objective, model, ema, x)

    # Redraw the monitor's t and z from a generator with the same seed, on the first 256 rows.
    gen = torch.Generator().manual_seed(4)
    xs = x[:256]
    t = objective.time_distribution.sample(
        256, dtype=torch.float64, generator=gen, t_min=0.005, t_max=0.995
    )
    z = torch.randn(xs.shape, generator=gen, dtype=torch.float64)
    x_t = t[:, None] * z + (1 - t[:, None]) * xs
    with torch.no_grad():
        gap = (model(x_t, t) - start(x_t, t)).pow(2).mean().sqrt()
        e = 0.005
        delta = (_f_x(model, xs, z, t + e) - _f_x(model, xs, z, t - e)) / (2 * e)
    assert d.teacher_gap == pytest.approx(float(gap), rel=1e-9)
    assert d.difference_rms == pytest.approx(float(delta.pow(2).mean().sqrt()), rel=1e-9)
    assert d.clipped_fraction == pytest.approx(float((delta.abs() > 0.5).double().mean()))
    assert d.ema_drift == pytest.approx(0.25, rel=1e-9)
    assert d.teacher_gap > 0 and 0 < d.clipped_fraction < 1
    # The frozen teacher of an enhanced objective is the reference when there is one.
    objective.frozen_teacher = copy.deepcopy(model)
    assert monitor.measure(objective, model, ema, x).teacher_gap == 0.0


def _trainer(lam, seed=0):
    torch.manual_seed(seed)
    data = sample_2d("moons", 256, seed=0)
    model = MLP2D(hidden=16, depth=1, time_scale=30.0)
    objective = UCGMObjective("linear", lam, check_time_sensitivity=False)
    source = TensorDataSource(data.points, None, batch_size=32, seed=1)
    config = TrainerConfig(steps=4, lr=1e-3, ema_decay=0.9, progress=False, log_every=2, seed=3)
    seen = []
    trainer = Trainer(
        model,
        objective,
        source,
        config,
        callbacks=[(2, lambda tr, s, logs: seen.append(dict(logs)))],
    )
    return trainer, seen


def test_trainer_logs_diagnostics_only_for_few_step_runs(monkeypatch):
    trainer, seen = _trainer(1.0)
    start = copy.deepcopy(trainer.unwrapped_model)
    result = trainer.fit()
    assert len(seen) == 2
    keys = {
        "few_step/teacher_gap",
        "few_step/difference_rms",
        "few_step/clipped_fraction",
        "few_step/ema_drift",
    }
    assert keys <= set(seen[-1])
    assert seen[-1]["few_step/ema_drift"] > 0 and seen[-1]["few_step/teacher_gap"] > 0
    for a, b in zip(
        trainer.few_step_monitor.start_model.parameters(), start.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    assert set(progress_postfix(seen[-1])) == {"gap", "diff", "clip", "drift"}
    # The monitor draws from its own generator: the losses equal a run that never measures.
    monkeypatch.setattr("ucgm_lab.training.trainer.wants_few_step_monitor", lambda objective: False)
    quiet, _ = _trainer(1.0)
    assert quiet.fit().losses == result.losses
    assert quiet.few_step_monitor is None
    monkeypatch.undo()
    flow, seen0 = _trainer(0.0)
    flow.fit()
    assert flow.few_step_monitor is None
    assert not any(k.startswith("few_step/") for k in seen0[-1])
