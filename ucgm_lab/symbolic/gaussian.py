"""Optimal solutions of the unified objective for Gaussian data (App. B.1.5).

Data x ~ N(mu, 1) and a variance-preserving transport alpha = sin(varphi), gamma = cos(varphi)
(TrigFlow with varphi = pi t / 2). Every optimum is affine, f(x_t, t) = (1 - gamma c) mu +
c x_t, and the consistency ratio lambda only changes the slope c(t):

* flow matching (lambda = 0): c = gamma = cos(varphi), f = E[x | x_t];
* consistency (lambda -> 1): c = 1, f = x_t + (1 - cos(varphi)) mu (the PF-ODE map to t = 0);
  the paper prints (1 - gamma) mu + gamma x_t, which is wrong (it is not even a map of
  N(gamma mu, 1) onto N(mu, 1));
* lambda in (0, 1): the fixed point f(x_t, t) = E[f(x_{lambda t}, lambda t) | x_t] over the
  chain t, lambda t, lambda^2 t, ... -> 0 gives c = prod_m cos((1 - lambda) lambda^m varphi);
  for lambda = 1/2 this is Viete's product sin(varphi) / varphi.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp
import torch
from torch import Tensor

from ucgm_lab.transports import Transport, get_transport

from .derivations import x_t
from .numeric import _float_constants
from .transports import SymbolicTransport, symbolic_transport

__all__ = [
    "GaussianOptima",
    "VieteCheck",
    "gaussian_flow_map",
    "gaussian_model",
    "gaussian_optima",
    "gaussian_optimal_network",
    "gaussian_posterior",
    "interpolant_slope",
    "learned_affine_coefficients",
    "viete_check",
]

mu = sp.Symbol("mu", real=True)
# The TrigFlow angle pi t / 2 (varphi: theta names the network's parameters, and theta1, theta2
# the Beta time distribution).
varphi = sp.Symbol("varphi", positive=True)


def gaussian_posterior(
    alpha: sp.Expr, gamma: sp.Expr, mean: sp.Expr, var: sp.Expr, state: sp.Expr = x_t
) -> tuple[sp.Expr, sp.Expr]:
    """E[x | x_t] and E[z | x_t] for x ~ N(mean, var), z ~ N(0, 1), x_t = alpha z + gamma x.

    Args:
        alpha: alpha, the weight of the noise.
        gamma: gamma, the weight of the data.
        mean: The data mean.
        var: The data variance.
        state: The symbol of x_t.

    Returns:
        (E[x | x_t], E[z | x_t]).
    """
    total = gamma**2 * var + alpha**2
    ex = mean + gamma * var / total * (state - gamma * mean)
    ez = alpha / total * (state - gamma * mean)
    return ex, ez


def gaussian_optimal_network(
    transport: SymbolicTransport | str, mean: sp.Expr, var: sp.Expr
) -> sp.Expr:
    """The optimal network F*(x_t, t) = alpha_hat E[z | x_t] + gamma_hat E[x | x_t] (lambda = 0).

    Args:
        transport: A transport.
        mean: The data mean.
        var: The data variance.

    Returns:
        F* as an expression in :data:`ucgm_lab.symbolic.derivations.x_t` and the time.
    """
    tr = symbolic_transport(transport)
    ex, ez = gaussian_posterior(tr.alpha, tr.gamma, mean, var)
    return tr.alpha_hat * ez + tr.gamma_hat * ex


def gaussian_model(
    transport: SymbolicTransport | str, mean: float, var: float
) -> Callable[[Tensor, Tensor], Tensor]:
    """The exact optimal network for 1-D data N(mean, var) as a torch model ``(x_t, t) -> F``.

    The model receives the network's own time (``model_time``, e.g. 1 - t for ReLinear), as
    the objective and the sampler pass it.

    Args:
        transport: A transport.
        mean: The data mean.
        var: The data variance.

    Returns:
        ``model(x_t, t_net)`` for x_t of shape (B, 1) and t_net of shape (B,).
    """
    tr = symbolic_transport(transport)
    tau = sp.Symbol("tau", real=True)
    library_time = sp.solve(sp.Eq(tr.model_time, tau), tr.time)[0]
    expr = gaussian_optimal_network(tr, sp.nsimplify(mean), sp.nsimplify(var))
    expr = expr.subs(tr.time, library_time)
    fn = sp.lambdify((x_t, tau), _float_constants(expr), modules="torch")

    def model(state: Tensor, t_net: Tensor) -> Tensor:
        return fn(state, t_net.to(state.dtype).reshape(-1, *([1] * (state.ndim - 1))))

    return model


def gaussian_flow_map(
    transport: SymbolicTransport | str, mean: float, var: float, t_start: float
) -> Callable[[Tensor], Tensor]:
    """The exact PF-ODE map from time ``t_start`` to the data (t = 0) for 1-D N(mean, var).

    The marginal at t is N(gamma mean, gamma^2 var + alpha^2); the flow is the increasing
    affine map between the marginals: x_0 = mean + sqrt(var / (gamma^2 var + alpha^2))
    (x_t - gamma mean).

    Args:
        transport: A transport.
        mean: The data mean.
        var: The data variance.
        t_start: The start time.

    Returns:
        A function x_t -> x_0 (tensors).
    """
    tr = symbolic_transport(transport)
    a, g = float(tr.at(tr.alpha, t_start)), float(tr.at(tr.gamma, t_start))
    scale = math.sqrt(var / (g * g * var + a * a))

    def flow(state: Tensor) -> Tensor:
        return mean + scale * (state - g * mean)

    return flow


@dataclass(frozen=True)
class GaussianOptima:
    """The optima of App. B.1.5 for x ~ N(mu, 1), alpha = sin(varphi), gamma = cos(varphi).

    Attributes:
        flow_matching: E[x | x_t], the lambda = 0 optimum.
        flow_matching_residual: flow_matching - ((1 - gamma^2) mu + gamma x_t) (paper): 0.
        velocity: v*(x_t) = E[d x_t / d varphi | x_t]: -sin(varphi) mu, independent of x_t.
        consistency: x(0) of the PF-ODE d x / d varphi = v* started at x_t.
        paper_consistency: The paper's (1 - gamma) mu + gamma x_t.
        consistency_residual: paper_consistency - consistency: not 0 (erratum).
        pushforward: (mean, variance) of consistency(x_t) for x_t ~ N(gamma mu, 1): (mu, 1).
        paper_pushforward: The same for the paper's formula: not (mu, 1).
        chain_covariance: Cov(x_{t_j}, x_{t_k}) = alpha_j alpha_k + gamma_j gamma_k =
            cos(varphi_j - varphi_k): the factor beta of the recursion c_{j+1} = beta c_j.
    """

    flow_matching: sp.Expr
    flow_matching_residual: sp.Expr
    velocity: sp.Expr
    consistency: sp.Expr
    paper_consistency: sp.Expr
    consistency_residual: sp.Expr
    pushforward: tuple[sp.Expr, sp.Expr]
    paper_pushforward: tuple[sp.Expr, sp.Expr]
    chain_covariance: sp.Expr


def gaussian_optima() -> GaussianOptima:
    """Derive the flow-matching and consistency optima of App. B.1.5.

    Returns:
        :class:`GaussianOptima`.
    """
    a, g = sp.sin(varphi), sp.cos(varphi)
    ex, ez = gaussian_posterior(a, g, mu, 1)
    ex, ez = sp.simplify(ex), sp.simplify(ez)
    velocity = sp.simplify(sp.diff(a, varphi) * ez + sp.diff(g, varphi) * ex)
    s = sp.Symbol("s", positive=True)
    # The velocity does not depend on the state: x(0) = x_t - integral_0^varphi v ds.
    consistency = sp.simplify(x_t - sp.integrate(velocity.subs(varphi, s), (s, 0, varphi)))
    paper_cm = (1 - g) * mu + g * x_t

    def moments(f: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
        slope = sp.diff(f, x_t)
        return sp.simplify(f.subs(x_t, g * mu)), sp.simplify(slope**2)  # Var(x_t) = 1

    t1, t2 = sp.symbols("varphi_j varphi_k", positive=True)
    return GaussianOptima(
        flow_matching=sp.collect(sp.expand(ex), [mu, x_t]),
        flow_matching_residual=sp.simplify(ex - ((1 - g**2) * mu + g * x_t)),
        velocity=velocity,
        consistency=sp.collect(sp.expand(consistency), [mu, x_t]),
        paper_consistency=paper_cm,
        consistency_residual=sp.factor(sp.simplify(paper_cm - consistency)),
        pushforward=moments(consistency),
        paper_pushforward=moments(paper_cm),
        chain_covariance=sp.simplify(sp.sin(t1) * sp.sin(t2) + sp.cos(t1) * sp.cos(t2)),
    )


@dataclass(frozen=True)
class VieteCheck:
    """The lambda = 1/2 slope c(varphi) = prod_{m >= 1} cos(varphi / 2^m) = sin(varphi) / varphi.

    Attributes:
        n: Number of factors of the finite product.
        product: prod_{m=1}^{n} cos(varphi / 2^m).
        closed_form: sin(varphi) / (2^n sin(varphi / 2^n)).
        residual: simplify(product - closed_form) (after expanding the sines): 0.
        limit: lim_{n -> oo} of the closed form: sin(varphi) / varphi.
    """

    n: int
    product: sp.Expr
    closed_form: sp.Expr
    residual: sp.Expr
    limit: sp.Expr


def viete_check(n: int = 3) -> VieteCheck:
    """Prove the finite Viete identity for n factors and take n -> infinity.

    sin(varphi) = 2^n sin(varphi / 2^n) prod_{m=1}^{n} cos(varphi / 2^m) (double angle, n times).

    Args:
        n: Number of factors (small: the proof expands sin(2^n y)).

    Returns:
        :class:`VieteCheck`.
    """
    y = sp.Symbol("y", positive=True)  # varphi = 2^n y
    product = sp.Mul(*(sp.cos(varphi / 2**m) for m in range(1, n + 1)))
    closed = sp.sin(varphi) / (2**n * sp.sin(varphi / 2**n))
    diff = (product - closed).subs(varphi, 2**n * y)
    residual = sp.simplify(sp.expand_trig(sp.expand(diff)))
    k = sp.Symbol("n", positive=True, integer=True)
    limit = sp.limit(sp.sin(varphi) / (2**k * sp.sin(varphi / 2**k)), k, sp.oo)
    return VieteCheck(n, product, closed, residual, limit)


def interpolant_slope(lam: float, t: float, terms: int = 200) -> float:
    """The slope c_lambda(t) of the lambda-interpolant for TrigFlow (varphi = pi t / 2).

    c_lambda = prod_{m >= 0} cos((1 - lambda) lambda^m varphi): the fixed point of
    f(x_t, t) = E[f(x_{lambda t}, lambda t) | x_t] along t, lambda t, lambda^2 t, ...

    Args:
        lam: The consistency ratio lambda in [0, 1].
        t: Library time in [0, 1].
        terms: Number of factors (the factors tend to 1 geometrically).

    Returns:
        c_lambda(t): cos(varphi) for lambda = 0, sin(varphi) / varphi for 1/2, 1 for lambda = 1.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}.")
    angle = math.pi * t / 2
    if lam == 1.0:
        return 1.0
    out = 1.0
    for m in range(terms):
        out *= math.cos((1 - lam) * lam**m * angle)
    return out


def learned_affine_coefficients(
    model: torch.nn.Module,
    transport: Transport | str,
    times: Sequence[float],
    x_grid: Tensor | None = None,
) -> list[tuple[float, float]]:
    """Fit f^x(F(x_t, t), x_t, t) = intercept + slope x_t for a trained 1-D model.

    Args:
        model: ``model(x_t, t) -> F`` on inputs of shape (B, 1).
        transport: The transport it was trained with.
        times: Library times at which to fit.
        x_grid: x_t values, shape (B, 1); default 201 points in [-3, 5].

    Returns:
        One (slope, intercept) per time.
    """
    tr = get_transport(transport)
    if x_grid is None:
        x_grid = torch.linspace(-3.0, 5.0, 201).reshape(-1, 1)
    design = torch.cat([x_grid, torch.ones_like(x_grid)], dim=1)
    out = []
    with torch.no_grad():
        for value in times:
            tt = torch.full((x_grid.shape[0],), float(value), dtype=x_grid.dtype)
            f_x = tr.predict_x(model(x_grid, tr.model_time(tt)), x_grid, tt)
            coef = torch.linalg.lstsq(design, f_x).solution.flatten()
            out.append((float(coef[0]), float(coef[1])))
    return out
