"""Beta time distribution and Kumaraswamy / timeshift grids (App. B.2)."""

import sympy as sp
import torch

from ucgm_lab import AUTO_KUMARASWAMY
from ucgm_lab.schedules import kumaraswamy, timeshift
from ucgm_lab.symbolic import (
    beta_density,
    beta_matching_logit_normal,
    beta_mode,
    fit_kumaraswamy,
    kumaraswamy_expr,
    shift_matching_kumaraswamy,
    t,
    timeshift_expr,
    timeshift_facts,
)
from ucgm_lab.symbolic.schedules import theta1, theta2, u


def test_beta_mode():
    m = beta_mode()
    assert m.residual == 0
    assert sp.simplify(m.mode - (theta1 - 1) / (theta1 + theta2 - 2)) == 0
    # a maximum for theta > 1
    assert m.curvature_at_mode.subs({theta1: 2.4, theta2: 2.4}) < 0
    # the density integrates to one and peaks at the mode
    dens = beta_density(3, 2)
    assert sp.integrate(dens, (t, 0, 1)) == 1
    assert sp.solve(sp.diff(dens, t), t) == [0, sp.Rational(2, 3)]


def test_beta_matching_standard_logit_normal():
    res = beta_matching_logit_normal()
    assert abs(res.mean - 0.5) < 1e-12
    assert abs(res.theta1 - res.theta2) < 1e-12
    assert 2.37 < res.theta1 < 2.39  # the paper's Beta(2.4, 2.4)
    # the matched Beta has the logit-normal variance
    p = res.theta1
    assert abs(res.variance - 1 / (4 * (2 * p + 1))) < 1e-12
    assert res.max_density_gap < 0.1


def test_symbolic_schedules_equal_the_library():
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    k = sp.lambdify(u, kumaraswamy_expr(1.17, 0.8, 1.1))
    s = sp.lambdify(u, timeshift_expr(0.3))
    torch.testing.assert_close(
        kumaraswamy(grid, *AUTO_KUMARASWAMY),
        torch.tensor([float(k(float(v))) for v in grid], dtype=torch.float64),
    )
    torch.testing.assert_close(
        timeshift(grid, 0.3), torch.tensor([float(s(float(v))) for v in grid], dtype=torch.float64)
    )


def test_timeshift_facts():
    f = timeshift_facts()
    s = sp.Symbol("s", positive=True)
    a, b = sp.symbols("a b", positive=True)
    assert f.kumaraswamy_identity == 0 and f.timeshift_identity == 0
    assert f.timeshift_inverse == 0 and f.timeshift_flip == 0
    assert (
        sp.simplify(f.kumaraswamy_cdf_density - a * b * u ** (a - 1) * (1 - u**a) ** (b - 1)) == 0
    )
    assert f.timeshift_slopes == (s, 1 / s)


def test_fit_beats_identity_by_far():
    for shift in (0.5, 2.0):
        fit = fit_kumaraswamy(shift)
        assert fit.max_error < 0.02 < 0.17 < fit.identity_max_error
        for value in (fit.a, fit.b, fit.c):
            assert 0.5 - 1e-9 <= value <= 2.0 + 1e-9


def test_auto_is_a_timeshift_of_about_two():
    m = shift_matching_kumaraswamy(*AUTO_KUMARASWAMY)
    assert 0.49 < m.shift < 0.51 and 1.95 < m.time_shift < 2.05
    assert m.max_error < 0.02
