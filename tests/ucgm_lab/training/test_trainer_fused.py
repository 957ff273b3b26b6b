"""AdamW's fused kernel: on CUDA by default, and the same training as the for-each kernel."""

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
