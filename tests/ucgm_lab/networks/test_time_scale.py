import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D, TimeScaled, build_network


class RecordingNet(torch.nn.Module):
    """A user's network: returns the time it saw, so the factor is visible in the output."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.seen = None

    def forward(self, x, t, y=None):
        self.seen = t.clone()
        return self.lin(torch.cat([x, t[:, None].to(x.dtype)], 1))


def test_the_network_sees_the_scaled_time():
    inner = RecordingNet().double()
    wrapped = TimeScaled(inner, 0.03)
    x, t = torch.randn(4, 2, dtype=torch.float64), torch.rand(4, dtype=torch.float64)
    out = wrapped(x, t)
    torch.testing.assert_close(inner.seen, 0.03 * t)
    torch.testing.assert_close(out, inner(x, 0.03 * t))
    assert wrapped.factor == pytest.approx(0.03)


def test_labels_and_attributes_pass_through():
    inner = MLP2D(hidden=16, depth=1, num_classes=3, time_scale=1000.0)
    wrapped = TimeScaled(inner, 0.03)
    assert wrapped.null_class == 3 and wrapped.num_classes == 3
    x, t, y = torch.randn(5, 2), torch.rand(5), torch.tensor([0, 1, 2, 3, 0])
    torch.testing.assert_close(wrapped(x, t, y), inner(x, 0.03 * t, y))
    # the wrapper's own buffer wins over the inner network's attribute of the same name
    assert float(wrapped.time_scale) == pytest.approx(0.03) and inner.time_scale == 1000.0


def test_wrapped_scale_1000_equals_scale_30():
    torch.manual_seed(0)
    raw30 = MLP2D(hidden=16, depth=1, time_scale=30.0)
    big = MLP2D(hidden=16, depth=1, time_scale=1000.0)
    big.load_state_dict(raw30.state_dict())
    x, t = torch.randn(7, 2), torch.rand(7)
    torch.testing.assert_close(TimeScaled(big, 0.03)(x, t), raw30(x, t), rtol=1e-4, atol=1e-5)


def test_state_dict_round_trip_restores_the_factor_and_the_samples(tmp_path):
    torch.manual_seed(1)
    wrapped = TimeScaled(MLP2D(hidden=16, depth=1), 0.03)
    assert "time_scale" in wrapped.state_dict()
    save_file(wrapped.state_dict(), tmp_path / "w.safetensors")
    # a fresh wrapper built with another factor takes the checkpoint's
    fresh = TimeScaled(MLP2D(hidden=16, depth=1), 1.0)
    fresh.load_state_dict(load_file(tmp_path / "w.safetensors"))
    assert fresh.factor == pytest.approx(0.03)
    noise = torch.randn(50, 2, generator=torch.Generator().manual_seed(2))
    a = sample(wrapped, noise, "linear", steps=4, kappa=0.5)
    b = sample(fresh, noise, "linear", steps=4, kappa=0.5)
    torch.testing.assert_close(a.sample, b.sample)
    # and differs from the unwrapped network's samples: the factor is applied in sampling
    c = sample(fresh.network, noise, "linear", steps=4, kappa=0.5)
    assert not torch.allclose(a.sample, c.sample)


def test_config_rebuilds_the_wrapper():
    wrapped = TimeScaled(MLP2D(hidden=16, depth=1, time_scale=1000.0), 0.03)
    rebuilt = build_network(wrapped.config)
    assert isinstance(rebuilt, TimeScaled) and isinstance(rebuilt.network, MLP2D)
    rebuilt.load_state_dict(wrapped.state_dict())
    x, t = torch.randn(3, 2), torch.rand(3)
    torch.testing.assert_close(rebuilt(x, t), wrapped(x, t))


def test_wrapped_checkpoint_into_raw_network_fails_clearly():
    wrapped = TimeScaled(MLP2D(hidden=16, depth=1), 0.03)
    with pytest.raises(RuntimeError, match="time_scale"):
        MLP2D(hidden=16, depth=1).load_state_dict(wrapped.state_dict())


def test_raw_checkpoint_into_wrapper_fails_clearly():
    raw = MLP2D(hidden=16, depth=1)
    with pytest.raises(RuntimeError, match="not saved from a TimeScaled model"):
        TimeScaled(MLP2D(hidden=16, depth=1), 0.03).load_state_dict(raw.state_dict())


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "0.03"])
def test_bad_factor(bad):
    with pytest.raises(ValueError, match="time_scale must be a positive finite number"):
        TimeScaled(MLP2D(hidden=16, depth=1), bad)


def test_not_callable():
    with pytest.raises(TypeError, match="callable"):
        TimeScaled(3, 0.1)


@pytest.mark.parametrize("bad", [math.nan, -3.0, 0.0, math.inf])
def test_load_state_dict_refuses_a_bad_time_scale(bad):
    # issue 24: a NaN or negative factor loaded silently (sampling with -3 gave finite samples)
    torch.manual_seed(0)
    model = TimeScaled(MLP2D(hidden=16, depth=1), 0.03)
    state = model.state_dict()
    state["time_scale"] = torch.tensor(bad, dtype=torch.float64)
    with pytest.raises(ValueError, match="'time_scale' must be one positive finite number"):
        model.load_state_dict(state)
    assert model.factor == pytest.approx(0.03)
