"""Time distributions and time grids, symbolically and numerically (section 3.1, App. B.2).

* Training times t ~ Beta(theta1, theta2) (section 3.1, App. B.2.1): the density, its mode
  (theta1 - 1) / (theta1 + theta2 - 2), and the Beta matching a logit-normal.
* Sampling grids (App. A.1.3 / B.2.2; docs/paper-notes.md, R1): the Kumaraswamy transform
  k(u; a, b, c) = (1 - (1 - u^a)^b)^c against the timeshift map s u / (1 + (s - 1) u):
  identities, least-squares fits of (a, b, c), and the shift that "Auto" approximates.

The numeric fits evaluate the core library's :func:`ucgm_lab.schedules.kumaraswamy` and
:func:`ucgm_lab.schedules.timeshift`, so they are about the functions the sampler uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp
import torch
from scipy.optimize import least_squares, minimize_scalar

from ucgm_lab.schedules import kumaraswamy, timeshift

from .transports import t

__all__ = [
    "BetaMode",
    "KumaraswamyFit",
    "LogitNormalMatch",
    "ShiftMatch",
    "TimeshiftFacts",
    "beta_density",
    "beta_matching_logit_normal",
    "beta_mode",
    "fit_kumaraswamy",
    "kumaraswamy_expr",
    "logit_normal_density",
    "shift_matching_kumaraswamy",
    "timeshift_expr",
    "timeshift_facts",
]

theta1, theta2 = sp.symbols("theta1 theta2", positive=True)
u = sp.Symbol("u", positive=True)
a_sym, b_sym, c_sym, s_sym = sp.symbols("a b c s", positive=True)


# ---------------------------------------------------------------------- Beta(theta1, theta2)
def beta_density(p: sp.Expr = theta1, q: sp.Expr = theta2) -> sp.Expr:
    """The Beta(p, q) density t^(p - 1) (1 - t)^(q - 1) / B(p, q) in the symbol ``t``.

    B(p, q) is written as Gamma(p) Gamma(q) / Gamma(p + q), which SymPy evaluates for numbers.
    """
    return sp.gamma(p + q) / (sp.gamma(p) * sp.gamma(q)) * t ** (p - 1) * (1 - t) ** (q - 1)


@dataclass(frozen=True)
class BetaMode:
    """The mode of the Beta time distribution (App. B.2.1).

    Attributes:
        density: The Beta(theta1, theta2) density.
        log_derivative: d log p / dt.
        mode: The solution of d log p / dt = 0.
        residual: simplify(mode - (theta1 - 1) / (theta1 + theta2 - 2)): 0.
        curvature_at_mode: d^2 log p / dt^2 at the mode (negative for theta1, theta2 > 1: a
            maximum).
    """

    density: sp.Expr
    log_derivative: sp.Expr
    mode: sp.Expr
    residual: sp.Expr
    curvature_at_mode: sp.Expr


def beta_mode() -> BetaMode:
    """Derive the mode (theta1 - 1) / (theta1 + theta2 - 2) of Beta(theta1, theta2).

    Returns:
        :class:`BetaMode`.
    """
    density = beta_density()
    log_p = (theta1 - 1) * sp.log(t) + (theta2 - 1) * sp.log(1 - t)  # + const
    dlog = sp.together(sp.diff(log_p, t))
    mode = sp.solve(sp.Eq(dlog, 0), t)[0]
    curvature = sp.factor(sp.simplify(sp.diff(log_p, t, 2).subs(t, mode)))
    return BetaMode(
        density=density,
        log_derivative=dlog,
        mode=mode,
        residual=sp.simplify(mode - (theta1 - 1) / (theta1 + theta2 - 2)),
        curvature_at_mode=curvature,
    )


def logit_normal_density(mu: sp.Expr = 0, sigma: sp.Expr = 1) -> sp.Expr:
    """Density of t = 1 / (1 + exp(-(mu + sigma n))), n ~ N(0, 1) (the logit-normal, [46, 7])."""
    return sp.exp(-((sp.log(t / (1 - t)) - mu) ** 2) / (2 * sigma**2)) / (
        sigma * sp.sqrt(2 * sp.pi) * t * (1 - t)
    )


@dataclass(frozen=True)
class LogitNormalMatch:
    """The Beta distribution with the mean and variance of a logit-normal.

    Attributes:
        mu, sigma: The logit-normal's parameters.
        mean, variance: Its moments (30-digit quadrature).
        theta1, theta2: The matching Beta parameters, from mean = p / (p + q) and
            variance = mean (1 - mean) / (p + q + 1).
        max_density_gap: max over a grid of |Beta density - logit-normal density|.
        peak_logit_normal, peak_beta: The two densities at the Beta mode.
    """

    mu: float
    sigma: float
    mean: float
    variance: float
    theta1: float
    theta2: float
    max_density_gap: float
    peak_logit_normal: float
    peak_beta: float


def beta_matching_logit_normal(
    mu: float = 0.0, sigma: float = 1.0, grid_size: int = 999
) -> LogitNormalMatch:
    """Match Beta(theta1, theta2) to logit-normal(mu, sigma) by mean and variance (App. B.2.1).

    For the standard logit-normal the answer is Beta(2.38, 2.38): the Beta(2.4, 2.4) of the
    paper's SD-VAE runs (Tab. 6; docs/paper-notes.md, R2 and F5).

    Args:
        mu: Location of the logit-normal.
        sigma: Scale of the logit-normal.
        grid_size: Interior grid points for the density gap.

    Returns:
        :class:`LogitNormalMatch`.
    """
    with mpmath.workdps(30):
        m, s = mpmath.mpf(mu), mpmath.mpf(sigma)

        def logistic(n: mpmath.mpf) -> mpmath.mpf:
            return 1 / (1 + mpmath.exp(-(m + s * n)))

        line = [-mpmath.inf, 0, mpmath.inf]
        mean = mpmath.quad(lambda n: logistic(n) * mpmath.npdf(n), line)
        var = mpmath.quad(lambda n: (logistic(n) - mean) ** 2 * mpmath.npdf(n), line)
        total = mean * (1 - mean) / var - 1
        p, q = mean * total, (1 - mean) * total
        ln_density = logit_normal_density(sp.Float(mu, 30), sp.Float(sigma, 30))
        ln = sp.lambdify(t, ln_density, modules="mpmath")
        be = sp.lambdify(t, beta_density(sp.Float(p, 30), sp.Float(q, 30)), modules="mpmath")
        grid = [mpmath.mpf(i) / (grid_size + 1) for i in range(1, grid_size + 1)]
        gap = max(abs(ln(x) - be(x)) for x in grid)
        mode = (p - 1) / (p + q - 2)
        return LogitNormalMatch(
            mu=float(mu),
            sigma=float(sigma),
            mean=float(mean),
            variance=float(var),
            theta1=float(p),
            theta2=float(q),
            max_density_gap=float(gap),
            peak_logit_normal=float(ln(mode)),
            peak_beta=float(be(mode)),
        )


# ---------------------------------------------------------------------- Kumaraswamy / timeshift
def kumaraswamy_expr(
    a: sp.Expr = a_sym, b: sp.Expr = b_sym, c: sp.Expr = c_sym, var: sp.Symbol = u
) -> sp.Expr:
    """k(u; a, b, c) = (1 - (1 - u^a)^b)^c (App. B.2.2; ``ucgm_lab.schedules.kumaraswamy``)."""
    return (1 - (1 - var**a) ** b) ** c


def timeshift_expr(shift: sp.Expr = s_sym, var: sp.Symbol = u) -> sp.Expr:
    """The timeshift map s u / (1 + (s - 1) u) (``ucgm_lab.schedules.timeshift``)."""
    return shift * var / (1 + (shift - 1) * var)


@dataclass(frozen=True)
class TimeshiftFacts:
    """Identities that explain the two schedule families.

    Attributes:
        kumaraswamy_identity: simplify(k(u; 1, 1, 1) - u): 0.
        timeshift_identity: simplify(timeshift(u; 1) - u): 0.
        timeshift_inverse: simplify(timeshift(timeshift(u; s); 1/s) - u): 0.
        timeshift_flip: simplify(1 - timeshift(1 - u; s) - timeshift(u; 1/s)): 0, so a shift
            s of times with the noise at 1 is the shift 1/s of the flipped grid u = 1 - t.
        kumaraswamy_cdf_density: d k(u; a, b, 1) / du: the Kumaraswamy density
            a b u^(a-1) (1 - u^a)^(b-1), so k with c = 1 is a CDF.
        timeshift_slopes: (slope at u = 0, slope at u = 1) of the timeshift: (s, 1/s).
    """

    kumaraswamy_identity: sp.Expr
    timeshift_identity: sp.Expr
    timeshift_inverse: sp.Expr
    timeshift_flip: sp.Expr
    kumaraswamy_cdf_density: sp.Expr
    timeshift_slopes: tuple[sp.Expr, sp.Expr]


def timeshift_facts() -> TimeshiftFacts:
    """Derive the identities of :class:`TimeshiftFacts`.

    Returns:
        :class:`TimeshiftFacts`.
    """
    ts = timeshift_expr()
    slope = sp.diff(ts, u)
    return TimeshiftFacts(
        kumaraswamy_identity=sp.simplify(kumaraswamy_expr(1, 1, 1) - u),
        timeshift_identity=sp.simplify(timeshift_expr(1) - u),
        timeshift_inverse=sp.simplify(timeshift_expr(1 / s_sym, ts) - u),
        timeshift_flip=sp.simplify(1 - timeshift_expr(s_sym, 1 - u) - timeshift_expr(1 / s_sym, u)),
        kumaraswamy_cdf_density=sp.simplify(sp.diff(kumaraswamy_expr(c=1), u)),
        timeshift_slopes=(sp.simplify(slope.subs(u, 0)), sp.simplify(slope.subs(u, 1))),
    )


@dataclass(frozen=True)
class KumaraswamyFit:
    """Least-squares fit of k(u; a, b, c) to timeshift(u; s) on a uniform grid of [0, 1].

    Attributes:
        shift: s.
        a, b, c: The fitted parameters (within ``bounds``).
        max_error: max |k - timeshift| on the grid.
        rms_error: Root-mean-square error on the grid.
        identity_max_error: max |u - timeshift| (the identity (1, 1, 1)).
    """

    shift: float
    a: float
    b: float
    c: float
    max_error: float
    rms_error: float
    identity_max_error: float


def _grid(grid_size: int) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, grid_size, dtype=torch.float64)


def fit_kumaraswamy(
    shift: float, bounds: tuple[float, float] = (0.5, 2.0), grid_size: int = 1001
) -> KumaraswamyFit:
    """Fit (a, b, c) of the Kumaraswamy transform to a timeshift map (App. B.2.2).

    The least-squares problem is nearly flat towards a -> 0, c -> infinity; ``bounds`` keeps
    the parameters in the range the sampler uses (the paper's "Auto" is (1.17, 0.8, 1.1)).

    Args:
        shift: The timeshift s (s < 1 bends the grid below the diagonal).
        bounds: Lower and upper bound for each of a, b, c.
        grid_size: Grid points on [0, 1].

    Returns:
        :class:`KumaraswamyFit`.
    """
    grid = _grid(grid_size)
    target = timeshift(grid, shift)

    def residual(params: np.ndarray) -> np.ndarray:
        return (kumaraswamy(grid, *(float(p) for p in params)) - target).numpy()

    lo, hi = bounds
    fit = least_squares(
        residual, x0=[1.0, 1.0, 1.0], bounds=([lo] * 3, [hi] * 3), xtol=1e-12, ftol=1e-12
    )
    err = kumaraswamy(grid, *(float(p) for p in fit.x)) - target
    return KumaraswamyFit(
        shift=float(shift),
        a=float(fit.x[0]),
        b=float(fit.x[1]),
        c=float(fit.x[2]),
        max_error=float(err.abs().max()),
        rms_error=float(err.pow(2).mean().sqrt()),
        identity_max_error=float((grid - target).abs().max()),
    )


@dataclass(frozen=True)
class ShiftMatch:
    """The timeshift closest (least squares) to a given Kumaraswamy transform.

    Attributes:
        a, b, c: The Kumaraswamy parameters.
        shift: s of the closest timeshift(u; s) in the grid variable u.
        time_shift: 1 / s: the same map as a shift of the times t = 1 - u (noise at 1).
        max_error: max |k - timeshift| on the grid.
    """

    a: float
    b: float
    c: float
    shift: float
    time_shift: float
    max_error: float


def shift_matching_kumaraswamy(a: float, b: float, c: float, grid_size: int = 1001) -> ShiftMatch:
    """Find the timeshift that the Kumaraswamy transform (a, b, c) approximates.

    Args:
        a: Kumaraswamy parameter a (e.g. ``ucgm_lab.AUTO_KUMARASWAMY[0]``).
        b: Kumaraswamy parameter b.
        c: Kumaraswamy parameter c.
        grid_size: Grid points on [0, 1].

    Returns:
        :class:`ShiftMatch`.
    """
    grid = _grid(grid_size)
    k = kumaraswamy(grid, a, b, c)
    best = minimize_scalar(
        lambda s: float((timeshift(grid, s) - k).pow(2).mean()),
        bounds=(0.05, 20.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    s = float(best.x)
    return ShiftMatch(a, b, c, s, 1 / s, float((timeshift(grid, s) - k).abs().max()))
