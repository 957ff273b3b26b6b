"""The UCGM-S derivations (Alg. 2, App. B.1.3, B.1.6) and their agreement with the sampler."""

import pytest
import sympy as sp
import torch

from ucgm_lab import get_transport, sample
from ucgm_lab.sampler import auto_stochastic_ratio
from ucgm_lab.sampler import second_order_correction as library_correction
from ucgm_lab.symbolic import (
    adams_bashforth_check,
    euler_reduction,
    pf_ode_derivation,
    second_order_correction,
    stochastic_ratio,
    symbolic_transport,
    t,
    to_numeric,
    tweedie_gaussian_check,
)
from ucgm_lab.symbolic.derivations import (
    F,
    alpha_fn,
    gamma_fn,
    t_i,
    t_next,
    x_tilde,
    z_hat_next,
    z_hat_sym,
)
from ucgm_lab.transports import Decomposition


def _zero(expr):
    return sp.simplify(expr) == 0


@pytest.mark.parametrize(
    ("name", "ratio"),
    [("linear", 1), ("relinear", -1), ("trigflow", sp.pi / 2)],
)
def test_euler_reduction(name, ratio):
    res = euler_reduction(name)
    assert res.zeroth_order_residual == 0
    assert _zero(res.velocity - ratio * F)
    assert res.is_euler is (ratio == 1)


@pytest.mark.parametrize("name", ["triglinear", "random"])
def test_non_flow_matching_step_is_not_euler_on_F(name):
    res = euler_reduction(name)
    assert res.zeroth_order_residual == 0
    assert res.velocity_over_output is None
    # the drift is alpha' f^z + gamma' f^x (the PF-ODE of App. B.1.3)
    tr = symbolic_transport(name)
    da, dg = tr.path_velocity()
    assert _zero(res.velocity - (da * tr.f_z(F, x_tilde) + dg * tr.f_x(F, x_tilde)))


def test_euler_reduction_step_matches_the_library_sampler_numerically():
    # one deterministic step of the library = the symbolic step at the same numbers
    res = euler_reduction("random")
    tr = get_transport("random")
    state, out = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-1.1], dtype=torch.float64)

    def model(x_in, t_net):
        return out.expand_as(x_in)

    lib = sample(model, state[None], tr, time_points=[0.7, 0.6, 0.5]).states[1]
    sym = res.step.subs({x_tilde: 0.3, F: -1.1, t: 0.7, sp.Symbol("Delta_t", real=True): -0.1})
    assert abs(float(lib[0, 0]) - float(sym)) < 1e-12


def test_second_order_correction_must_average_z():
    good, bad = second_order_correction("z"), second_order_correction("x")
    assert _zero(good.change_of_variables - sp.Function("zhat")(sp.Symbol("t", real=True)))
    assert good.is_consistent
    assert not bad.is_consistent
    assert (
        bad.trapezoid_residual != 0 and bad.exact_path_residual != 0 and bad.predictor_residual != 0
    )
    a0, g0, a1, g1 = alpha_fn(t_i), gamma_fn(t_i), alpha_fn(t_next), gamma_fn(t_next)
    x, z = sp.symbols("x z", real=True)
    assert _zero(bad.exact_path_residual - (a1 * g0 - a0 * g1) * (x - z) / g0)
    expected = x_tilde * g1 / g0 + (a1 - g1 * a0 / g0) * (z_hat_sym + z_hat_next) / 2
    assert _zero(good.formula - expected) and _zero(good.trapezoid - expected)


def test_second_order_correction_rejects_other_averages():
    with pytest.raises(ValueError):
        second_order_correction("F")


@pytest.mark.parametrize("name", ["linear", "trigflow", "random"])
def test_library_correction_is_the_derived_formula(name):
    formula = second_order_correction("z").formula
    sym = symbolic_transport(name)
    tr = get_transport(name)
    t0, t1 = 0.8, 0.65
    subs = {
        alpha_fn(t_i): sym.at(sym.alpha, t0),
        gamma_fn(t_i): sym.at(sym.gamma, t0),
        alpha_fn(t_next): sym.at(sym.alpha, t1),
        gamma_fn(t_next): sym.at(sym.gamma, t1),
        x_tilde: 0.4,
        z_hat_sym: -0.7,
        z_hat_next: 1.3,
    }
    expected = float(formula.subs(subs))
    lib = library_correction(
        tr,
        torch.tensor([0.4], dtype=torch.float64),
        torch.tensor(t0, dtype=torch.float64),
        torch.tensor(t1, dtype=torch.float64),
        Decomposition(
            torch.zeros(1, dtype=torch.float64), torch.tensor([-0.7], dtype=torch.float64)
        ),
        Decomposition(
            torch.zeros(1, dtype=torch.float64), torch.tensor([1.3], dtype=torch.float64)
        ),
    )
    assert abs(float(lib[0]) - expected) < 1e-12


