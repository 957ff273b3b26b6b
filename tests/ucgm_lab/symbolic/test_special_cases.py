"""Tab. 1 (EDM, OT, sCM) and the constraints of section 3.1, symbolically."""

import pytest
import sympy as sp

from ucgm_lab.symbolic import (
    SymbolicTransport,
    check_constraints,
    edm_as_trigflow,
    special_cases,
    t,
)
from ucgm_lab.symbolic.derivations import F, x_t


def test_three_rows_of_table_1_hold():
    rows = {row.paradigm: row for row in special_cases()}
    assert set(rows) == {"Diffusion (EDM)", "Flow matching (OT)", "Consistency (sCM)"}
    for row in rows.values():
        assert row.holds, row.residuals
        assert sp.simplify(row.ucgm_form - row.paradigm_form) == 0
    assert (rows["Consistency (sCM)"].consistency_ratio, rows["Diffusion (EDM)"].order) == (1, 2)


def test_edm_denoiser_by_hand():
    edm = special_cases()[0]
    sigma, y = sp.Symbol("sigma", positive=True), sp.Symbol("y", real=True)
    c_skip = sp.Rational(1, 4) / (sigma**2 + sp.Rational(1, 4))
    c_out = sigma / 2 / sp.sqrt(sigma**2 + sp.Rational(1, 4))
    assert sp.simplify(edm.ucgm_form - (c_skip * y + c_out * F)) == 0


def test_ot_and_scm_by_hand():
    ot, scm = special_cases()[1:]
    theta = sp.Symbol("phi", positive=True)
    assert sp.simplify(ot.ucgm_form - (x_t - t * F)) == 0
    assert sp.simplify(scm.ucgm_form - (sp.cos(theta) * x_t - sp.sin(theta) * F)) == 0


def test_edm_is_a_scaled_trigflow():
    phi = sp.Symbol("phi", positive=True)
    coef = edm_as_trigflow()
    expected = {
        "alpha": sp.sin(phi),
        "gamma": 2 * sp.cos(phi),
        "alpha_hat": -sp.cos(phi),
        "gamma_hat": 2 * sp.sin(phi),
    }
    for key, value in expected.items():
        assert sp.simplify(coef[key] - value) == 0
    # target = -d x_t / d phi
    assert sp.simplify(coef["alpha_hat"] + sp.diff(coef["alpha"], phi)) == 0
    assert sp.simplify(coef["gamma_hat"] + sp.diff(coef["gamma"], phi)) == 0


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("linear", "constant"),
        ("relinear", "constant"),
        ("trigflow", "constant"),
        ("edm", "constant"),
        ("triglinear", "solveset: no zero in (0, 1)"),
        ("random", "undecided symbolically (see the plot)"),
    ],
)
def test_constraint_c(name, status):
    rep = check_constraints(name)
    assert rep.D_status == status
    assert rep.D_nonzero is (None if status.startswith("undecided") else True)
    assert rep.min_abs_d > 0.99
    assert rep.alpha_nondecreasing and rep.gamma_nonincreasing


def test_boundary_values():
    rep = check_constraints("trigflow")
    assert rep.boundary == {"alpha(0)": 0, "alpha(1)": 1, "gamma(0)": 1, "gamma(1)": 0}
    edm = check_constraints("edm")
    assert abs(float(edm.boundary["gamma(0)"]) - 2) < 1e-4  # the deliberate deviation


def test_constraint_c_violation_is_found():
    bad = SymbolicTransport(t, 1 - t, sp.Integer(1), sp.Integer(1), name="bad")  # D = 2 t - 1
    rep = check_constraints(bad)
    assert rep.D_nonzero is False and "zero at" in rep.D_status
    good_looking = SymbolicTransport(t, 1 - t, sp.Integer(1), sp.Integer(-1))
    assert check_constraints(good_looking).D_nonzero is True
