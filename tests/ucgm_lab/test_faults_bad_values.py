"""Faults of values: every bad argument gives a clear error (what was wrong, what is allowed)
or a correct result. Each test names the case of the trust issue it covers."""

import math

import pytest
import torch
from torch import nn

from ucgm_lab import KumaraswamySchedule, UCGMObjective, sample
from ucgm_lab.networks import MLP2D
from ucgm_lab.training import TrainerConfig


class Linear2D(nn.Module):
    """A tiny network with float parameters, conditional or not."""

    def __init__(self, num_classes=None, dtype=torch.float32):
        super().__init__()
        self.num_classes = num_classes
        self.null_class = num_classes
        self.lin = nn.Linear(3, 2, dtype=dtype)

    def forward(self, x, t, y=None):
        return self.lin(torch.cat([x, t[:, None]], 1))


# ---------------------------------------------------------------------- sampler
def test_sampler_type_errors_are_clear():
    net, z = Linear2D(num_classes=3), torch.randn(4, 2)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(TypeError, match="guidance_scale must be a finite number"):
        sample(net, z, "linear", 4, y=y, guidance_scale="2")
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        sample(net, z, "linear", 4, y=y, guidance_scale=float("nan"))
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator .*not 123"):
        sample(net, z, "linear", 4, generator=123)
    with pytest.raises(TypeError, match="time_points must be a 1-D sequence of numbers"):
        sample(net, z, "linear", time_points=["a"])
    with pytest.raises(TypeError, match="null_class must be a class id"):
        sample(net, z, "linear", 4, y=y, guidance_scale=2.0, null_class="a")
    with pytest.raises(TypeError, match="guidance_interval must be a pair"):
        sample(net, z, "linear", 4, y=y, guidance_scale=2.0, guidance_interval=(0, "x"))


def test_sampler_time_points_must_be_one_dimensional():
    """Silent: time_points of shape (2, 1) were flattened."""
    with pytest.raises(ValueError, match=r"one-dimensional .*got shape \(2, 1\)"):
        sample(Linear2D(), torch.randn(4, 2), "linear", time_points=torch.tensor([[0.9], [0.5]]))


def test_sampler_refuses_huge_step_counts():
    """Obscure: steps=10**12 asked the allocator for 8 TB."""
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 100000\]"):
        sample(Linear2D(), torch.randn(4, 2), "linear", 10**12)


def test_labels_for_an_unconditional_model():
    """Obscure: y given to an unconditional model asked for a null class id."""
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"unconditional \(num_classes=None\)"):
        sample(MLP2D(hidden=8, depth=1), torch.randn(4, 2), "linear", 2, y=y)
    with pytest.raises(ValueError, match="unconditional"):
        UCGMObjective("linear")(MLP2D(hidden=8, depth=1), torch.randn(4, 2), y)


@pytest.mark.parametrize("transport", ["trigflow", "triglinear"])
def test_order_two_near_zero_divisor(transport):
    """Silent: time point 1.0 with TrigFlow/TrigLinear, order 2, divided by cos(pi/2) = 6e-17."""
    net, z = Linear2D(), torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"divides by gamma\(t_i\) = 6.12e-17 \(below 1e-08, the tolerance in float64\)"):
        sample(net, z, transport, time_points=[1.0, 0.6, 0.3], order=2)
    with pytest.raises(ValueError, match="below 1e-08"):
        sample(net, z, transport, 8, order=2, schedule=KumaraswamySchedule(gap_noise=0))
    # just below 1 the correction is finite (large at few steps: a documented finding, not 1e16)
    out = sample(net, z, transport, time_points=[0.999, 0.6, 0.3], order=2)
    assert torch.isfinite(out.sample).all() and out.sample.abs().max() < 1e6


@pytest.mark.parametrize("data_dtype", [torch.float16, torch.float64])
def test_sampler_model_dtype_wins(data_dtype):
    """Obscure: float16/float64 noise with a float32 model was a matmul dtype error."""
    net = Linear2D()
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    ref = sample(net, z, "linear", 4).sample
    out = sample(net, z.to(data_dtype), "linear", 4)
    assert out.sample.dtype == data_dtype
    torch.testing.assert_close(out.sample.float(), ref, atol=5e-3, rtol=5e-3)


def test_guidance_interval_in_network_time():
    """Departure 3: guidance_interval_time='network' compares the network's time (ReLinear: 1 - t)."""
    calls = []

    class Recorder(Linear2D):
        def forward(self, x, t, y=None):
            calls.append(x.shape[0])
            return super().forward(x, t, y)

    net, z, y = Recorder(num_classes=2), torch.randn(3, 2), torch.zeros(3, dtype=torch.long)
    kw = {
        "time_points": [0.9, 0.5, 0.1],
        "y": y,
        "guidance_scale": 2.0,
        "guidance_interval": (0.0, 0.3),
    }
    sample(net, z, "relinear", **kw)
    library = list(calls)
    calls.clear()
    sample(net, z, "relinear", guidance_interval_time="network", **kw)
    # library time 0.1 is inside (0, 0.3); network time 1 - 0.9 = 0.1 is inside instead
    assert library == [3, 3, 6] and calls == [6, 3, 3]
    with pytest.raises(ValueError, match="guidance_interval_time must be 'library' or 'network'"):
        sample(net, z, "relinear", guidance_interval_time="nope", **kw)