def test_adams_bashforth_check_at_one_half():
    ab = adams_bashforth_check(0.5)
    h = sp.Symbol("h", positive=True)
    x_prev, x_cur, F_prev, F_cur = sp.symbols("x_i-1 x_i F_i-1 F_i", real=True)
    k = sp.Symbol("kappa", positive=True)
    assert ab.velocity_residual == 0
    assert _zero(
        ab.update
        - (sp.Rational(3, 2) * x_cur - x_prev / 2 - sp.Rational(3, 2) * h * F_cur + h * F_prev)
    )
    assert _zero(
        ab.general_update - ((1 + k) * x_cur - k * x_prev - h * ((1 + k) * F_cur - 2 * k * F_prev))
    )
    assert _zero(ab.difference - (x_cur - x_prev + h * F_prev) / 2)
    assert ab.first_step_residual == 0
    X2, X3 = sp.symbols("X'' X'''", real=True)
    assert _zero(ab.local_error + X2 * h**2 / 4)
    assert _zero(ab.ab2_local_error + 5 * X3 * h**3 / 12)
    assert ab.second_order_kappa == sp.Rational(1, 3)


def test_kappa_one_third_is_second_order_and_zero_is_euler():
    X2, X3 = sp.symbols("X'' X'''", real=True)
    h = sp.Symbol("h", positive=True)
    assert _zero(adams_bashforth_check(sp.Rational(1, 3)).local_error + 4 * X3 * h**3 / 9)
    assert _zero(adams_bashforth_check(0).local_error - X2 * h**2 / 2)


def test_library_sampler_with_kappa_half_follows_the_derived_recursion():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    ).double()

    def model(x_in, t_net):
        return net(torch.cat([x_in, t_net[:, None]], dim=1))

    noise = torch.randn(4, 2, dtype=torch.float64)
    times = [0.9, 0.8, 0.7, 0.6, 0.5]
    out = sample(model, noise, "linear", time_points=times, kappa=0.5)
    h = 0.1
    with torch.no_grad():
        s = out.states
        vel = [model(s[i], torch.full((4,), times[i], dtype=torch.float64)) for i in range(3)]
        ab2 = s[1] - h * (1.5 * vel[1] - 0.5 * vel[0])
        torch.testing.assert_close(s[2], ab2)  # first extrapolated step: exactly AB2
        lmm = 1.5 * s[2] - 0.5 * s[1] - h * (1.5 * vel[2] - vel[1])
        torch.testing.assert_close(s[3], lmm)  # later: the derived two-step method
        assert not torch.allclose(s[3], s[2] - h * (1.5 * vel[2] - 0.5 * vel[1]))


def test_stochastic_ratio():
    sr = stochastic_ratio()
    g2 = sp.Symbol("g^2", positive=True)
    dt = sp.Abs(sp.Symbol("Delta_t", real=True))
    a0, a1 = alpha_fn(t_i), alpha_fn(t_next)
    assert _zero(sr.rho - g2 * dt / a1**2)
    assert _zero(sr.appendix_rho - 2 * dt * a0 / a1**2)
    assert _zero(sr.main_text_variance_ratio - a1)


def test_library_auto_ratio_is_the_appendix_formula():
    sr = stochastic_ratio()
    tr, sym = get_transport("trigflow"), symbolic_transport("trigflow")
    t0, t1 = 0.8, 0.7
    dt = sp.Abs(sp.Symbol("Delta_t", real=True))
    value = sr.appendix_rho.subs(
        {alpha_fn(t_i): sym.at(sym.alpha, t0), alpha_fn(t_next): sym.at(sym.alpha, t1), dt: t0 - t1}
    )
    lib = auto_stochastic_ratio(
        tr, torch.tensor(t0, dtype=torch.float64), torch.tensor(t1, dtype=torch.float64)
    )
    assert abs(float(lib) - float(value)) < 1e-12


def test_pf_ode_derivation():
    po = pf_ode_derivation()
    tau = sp.Symbol("t", real=True)
    a, g = alpha_fn(tau), gamma_fn(tau)
    assert _zero(po.drift_coefficient - sp.diff(g, tau) / g)
    assert _zero(po.g_squared - (2 * a * sp.diff(a, tau) - 2 * sp.diff(g, tau) / g * a**2))
    assert _zero(po.tweedie_z + a * sp.Symbol("s", real=True))
    assert po.velocity_residual == 0
    assert _zero(po.g_squared_for("linear") - 2 * t / (1 - t))
    assert _zero(po.g_squared_for("trigflow") - sp.pi * sp.tan(sp.pi * t / 2))


def test_tweedie_on_gaussian_data():
    assert tweedie_gaussian_check().residual == 0


def test_to_numeric_transport_runs_euler_exactly():
    # rho = kappa = 0 on Linear is Euler: check with the lambdified transport
    tr = to_numeric("linear")

    def model(x_in, t_net):
        return torch.sin(x_in) + t_net[:, None]

    noise = torch.randn(3, 2, dtype=torch.float64)
    out = sample(model, noise, tr, time_points=[0.9, 0.6, 0.3])
    x = noise.clone()
    times = [0.9, 0.6, 0.3, 0.0]
    for i in range(2):
        x = x + (times[i + 1] - times[i]) * model(
            x, torch.full((3,), times[i], dtype=torch.float64)
        )
    torch.testing.assert_close(out.states[2], x)
