"""Flow-matching adapters (data at s = 1): paths and Euler equivalence with the peer libraries."""

import math

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.adapters import AffinePath, adapt_flow_matching, adapt_torchcfm, flow_transport

fm_path = pytest.importorskip("flow_matching.path")
fm_scheduler = pytest.importorskip("flow_matching.path.scheduler")
fm_solver = pytest.importorskip("flow_matching.solver")
fm_utils = pytest.importorskip("flow_matching.utils")
cfm = pytest.importorskip("torchcfm.conditional_flow_matching")
cfm_models = pytest.importorskip("torchcfm.models.models")
torchdiffeq = pytest.importorskip("torchdiffeq")

SCHEDULERS = {
    "CondOT": lambda: fm_scheduler.CondOTScheduler(),
    "Cosine": lambda: fm_scheduler.CosineScheduler(),
    "Polynomial3": lambda: fm_scheduler.PolynomialConvexScheduler(3),
    "VP": lambda: fm_scheduler.VPScheduler(),
    "LinearVP": lambda: fm_scheduler.LinearVPScheduler(),
}


def _pairs(n=64, dtype=torch.float64):
    x0 = torch.randn(n, 2, dtype=dtype)
    x1 = torch.randn(n, 2, dtype=dtype) * 0.5 + 1.0
    s = torch.rand(n, dtype=dtype) * 0.98 + 0.01
    return x0, x1, s


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_transport_reproduces_flow_matching_path_and_velocity(name):
    path = fm_path.AffineProbPath(scheduler=SCHEDULERS[name]())
    x0, x1, s = _pairs()
    ps = path.sample(x_0=x0, x_1=x1, t=s)
    tr = flow_transport(path)
    t = 1 - s  # library time
    torch.testing.assert_close(tr.interpolate(x1, x0, t), ps.x_t)
    torch.testing.assert_close(tr.target(x1, x0, t), ps.dx_t)
    torch.testing.assert_close(tr.model_time(t), s)


class _FMVelocity(fm_utils.ModelWrapper):
    """flow_matching's ODESolver calls velocity_model(x=x, t=t) with a scalar t."""

    def forward(self, x, t, **extras):
        return self.model(x, t.expand(x.shape[0]) if t.ndim == 0 else t)


@pytest.mark.parametrize(
    "s_grid",
    [
        torch.linspace(0, 1, 9, dtype=torch.float64),
        torch.tensor([0.0, 0.05, 0.2, 0.45, 0.7, 0.9, 0.97, 1.0], dtype=torch.float64),
    ],
    ids=["uniform", "nonuniform"],
)
def test_ucgm_order1_equals_flow_matching_odesolver_euler(smooth_net, s_grid):
    net = smooth_net()
    noise = torch.randn(128, 2, dtype=torch.float64)
    solver = fm_solver.ODESolver(velocity_model=_FMVelocity(net))
    with torch.no_grad():
        ref = solver.sample(
            x_init=noise,
            step_size=None,
            method="euler",
            time_grid=s_grid,
            return_intermediates=True,
        )
    adapted = adapt_flow_matching(
        net, fm_path.AffineProbPath(scheduler=fm_scheduler.CondOTScheduler())
    )
    out = sample(
        adapted.model,
        noise,
        adapted.transport,
        time_points=1 - s_grid[:-1],
        kappa=0.0,
        rho=0.0,
        order=1,
    )
    torch.testing.assert_close(out.sample, ref[-1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.states, ref, rtol=1e-12, atol=1e-12)
    assert out.nfe == len(s_grid) - 1


def test_native_grid_is_flow_matching_uniform_grid(smooth_net):
    net = smooth_net()
    noise = torch.randn(32, 2, dtype=torch.float64)
    steps = 7
    solver = fm_solver.ODESolver(velocity_model=_FMVelocity(net))
    with torch.no_grad():
        ref = solver.sample(
            x_init=noise,
            step_size=None,
            method="euler",
            time_grid=torch.linspace(0, 1, steps + 1, dtype=torch.float64),
        )
    adapted = adapt_flow_matching(net)
    out = adapted.sample(noise, steps=steps, native_grid=True)
    torch.testing.assert_close(out.sample, ref, rtol=1e-12, atol=1e-12)


def test_ucgm_on_curved_path_converges_to_the_ode_solution(smooth_net):
    """On a cosine path UCGM-S order 1 is the DDIM-type step, not Euler, but solves the same ODE."""
    net = smooth_net()
    sched = fm_scheduler.CosineScheduler()
    noise = torch.randn(64, 2, dtype=torch.float64)
    solver = fm_solver.ODESolver(velocity_model=_FMVelocity(net))
    with torch.no_grad():
        exact = solver.sample(
            x_init=noise,
            step_size=None,
            method="dopri5",
            atol=1e-10,
            rtol=1e-10,
            time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64),
        )
    adapted = adapt_flow_matching(net, sched)
    errors = [
        (adapted.sample(noise, steps=n, native_grid=True).sample - exact).norm(dim=1).mean().item()
        for n in (50, 100, 200)
    ]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(0.8 < r < 1.3 for r in rates), (errors, rates)  # first order in the step
    assert errors[-1] < 0.02


