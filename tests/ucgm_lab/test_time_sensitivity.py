import math
import warnings

import pytest
import torch

from ucgm_lab.networks import MLP2D, TimeScaled
from ucgm_lab.objective import LAMBDA0_RECHECK_CALL, UCGMObjective
from ucgm_lab.time_sensitivity import (
    TimeSensitivityWarning,
    time_sensitivity,
    warn_if_time_sensitive,
)


class FourierNet(torch.nn.Module):
    """A user's network: sin / cos of t at 16 frequencies from 1 to S."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer("freqs", torch.logspace(0, math.log10(scale), 16))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(34, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2)
        )

    def forward(self, x, t, y=None):
        a = t[:, None] * self.freqs
        return self.net(torch.cat([x, a.sin(), a.cos()], 1))


class UnitTimeNet(torch.nn.Module):
    """A SiT-style network that takes t in [0, 1] as a plain input."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2)
        )

    def forward(self, x, t, y=None):
        return self.net(torch.cat([x, t[:, None]], 1))


def _x():
    return torch.randn(512, 2, generator=torch.Generator().manual_seed(0))


def _nets(fast):
    torch.manual_seed(0)
    if fast:
        return {"fourier-1000": FourierNet(1000.0), "mlp2d-1000": MLP2D(hidden=64, depth=2)}
    return {
        "fourier-30": FourierNet(30.0),
        "mlp2d-30": MLP2D(hidden=64, depth=2, time_scale=30.0),
        "mlp2d-1000-wrapped": TimeScaled(MLP2D(hidden=64, depth=2), 0.03),
        "fourier-1000-wrapped": TimeScaled(FourierNet(1000.0), 0.03),
        "unit-time": UnitTimeNet(),
    }


@pytest.mark.parametrize("name", list(_nets(True)))
def test_fires_for_scale_1000(name):
    net = _nets(True)[name]
    result = time_sensitivity(net, _x())
    assert result.too_fast, result
    with pytest.warns(TimeSensitivityWarning, match=r"TimeScaled\(network, time_scale=30 / S\)"):
        warn_if_time_sensitive(net, _x())


@pytest.mark.parametrize("name", list(_nets(False)))
def test_silent_for_smooth_networks(name):
    net = _nets(False)[name]
    result = time_sensitivity(net, _x())
    assert not result.too_fast and result.relative_change < 0.01, result
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_time_sensitive(net, _x())


def test_silent_for_trained_zoo_models():
    from ucgm_lab.zoo import load

    for name in ("checkerboard-linear-lam0", "checkerboard-trigflow-lam0"):
        zm = load(name)
        result = time_sensitivity(zm.model, _x(), zm.transport)
        assert not result.too_fast, (name, result)


def test_measure_against_an_independent_computation():
    """r for F = x_t + c sin(w t) (linear transport): f^x = x_t - t F in closed form."""
    w, c, eps = 400.0, 0.01, 0.005

    def model(x_t, t, y=None):
        return x_t + c * torch.sin(w * t)[:, None]

    x = _x().double()
    gen = torch.Generator().manual_seed(0)
    from ucgm_lab.schedules import BetaTimeDistribution

    t = BetaTimeDistribution().sample(
        64, dtype=torch.float64, generator=gen, t_min=eps, t_max=1 - eps
    )
    z = torch.randn(64, 2, generator=gen, dtype=torch.float64)

    def fx(r):
        x_r = r[:, None] * z + (1 - r[:, None]) * x[:64]
        return x_r - r[:, None] * model(x_r, r)

    def rel(d, ref):
        return float((d - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())

    d_eps = (fx(t + eps) - fx(t - eps)) / (2 * eps)
    # the exact derivative by reverse-mode autograd (each f_i depends on t_i only)
    tt = t.clone().requires_grad_(True)
    exact = torch.stack([torch.autograd.grad(fx(tt)[:, j].sum(), tt)[0] for j in range(2)], dim=1)
    jvp = time_sensitivity(model, x, "linear", epsilon=eps, max_samples=64, method="jvp")
    assert jvp.method == "jvp" and jvp.relative_change == pytest.approx(rel(d_eps, exact), rel=1e-9)
    fd = time_sensitivity(model, x, "linear", epsilon=eps, max_samples=64)
    expected = max(
        rel(d_eps, (fx(t + eps / k) - fx(t - eps / k)) / (2 * eps / k)) for k in (2, 3, 5, 16)
    )
    assert fd.method == "differences"
    assert fd.relative_change == pytest.approx(expected, rel=1e-9)
    assert jvp.samples == 64 and jvp.epsilon == eps


class OneFrequency(torch.nn.Module):
    """One time feature sin(w t) beside x."""

    def __init__(self, w):
        super().__init__()
        self.w = w
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x, t, y=None):
        return self.lin(torch.cat([x, torch.sin(self.w * t)[:, None]], 1))


