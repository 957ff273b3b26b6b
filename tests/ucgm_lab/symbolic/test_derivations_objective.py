"""The UCGM-T derivations: every result equals a hand-written expectation (simplify(...) == 0)."""

import math

import pytest
import sympy as sp

from ucgm_lab.symbolic import (
    derive_prediction_functions,
    finite_difference_errors,
    finite_difference_limit,
    flow_matching_check,
    gaussian_optimal_network,
    lambda_zero_target,
    objective_weight_equivalence,
    symbolic_transport,
    t,
    target_factor,
)
from ucgm_lab.symbolic.derivations import F, alpha, alpha_hat, gamma, gamma_hat, x, x_t, z


def _zero(expr):
    return sp.simplify(expr) == 0


def test_prediction_functions_are_eq2():
    pf = derive_prediction_functions()
    D = alpha * gamma_hat - alpha_hat * gamma
    assert _zero(pf.x_hat - (alpha * F - alpha_hat * x_t) / D)
    assert _zero(pf.z_hat - (gamma_hat * x_t - gamma * F) / D)
    assert _zero(pf.D - D)
    assert pf.matches_eq2
    assert pf.reconstruction_residuals == (0, 0)
    # and the solution really solves the system
    assert _zero(alpha * pf.z_hat + gamma * pf.x_hat - x_t)
    assert _zero(alpha_hat * pf.z_hat + gamma_hat * pf.x_hat - F)


@pytest.mark.parametrize("name", ["linear", "trigflow", "edm", "random"])
def test_prediction_functions_for_transports(name):
    pf = derive_prediction_functions(name)
    tr = symbolic_transport(name)
    assert pf.matches_eq2
    # recover x and z from x_t and the exact target
    sub = {x_t: tr.interpolate(z, x), F: tr.target(z, x)}
    assert _zero(pf.x_hat.subs(sub) - x) and _zero(pf.z_hat.subs(sub) - z)


def test_linear_prediction_functions_by_hand():
    pf = derive_prediction_functions("linear")
    assert _zero(pf.x_hat - (x_t - t * F))
    assert _zero(pf.z_hat - (x_t + (1 - t) * F))


def test_weight_equivalence_needs_the_square():
    w = objective_weight_equivalence()
    D, omega, omega_hat = (
        sp.Symbol("D", real=True, nonzero=True),
        *sp.symbols("omega omegahat", positive=True),
    )
    assert w.error_residual == 0
    assert _zero(w.gradient_ratio - alpha**2 * omega / (D**2 * omega_hat))
    assert _zero(w.required_weight - alpha**2 * omega / D**2)
    assert _zero(w.paper_weight - alpha * omega / D)
    assert _zero(w.ratio_with_paper_weight - alpha / D)
    assert not w.paper_weight_is_exact


def test_lambda_zero_target():
    res = lambda_zero_target()
    D = alpha * gamma_hat - alpha_hat * gamma
    assert res.residual == 0
    assert _zero(res.difference - alpha / D * (F - alpha_hat * z - gamma_hat * x))
    assert _zero(res.target - (alpha_hat * z + gamma_hat * x))
    lin = lambda_zero_target("linear")
    assert _zero(lin.difference - (-t) * (F - (z - x)))


@pytest.mark.parametrize(
    ("name", "exact", "ratio"),
    [
        ("linear", True, 1),
        ("relinear", False, -1),
        ("trigflow", False, 2 / sp.pi),
        ("triglinear", False, None),
        ("random", False, None),
    ],
)
def test_flow_matching_check(name, exact, ratio):
    res = flow_matching_check(name)
    assert res.is_flow_matching is exact
    if ratio is None:
        assert res.velocity_ratio is None
    else:
        assert _zero(res.velocity_ratio - ratio)


def test_edm_is_flow_matching_in_a_changed_time():
    res = flow_matching_check("edm")
    tr = symbolic_transport("edm")
    assert not res.is_flow_matching and res.is_flow_matching_in_some_time
    da, dg = tr.path_velocity()
    assert _zero(tr.alpha_hat - res.velocity_ratio * da)
    assert _zero(tr.gamma_hat - res.velocity_ratio * dg)
    assert t in res.velocity_ratio.free_symbols


def test_finite_difference_series():
    fd = finite_difference_limit()
    tau = sp.Symbol("t", positive=True)
    lam, eps, h = sp.symbols("lambda epsilon h", positive=True)
    f = sp.Function("f")
    d1, d2, d3 = (sp.diff(f(tau), tau, k) for k in (1, 2, 3))
    assert fd.step == h
    assert _zero(fd.limit - d1)
    assert _zero(fd.first_order_series - (d1 - h * d2 / 2 + h**2 * d3 / 6))
    assert _zero(fd.first_order_error + h * d2 / 2)
    assert _zero(fd.central_error - eps**2 * d3 / 6)
    assert _zero(fd.central_series - (d1 + eps**2 * d3 / 6))
    # the series in lambda about 1 has the same limit
    lam_series = sp.series(fd.first_order, lam, 1, 2).removeO().doit()
    assert _zero(lam_series.subs(lam, 1) - d1)


def test_finite_difference_errors_scale_with_order():
    net = gaussian_optimal_network("trigflow", sp.Integer(1), sp.Rational(1, 4))
    rows = finite_difference_errors("trigflow", net, 0.5, -1.2, 0.5, [1e-1, 1e-2, 1e-3])
    first = [r.first_order_error for r in rows]
    central = [r.central_error for r in rows]
    for a, b in zip(first, first[1:], strict=False):
        assert 8 < a / b < 12  # O(eps)
    for a, b in zip(central, central[1:], strict=False):
        assert 80 < a / b < 120  # O(eps^2)
    # exact derivative against sympy directly
    tr = symbolic_transport("trigflow")
    r = sp.Symbol("r")
    xr = tr.interpolate(-1.2, 0.5).subs(t, r)
    fr = tr.f_x(net.subs({x_t: xr, t: r}, simultaneous=True), xr).subs(t, r)
    assert math.isclose(rows[0].derivative, float(sp.diff(fr, r).subs(r, 0.5)), rel_tol=1e-12)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trigflow", -4),
        ("linear", -4 * t / sp.sin(sp.pi * t / 2)),
        ("relinear", 4 * t / sp.sin(sp.pi * t / 2)),
        (
            "triglinear",
            -4
            * sp.sin(sp.pi * t / 2)
            / ((sp.sin(sp.pi * t / 2) + sp.cos(sp.pi * t / 2)) * sp.sin(sp.pi * t / 2)),
        ),
    ],
)
def test_target_factor(name, expected):
    assert _zero(target_factor(name) - expected)
