"""Faults of numbers: NaN or inf is detected where it appears and named (the objective's input,
the sampler's step and whether the network output or the state went non-finite)."""

import pytest
import torch
from torch import nn

from toy_data import sample_2d
from ucgm_lab import UCGMObjective, sample
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import NonFiniteError
from ucgm_lab.sampler import NonFiniteSampleError
from ucgm_lab.training import NonFiniteLossError, TensorDataSource, Trainer, TrainerConfig


class Net(nn.Module):
    """Returns its input times a constant; NaN from the call ``bad_from`` on."""

    num_classes = None

    def __init__(self, bad_from=None, value=float("nan")):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.calls, self.bad_from, self.value = 0, bad_from, value

    def forward(self, x, t):
        self.calls += 1
        out = x * self.w
        if self.bad_from is not None and self.calls >= self.bad_from:
            out = out + self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_objective_names_the_non_finite_input(value):
    x = torch.randn(8, 2)
    bad = x.clone()
    bad[3, 1] = value
    with pytest.raises(
        NonFiniteError, match=r"the data x holds NaN or inf values \(1 of 8 samples\)"
    ):
        UCGMObjective("linear")(Net(), bad)
    noise = torch.randn(8, 2)
    noise[0] = value
    with pytest.raises(NonFiniteError, match="the noise holds NaN or inf"):
        UCGMObjective("linear")(Net(), x, noise=noise)
    with pytest.raises(NonFiniteError, match="the network output F_t holds NaN or inf"):
        UCGMObjective("linear")(Net(bad_from=1, value=value), x)
    # lambda = 1: the gradient forward is fine, the finite-difference forwards are not
    with pytest.raises(NonFiniteError, match="the target F_target"):
        # (no time-sensitivity check: its extra forward would shift the call count)
        UCGMObjective("linear", 1.0, check_time_sensitivity=False)(Net(bad_from=2, value=value), x)
    out = UCGMObjective("linear", check_finite=False)(Net(), bad)
    assert not torch.isfinite(out.loss)


def test_sampler_names_the_step_and_the_network_output():
    z = torch.randn(6, 2)
    with pytest.raises(
        NonFiniteSampleError, match=r"network output went NaN or inf at step 2 \(t = 0\.5"
    ):
        sample(Net(bad_from=3), z, "linear", time_points=[0.999, 0.75, 0.5, 0.25])
    with pytest.raises(NonFiniteSampleError, match="at step 0"):
        sample(Net(bad_from=1, value=float("inf")), z, "linear", 4)
    # the last step (x^ only) is checked too
    with pytest.raises(NonFiniteSampleError, match="step 3"):
        sample(Net(bad_from=4), z, "linear", time_points=[0.999, 0.75, 0.5, 0.25])


def test_sampler_names_an_overflowing_guidance():
    class Opposite(nn.Module):
        num_classes, null_class = 2, 2

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, x, t, y):
            sign = torch.where(y == 2, -1.0, 1.0).to(x.dtype)[:, None]
            return x * 0 + sign * 1e308 * self.w

    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(NonFiniteSampleError, match=r"step 0 .*guidance combination"):
        sample(
            Opposite(), torch.ones(2, 2, dtype=torch.float64), "linear", 4, y=y, guidance_scale=2.0
        )


def test_sampler_nan_guidance_scale_is_refused():
    """Silent: guidance_scale=nan gave a NaN sample."""
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        sample(
            MLP2D(hidden=8, depth=1, num_classes=2),
            torch.randn(4, 2),
            "linear",
            4,
            y=torch.zeros(4, dtype=torch.long),
            guidance_scale=float("nan"),
        )


def test_trainer_guard_names_the_data(tmp_path):
    data = sample_2d("moons", 64, seed=0).points.clone()
    data[5, 0] = float("nan")
    trainer = Trainer(
        MLP2D(hidden=8, depth=1),
        UCGMObjective("linear"),
        TensorDataSource(data, batch_size=64, seed=0),
        TrainerConfig(steps=2, progress=False),
    )
    with pytest.raises(
        NonFiniteLossError, match="step 1: the loss is nan. The data batch x holds NaN"
    ):
        trainer.fit()
    assert trainer.step == 0
