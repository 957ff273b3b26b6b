"""The symbolic transports of Tab. 2 and the numeric library are one source of truth."""

import math

import pytest
import sympy as sp
import torch

from ucgm_lab import UCGMObjective, get_transport, list_transports, sample
from ucgm_lab.symbolic import (
    SymbolicTransport,
    coefficient_difference,
    lambdify_torch,
    list_symbolic_transports,
    symbolic_transport,
    t,
    to_numeric,
)
from ucgm_lab.transports import Transport

NAMES = list_transports()
GRID = torch.linspace(0.0, 1.0, 10001, dtype=torch.float64)
KEYS = ("alpha", "gamma", "alpha_hat", "gamma_hat")


def _evalf_on(expr, points):
    return torch.tensor(
        [float(sp.sympify(expr).subs(t, p).evalf(30)) for p in points], dtype=torch.float64
    )


def test_same_names_as_the_library():
    assert list_symbolic_transports() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_symbolic_coefficients_equal_library_on_fine_grid(name):
    sym, num = symbolic_transport(name), get_transport(name)
    for key in KEYS:
        ours = sp.lambdify(t, getattr(sym, key), modules="mpmath")
        expected = torch.tensor([float(ours(float(p))) for p in GRID[::50]], dtype=torch.float64)
        torch.testing.assert_close(getattr(num, key)(GRID[::50]), expected, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(
            lambdify_torch(getattr(sym, key), t)(GRID),
            getattr(num, key)(GRID),
            rtol=1e-13,
            atol=1e-13,
        )
    torch.testing.assert_close(lambdify_torch(sym.model_time, t)(GRID), num.model_time(GRID))


@pytest.mark.parametrize("name", NAMES)
def test_coefficient_difference_helper_is_tiny(name):
    assert max(coefficient_difference(name).values()) < 1e-13


def test_grid_check_detects_a_rounded_pi():
    # The reference implementation writes pi/2 as 1.57: the grid comparison must notice.
    rounded = SymbolicTransport(
        sp.sin(sp.Rational(157, 100) * t),
        sp.cos(sp.Rational(157, 100) * t),
        sp.cos(sp.Rational(157, 100) * t),
        -sp.sin(sp.Rational(157, 100) * t),
        name="TrigFlow-1.57",
    )
    diff = coefficient_difference(rounded, get_transport("trigflow"))
    assert max(diff.values()) > 1e-4


def test_relinear_is_re_expressed_in_library_time():
    sym = symbolic_transport("relinear")
    assert sp.simplify(sym.alpha - t) == 0 and sp.simplify(sym.gamma - (1 - t)) == 0
    assert sym.alpha_hat == -1 and sym.gamma_hat == 1
    assert sp.simplify(sym.model_time - (1 - t)) == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [("linear", -1), ("relinear", 1), ("trigflow", -1), ("edm", 2)],
)
def test_constant_D(name, expected):
    assert sp.simplify(symbolic_transport(name).D - expected) == 0


@pytest.mark.parametrize("name", NAMES)
def test_to_numeric_of_builtin_equals_library(name):
    ours, theirs = to_numeric(name), get_transport(name)
    for key in KEYS:
        torch.testing.assert_close(
            getattr(ours, key)(GRID), getattr(theirs, key)(GRID), rtol=1e-13, atol=1e-13
        )
    torch.testing.assert_close(ours.model_time(GRID), theirs.model_time(GRID))
    assert ours.allowed_deviations == theirs.allowed_deviations


def _custom():
    # A quadratic flow-matching path: alpha = t^2, gamma = 1 - t^2, D = -2 t.
    return SymbolicTransport.flow_matching(t**2, 1 - t**2, name="Quadratic")


def test_custom_flow_matching_transport_targets_are_derivatives():
    tr = _custom()
    assert tr.alpha_hat == 2 * t and tr.gamma_hat == -2 * t
    assert sp.simplify(tr.D + 2 * t) == 0


def test_lambdified_custom_transport_equals_its_sympy_source():
    sym = SymbolicTransport(
        sp.sin(sp.pi * t / 2) ** 2,
        sp.cos(sp.pi * t / 2) ** 2 * (1 + t) / (1 + t**2),
        sp.Integer(3),
        -sp.exp(t) * sp.sqrt(2),
        name="custom",
    )
    num = to_numeric(sym, validate=False)
    points = [0.0, 0.013, 0.25, 0.5, 0.77, 0.999, 1.0]
    tt = torch.tensor(points, dtype=torch.float64)
    for key in KEYS:
        torch.testing.assert_close(
            getattr(num, key)(tt), _evalf_on(getattr(sym, key), points), rtol=1e-14, atol=1e-14
        )
        assert getattr(num, key)(tt).shape == tt.shape


def test_constant_coefficients_keep_shape_and_dtype():
    fn = lambdify_torch(sp.Integer(-1), t)
    out = fn(torch.zeros(3, 2, dtype=torch.float32))
    assert out.shape == (3, 2) and out.dtype == torch.float32 and (out == -1).all()
    out = lambdify_torch(sp.sqrt(2) * sp.pi, t)(torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(out, torch.full((4,), math.sqrt(2) * math.pi, dtype=torch.float64))


def test_from_data_at_one_matches_library_semantics():
    s = sp.Symbol("s", real=True)
    sym = SymbolicTransport.from_data_at_one(
        sp.cos(sp.pi * s / 2),
        sp.sin(sp.pi * s / 2),
        -sp.sin(sp.pi * s / 2),
        sp.cos(sp.pi * s / 2),
        s=s,
    )
    num = to_numeric(sym)
    torch.testing.assert_close(
        num.alpha(GRID), torch.sin(math.pi * GRID / 2), rtol=1e-13, atol=1e-13
    )
    torch.testing.assert_close(num.model_time(GRID), 1 - GRID)


def test_custom_sympy_transport_works_in_the_numeric_world():
    tr = to_numeric(_custom())
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    def model(x_t, t_net):
        return net(torch.cat([x_t, t_net[:, None]], dim=1))

    out = UCGMObjective(tr, consistency_ratio=0.5)(model, torch.randn(8, 2))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    gen = sample(model, torch.randn(5, 2), tr, steps=4, order=2, schedule="uniform")
    assert gen.sample.shape == (5, 2) and torch.isfinite(gen.sample).all()


def test_custom_transport_samples_like_the_hand_written_one():
    # The same transport written with SymPy and with torch lambdas samples identically.
    sym = _custom()
    hand = to_numeric(sym)
    manual = Transport(
        lambda s: s**2, lambda s: 1 - s**2, lambda s: 2 * s, lambda s: -2 * s, name="manual"
    )
    net = torch.nn.Linear(2, 2).double()

    def model(x_t, t_net):
        return net(x_t) * t_net[:, None]

    noise = torch.randn(6, 2, dtype=torch.float64)
    a = sample(model, noise, hand, steps=5)
    b = sample(model, noise, manual, steps=5)
    torch.testing.assert_close(a.sample, b.sample, rtol=1e-12, atol=1e-12)


def test_rejects_foreign_symbols():
    with pytest.raises(ValueError, match="depends on"):
        SymbolicTransport(t * sp.Symbol("k"), 1 - t, 1, -1)


def test_unknown_name():
    with pytest.raises(ValueError, match="Unknown transport"):
        symbolic_transport("cosine")