@pytest.mark.parametrize("method", ["jvp", "differences"])
@pytest.mark.parametrize("w", [2513.0, 5000.0])
def test_fires_where_epsilon_and_epsilon_over_2_alias(w, method):
    # issue 24: sinc(w eps) = sinc(w eps / 2) (both ~0 at w = 2513, both -0.005 at 5000), so
    # comparing D_eps with D_{eps/2} gave r = 0.004 / 0.002 while D_eps was 100% wrong
    torch.manual_seed(0)
    result = time_sensitivity(OneFrequency(w), _x(), method=method)
    assert result.method == method and result.too_fast and result.relative_change > 0.5, result


@pytest.mark.parametrize("name", list(_nets(False)))
def test_jvp_and_differences_agree_on_smooth_networks(name):
    net = _nets(False)[name]
    jvp = time_sensitivity(net, _x(), method="jvp")
    fd = time_sensitivity(net, _x())
    assert fd.method == "differences" and jvp.method == "jvp"
    assert fd.relative_change < 0.01 and jvp.relative_change < 0.01
    assert fd.derivative_rms == pytest.approx(jvp.derivative_rms, rel=1e-3)


def test_auto_falls_back_to_differences_without_forward_mode():
    class NoForwardMode(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, g):
            return g

    net = MLP2D(hidden=32, depth=1)  # time_scale 1000: too fast

    def model(x_t, t, y=None):
        return NoForwardMode.apply(net(x_t, t))

    result = time_sensitivity(model, _x(), method="auto")
    assert result.method == "differences" and result.too_fast
    with pytest.raises(ValueError, match="method='jvp' needs a network that supports forward-mode"):
        time_sensitivity(model, _x(), method="jvp")
    assert time_sensitivity(net, _x(), method="auto").method == "jvp"


