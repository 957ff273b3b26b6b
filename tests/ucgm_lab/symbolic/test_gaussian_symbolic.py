"""Optima of the unified objective for Gaussian data (App. B.1.5)."""

import math

import pytest
import sympy as sp
import torch

from ucgm_lab import get_transport
from ucgm_lab.symbolic import (
    gaussian_optima,
    gaussian_optimal_network,
    interpolant_slope,
    learned_affine_coefficients,
    symbolic_transport,
    t,
    viete_check,
)
from ucgm_lab.symbolic.derivations import x_t
from ucgm_lab.symbolic.gaussian import mu
from ucgm_lab.symbolic.gaussian import varphi as theta


def test_flow_matching_and_consistency_optima():
    o = gaussian_optima()
    g = sp.cos(theta)
    assert o.flow_matching_residual == 0
    assert sp.simplify(o.flow_matching - ((1 - g**2) * mu + g * x_t)) == 0
    assert sp.simplify(o.velocity + sp.sin(theta) * mu) == 0
    assert sp.simplify(o.consistency - (x_t + (1 - g) * mu)) == 0
    assert sp.simplify(o.consistency_residual - (g - 1) * x_t) == 0  # the paper's formula is off
    assert o.pushforward == (mu, 1)
    assert sp.simplify(o.paper_pushforward[1] - g**2) == 0
    t1, t2 = sp.symbols("varphi_j varphi_k", positive=True)
    assert sp.simplify(o.chain_covariance - sp.cos(t1 - t2)) == 0


@pytest.mark.parametrize("n", [2, 3])
def test_viete(n):
    v = viete_check(n)
    assert v.residual == 0
    assert sp.simplify(v.limit - sp.sin(theta) / theta) == 0


def test_interpolant_slope_special_values():
    for tt in (0.1, 0.5, 0.9):
        th = math.pi * tt / 2
        assert math.isclose(interpolant_slope(0.0, tt), math.cos(th), rel_tol=1e-14)
        assert math.isclose(interpolant_slope(0.5, tt), math.sin(th) / th, rel_tol=1e-12)
        assert interpolant_slope(1.0, tt) == 1.0
        assert (
            interpolant_slope(0.0, tt) < interpolant_slope(0.5, tt) < interpolant_slope(0.9, tt) < 1
        )
    with pytest.raises(ValueError):
        interpolant_slope(1.5, 0.5)


def test_interpolant_is_the_fixed_point_of_the_lambda_chain():
    # c(t) = beta(t, lam t) c(lam t) with beta = cos(theta_t - theta_{lam t}) (TrigFlow)
    lam, tt = 0.5, 0.8
    th = math.pi * tt / 2
    assert math.isclose(
        interpolant_slope(lam, tt),
        math.cos((1 - lam) * th) * interpolant_slope(lam, lam * tt),
        rel_tol=1e-13,
    )


def test_gaussian_optimal_network_gives_posterior_mean():
    tr = symbolic_transport("trigflow")
    net = gaussian_optimal_network(tr, mu, 1)
    f = sp.simplify(tr.f_x(net, x_t))
    g = sp.cos(sp.pi * t / 2)
    assert sp.simplify(f - ((1 - g**2) * mu + g * x_t)) == 0


def test_learned_affine_coefficients_on_the_exact_model():
    tr = get_transport("trigflow")
    m = 1.5
    net = sp.lambdify((x_t, t), gaussian_optimal_network("trigflow", m, 1), modules="torch")

    def model(x_in, t_net):
        return net(x_in, t_net[:, None])

    coefs = learned_affine_coefficients(
        model, tr, [0.3, 0.7], torch.linspace(-2, 4, 50, dtype=torch.float64).reshape(-1, 1)
    )
    for tt, (slope, intercept) in zip([0.3, 0.7], coefs, strict=True):
        g = math.cos(math.pi * tt / 2)
        assert math.isclose(slope, g, abs_tol=1e-10)
        assert math.isclose(intercept, (1 - g * g) * m, abs_tol=1e-10)