def test_reference_half_pi_transport_differs_slightly():
    """Departure 4: the 1.57 transports for reference-trained checkpoints."""
    from ucgm_lab.transports import REFERENCE_HALF_PI, reference_transport
    from ucgm_lab.zoo import load

    tr = reference_transport("TrigFlow")
    t = torch.tensor([0.3], dtype=torch.float64)
    torch.testing.assert_close(tr.alpha(t), torch.sin(REFERENCE_HALF_PI * t))
    assert reference_transport("linear").name == "Linear"
    zm = load("checkerboard-trigflow-lam0")
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    a = sample(zm.model, z, "trigflow", 32).sample
    b = sample(zm.model, z, tr, 32).sample
    diff = float((a - b).abs().max())
    assert 1e-4 < diff < 1e-3  # docs/architecture.md: up to 7e-4


# ---------------------------------------------------------------------- objective
def test_objective_bad_arguments():
    with pytest.raises(TypeError, match="teacher_decay must be a finite number"):
        UCGMObjective("linear", teacher_decay="0.9")
    with pytest.raises(TypeError, match="null_class must be a class id"):
        UCGMObjective("linear", null_class="a")
    with pytest.raises(ValueError, match=r"zeta\) must lie in \[0, 4\] for lambda > 0"):
        UCGMObjective("linear", consistency_ratio=1.0, enhancement_ratio=1e6)
    UCGMObjective("linear", consistency_ratio=1.0, enhancement_ratio=2.0)  # Tab. 6
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator .*not 123"):
        UCGMObjective("linear")(Linear2D(), torch.randn(4, 2), generator=123)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("data_dtype", [torch.float16, torch.float64])
def test_objective_model_dtype_wins(lam, data_dtype):
    """Obscure: float16/float64 data with a float32 model was a matmul dtype error."""
    net = Linear2D()
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    t = torch.rand(16, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(2))
    obj = UCGMObjective("linear", lam)
    ref = obj(net, x, t=t, noise=z).loss
    out = obj(net, x.to(data_dtype), t=t, noise=z.to(data_dtype))
    out.loss.backward()
    assert net.lin.weight.grad is not None and math.isfinite(float(out.loss.detach()))
    loss, ref = float(out.loss.detach()), float(ref.detach())
    assert abs(loss - ref) < 2e-2 * max(1.0, abs(ref))


# ---------------------------------------------------------------------- trainer config
def test_trainer_config_bad_values():
    """Silent: checkpoint_every=-5 saved every 5 steps; log_every=0 divided by zero in fit."""
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 0"):
        TrainerConfig(checkpoint_every=-5)
    with pytest.raises(ValueError, match="log_every must be an integer >= 1"):
        TrainerConfig(log_every=0)
    with pytest.raises(TypeError, match="ema_decay must be a finite number, got 'x'"):
        TrainerConfig(ema_decay="x")
    with pytest.raises(TypeError, match="lr must be a finite number"):
        TrainerConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="betas must lie in"):
        TrainerConfig(betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        TrainerConfig(steps=2.5)
    with pytest.raises(TypeError, match="progress must be True or False"):
        TrainerConfig(progress="no")


# ---------------------------------------------------------------------- command lines
def test_demo_command_line_errors(tmp_path, capsys):
    """Silent/obscure: --samples 1, --steps -1 (top-level usage), --out a file."""
    from ucgm_lab.cli import main
    from ucgm_lab.demo import DemoConfig

    a_file = tmp_path / "f"
    a_file.write_text("x")
    cases = [
        (["demo", "--samples", "1"], "--samples must be >= 100"),
        (["demo", "--steps", "-1"], "--steps must be >= 1, got -1"),
        (["demo", "--out", str(a_file)], "is a file"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert message in err and "ucgm-lab demo: error" in err and "usage: ucgm-lab demo" in err
    with pytest.raises(ValueError, match="samples must be >= 100"):
        DemoConfig(samples=5)


@pytest.mark.parametrize("module", ["ucgm_lab.zoo", "ucgm_lab.images"])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_zoo_build_command_line_errors(module, tmp_path, capsys):
    """Obscure: `zoo build --only nope` and `--out` a file were tracebacks."""
    import importlib

    main = importlib.import_module(f"{module}.__main__").main
    with pytest.raises(SystemExit):
        main(["build", "--only", "nope", "--out", str(tmp_path)])
    assert "unknown name(s) nope; known:" in capsys.readouterr().err
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(SystemExit):
        main(["build", "--out", str(a_file)])
    assert "is a file" in capsys.readouterr().err