def test_torchcfm_matchers_paths():
    x0, x1, s = _pairs()
    for matcher, sigma_min in [
        (cfm.ConditionalFlowMatcher(sigma=0.0), None),
        (cfm.TargetConditionalFlowMatcher(sigma=0.05), 0.05),
        (cfm.VariancePreservingConditionalFlowMatcher(sigma=0.0), None),
        (cfm.ExactOptimalTransportConditionalFlowMatcher(sigma=0.0), None),
    ]:
        torch.manual_seed(1)
        if isinstance(matcher, cfm.ExactOptimalTransportConditionalFlowMatcher):
            # The OT plan re-pairs (x0, x1); compare the base class's path on the same pairs.
            t, xt, ut, eps = cfm.ConditionalFlowMatcher.sample_location_and_conditional_flow(
                matcher, x0, x1, s, return_noise=True
            )
        else:
            t, xt, ut, eps = matcher.sample_location_and_conditional_flow(
                x0, x1, s, return_noise=True
            )
        # Lipman's target path draws its own noise eps and ignores x0.
        z = eps if sigma_min is not None else x0
        tr = adapt_torchcfm(lambda x, s: x, matcher).transport
        torch.testing.assert_close(tr.interpolate(x1, z, 1 - t), xt)
        torch.testing.assert_close(tr.target(x1, z, 1 - t), ut)


def test_torchcfm_extra_noise_target_differs_from_conditional_flow_by_unpredictable_noise():
    """With sigma > 0 the optimum is the velocity of x_s = s x + r(s) z' (with_extra_noise)."""
    sigma = 0.3
    n = 200_000
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    s = torch.full((n,), 0.4, dtype=torch.float64)
    matcher = cfm.ConditionalFlowMatcher(sigma=sigma)
    xt = matcher.sample_xt(x0, x1, s, eps)
    ut = matcher.compute_conditional_flow(x0, x1, s, xt)
    r = ((1 - s) ** 2 + sigma**2).sqrt()[:, None]
    z_comb = ((1 - s)[:, None] * x0 + sigma * eps) / r
    tr = adapt_torchcfm(lambda x, s: x, matcher).transport
    torch.testing.assert_close(tr.interpolate(x1, z_comb, 1 - s), xt)
    residual = ut - tr.target(x1, z_comb, 1 - s)
    # The residual is uncorrelated with (hence, being jointly Gaussian, independent of) x_s.
    cov = (residual * (xt - xt.mean(0))).mean(0)
    assert cov.abs().max() < 5 / n**0.5


def test_torchcfm_mlp_concat_convention_euler_equivalence():
    torch.manual_seed(0)
    net = cfm_models.MLP(dim=2, w=16, time_varying=True).double()
    noise = torch.randn(64, 2, dtype=torch.float64)
    steps = 6
    # torchcfm's own convention: v = model(cat[x, t]); Euler on linspace(0, 1, N + 1).
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    x = noise.clone()
    with torch.no_grad():
        for i in range(steps):
            v = net(torch.cat([x, grid[i].expand(x.shape[0])[:, None]], dim=-1))
            x = x + (grid[i + 1] - grid[i]) * v
        via_odeint = torchdiffeq.odeint(
            lambda t, x: net(torch.cat([x, t.expand(x.shape[0])[:, None]], dim=-1)),
            noise,
            grid,
            method="euler",
        )[-1]
    adapted = adapt_torchcfm(net, cfm.ConditionalFlowMatcher(sigma=0.0), inputs="concat")
    out = adapted.sample(noise, steps=steps, native_grid=True)
    torch.testing.assert_close(out.sample, x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.sample, via_odeint, rtol=1e-12, atol=1e-12)


def test_torchcfm_t_x_convention(smooth_net):
    net = smooth_net()
    noise = torch.randn(16, 2, dtype=torch.float64)
    a = adapt_torchcfm(net, inputs="x_t").sample(noise, steps=5)
    b = adapt_torchcfm(lambda t, x: net(x, t), inputs="t_x").sample(noise, steps=5)
    torch.testing.assert_close(a.sample, b.sample)


def test_data_and_noise_predictions_sample_like_the_equivalent_velocity(smooth_net):
    """A data (x_1) or noise (x_0) predictor and its implied velocity sample alike under UCGM-S."""
    net = smooth_net()
    noise = torch.randn(32, 2, dtype=torch.float64)
    grid = torch.linspace(0.99, 0.02, 9, dtype=torch.float64)

    def v_from_data(x, s):
        return (net(x, s) - x) / (1 - s)[:, None]

    def v_from_noise(x, s):
        return (x - net(x, s)) / s[:, None]

    for prediction, v in (("data", v_from_data), ("noise", v_from_noise)):
        a = adapt_flow_matching(net, prediction=prediction).sample(
            noise, time_points=grid, kappa=0.3
        )
        b = adapt_flow_matching(v).sample(noise, time_points=grid, kappa=0.3)
        torch.testing.assert_close(a.sample, b.sample)
        torch.testing.assert_close(a.x_hat, b.x_hat)


def test_condot_transport_is_relinear():
    from ucgm_lab import get_transport

    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    a, b = flow_transport("cond_ot").coefficients(t), get_transport("relinear").coefficients(t)
    for name in ("alpha", "gamma", "alpha_hat", "gamma_hat"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name))


def test_errors_list_allowed_names():
    with pytest.raises(ValueError, match="'velocity', 'data', 'noise'"):
        adapt_flow_matching(lambda x, s: x, prediction="x1")
    with pytest.raises(ValueError, match="cond_ot"):
        adapt_flow_matching(lambda x, s: x, path="straight")
    with pytest.raises(ValueError, match="SchrodingerBridge"):
        adapt_torchcfm(lambda x, s: x, cfm.SchrodingerBridgeConditionalFlowMatcher(sigma=1.0))
    with pytest.raises(ValueError, match="'x_t', 't_x', 'concat'"):
        adapt_flow_matching(lambda x, s: x, inputs="xt")
    with pytest.raises(ValueError, match="sigma_min"):
        AffinePath.cond_ot(sigma_min=1.0)