def test_a_zero_output_layer_is_checked_again_after_training_steps():
    # issue 24: a network whose output layer starts at zero is constant in t at the first
    # check (r = 0), so the check never warned whatever training made of it
    from ucgm_lab.time_sensitivity import DEFAULT_RECHECK_AFTER, TimeSensitivityMonitor

    torch.manual_seed(0)
    net = MLP2D(hidden=32, depth=1)  # time_scale 1000: too fast once the output is not zero
    last = net.out_proj
    trained = {k: v.clone() for k, v in last.state_dict().items()}
    with torch.no_grad():
        for p in last.parameters():
            p.zero_()
    x = _x()
    objective = UCGMObjective("linear", 1.0)
    assert objective.time_monitor.recheck_after == DEFAULT_RECHECK_AFTER
    objective.time_monitor = TimeSensitivityMonitor(recheck_after=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        objective(net, x)
        first = objective.time_sensitivity
        assert not first.too_fast and first.network_derivative_rms == 0.0
        last.load_state_dict(trained)  # what training steps would do
        for _ in range(4):
            objective(net, x)
    fired = [w for w in caught if issubclass(w.category, TimeSensitivityWarning)]
    assert len(fired) == 1 and objective.time_sensitivity.too_fast
    assert len(objective.time_monitor.results) == 2


def test_objective_warns_once_before_the_first_few_step_step():
    net = MLP2D(hidden=32, depth=1)  # time_scale 1000
    x = _x()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        objective = UCGMObjective("linear", 1.0)
        objective(net, x)
        objective(net, x)
    fired = [w for w in caught if issubclass(w.category, TimeSensitivityWarning)]
    assert len(fired) == 1
    assert "lambda = 0 (multi-step) run is not affected" not in str(fired[0].message)
    assert objective.time_sensitivity is not None and objective.time_sensitivity.too_fast
    quiet = UCGMObjective("linear", 1.0, check_time_sensitivity=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(net, x)
    assert quiet.time_sensitivity is None


def test_objective_warns_once_at_lambda_0_that_multi_step_may_go_on():
    """The check runs at lambda = 0 too, before the multi-step run is spent (issue 30)."""
    net = MLP2D(hidden=32, depth=1)  # time_scale 1000
    x = _x()
    objective = UCGMObjective("linear", 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(LAMBDA0_RECHECK_CALL + 1):
            objective(net, x)
    fired = [w for w in caught if issubclass(w.category, TimeSensitivityWarning)]
    assert len(fired) == 1, [str(w.message) for w in fired]
    text = str(fired[0].message)
    assert "lambda = 0 (multi-step) run is not affected" in text
    assert "TimeScaled(network, time_scale=30 / S)" in text
    with warnings.catch_warnings():  # smooth networks: silent at both checks
        warnings.simplefilter("error")
        smooth = UCGMObjective("linear", 0.0)
        for _ in range(LAMBDA0_RECHECK_CALL + 1):
            smooth(TimeScaled(MLP2D(hidden=32, depth=1), 0.03), x)
    assert smooth.time_sensitivity is not None and not smooth.time_sensitivity.too_fast


class ZeroOutputNet(torch.nn.Module):
    """A 1000 t embedding whose output layer starts at zero: F does not depend on t at first."""

    def __init__(self):
        super().__init__()
        self.inner = MLP2D(hidden=32, depth=1)
        self.out = torch.nn.Linear(2, 2)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, x, t, y=None):
        return self.out(self.inner(x, t))


def test_lambda_0_rechecks_a_network_whose_output_starts_at_zero():
    torch.manual_seed(0)
    net = ZeroOutputNet()
    x = _x()
    objective = UCGMObjective("linear", 0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in range(LAMBDA0_RECHECK_CALL + 1):  # the second check is call 100 (0-based)
            loss = objective(net, x).loss
            if call == 0:
                assert not objective.time_sensitivity.too_fast  # F = 0: nothing to see yet
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    fired = [w for w in caught if issubclass(w.category, TimeSensitivityWarning)]
    assert len(fired) == 1 and objective.time_sensitivity.too_fast


def test_the_check_keeps_the_models_mode_and_buffers():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(2)

    class BNNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn, self.net = bn, MLP2D(hidden=16, depth=1)

        def forward(self, x, t, y=None):
            return self.net(self.bn(x), t)

    net = BNNet().train()
    before = bn.running_mean.clone()
    objective = UCGMObjective("linear", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objective._check_time_sensitivity(net, _x(), None)
    assert net.training and torch.equal(bn.running_mean, before)


def test_the_check_leaves_the_random_state_and_the_loss_unchanged():
    net = MLP2D(hidden=32, depth=1, time_scale=30.0)
    x = _x()

    def run(check):
        torch.manual_seed(5)
        objective = UCGMObjective("linear", 1.0, check_time_sensitivity=check)
        out = objective(net, x, generator=torch.Generator().manual_seed(3))
        return out.loss, torch.rand(3)

    (loss_a, after_a), (loss_b, after_b) = run(True), run(False)
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
    torch.testing.assert_close(after_a, after_b, rtol=0, atol=0)


def test_the_check_restores_each_submodules_mode():
    net = MLP2D(hidden=16, depth=1).train()
    frozen = next(iter(net.children())).eval()  # one submodule kept in eval by the user
    objective = UCGMObjective("linear", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objective._check_time_sensitivity(net, _x(), None)
    assert net.training and not frozen.training
