"""Kernels per step: AdamW's fused kernel (CUDA by default), one multi-tensor EMA update each."""

import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.trainer import _use_fused


def test_fused_adamw_only_where_asked_or_on_cuda():
    assert _use_fused("auto", torch.device("cuda")) and not _use_fused("auto", torch.device("cpu"))
    assert _use_fused(True, torch.device("cpu")) and not _use_fused(False, torch.device("cuda"))


def test_fused_adamw_trains_like_the_default():
    """The fused kernel (also on CPUs in this torch) gives the for-each AdamW's weights."""

    def run(fused):
        torch.manual_seed(0)
        data = TensorDataSource(sample_2d("moons", 128, seed=0).points, batch_size=32, seed=1)
        config = TrainerConfig(steps=4, lr=1e-3, progress=False, cpu=True, fused_optimizer=fused)
        trainer = Trainer(MLP2D(hidden=16, depth=1), UCGMObjective("linear"), data, config)
        trainer.fit()
        return trainer

    plain, fused = run(False), run(True)
    assert (
        fused.optimizer.optimizer.defaults["fused"]
        and not plain.optimizer.optimizer.defaults["fused"]
    )
    for p, q in zip(
        plain.unwrapped_model.parameters(), fused.unwrapped_model.parameters(), strict=True
    ):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7)


def test_both_emas_update_with_one_multi_tensor_kernel_per_step(monkeypatch):
    """The trainer's EMA and the objective's EMA teacher: one _foreach_lerp_ each per step."""
    calls = []
    lerp = torch._foreach_lerp_

    def counting(tensors, *args, **kwargs):
        calls.append(len(tensors))
        return lerp(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "_foreach_lerp_", counting)
    torch.manual_seed(0)
    points = sample_2d("moons", 128, seed=0)
    data = TensorDataSource(points.points, points.labels, batch_size=32, seed=1)
    model = MLP2D(hidden=16, depth=2, num_classes=2)
    objective = UCGMObjective("linear", 0.0, enhancement_ratio=0.5, null_class=2)
    config = TrainerConfig(steps=3, lr=1e-3, progress=False, cpu=True)
    Trainer(model, objective, data, config).fit()
    n = len(list(model.parameters()))
    assert calls == [n, n] * 3  # teacher (in the forward), then the trainer's EMA
