"""The derivations behind UCGM-T, done by SymPy (section 3.1, App. B.1.1-B.1.3).

Every function returns a small frozen dataclass of SymPy expressions: what was derived, and
the residuals ``simplify(result - expected)`` that prove (residual 0) or refute (residual not
0) a statement of the paper.

Training (UCGM-T):

* :func:`derive_prediction_functions`: solve x_t = alpha z + gamma x, F = alpha_hat z +
  gamma_hat x for (x, z): eq. (2).
* :func:`objective_weight_equivalence`: objectives (1) and (3) and the weight omega_hat.
* :func:`lambda_zero_target`: at lambda = 0 the target is alpha_hat z + gamma_hat x (B.1.3).
* :func:`flow_matching_check`: is a transport flow matching (alpha_hat = alpha', ...)?
* :func:`finite_difference_limit`, :func:`finite_difference_errors`: the lambda -> 1
  difference tends to d f^x / dt (App. B.1.2); first- against second-order differences.
* :func:`target_factor`: the factor 4 alpha / (D sin(pi t / 2)) of Alg. 1 line 15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import sympy as sp

from ..transports import SymbolicTransport, symbolic_transport
from .symbols import D_sym, F, _is_zero, alpha, alpha_hat, gamma, gamma_hat, x, x_t, z

__all__ = [
    "FiniteDifferenceError",
    "FiniteDifferenceLimit",
    "FlowMatchingCheck",
    "LambdaZeroTarget",
    "PredictionFunctions",
    "WeightEquivalence",
    "derive_prediction_functions",
    "finite_difference_errors",
    "finite_difference_limit",
    "flow_matching_check",
    "lambda_zero_target",
    "objective_weight_equivalence",
    "target_factor",
]


@dataclass(frozen=True)
class PredictionFunctions:
    """The prediction functions of eq. (2), solved from the two linear relations.

    Attributes:
        equations: (x_t = alpha z + gamma x, F = alpha_hat z + gamma_hat x).
        x_hat: The solution for x: f^x(F, x_t, t).
        z_hat: The solution for z: f^z(F, x_t, t).
        D: The determinant alpha gamma_hat - alpha_hat gamma (constraint (c)).
        residual_x: simplify(x_hat - (alpha F - alpha_hat x_t) / D): 0 when eq. (2) holds.
        residual_z: simplify(z_hat - (gamma_hat x_t - gamma F) / D).
        reconstruction_residuals: alpha f^z + gamma f^x - x_t and alpha_hat f^z +
            gamma_hat f^x - F (both 0: the decomposition is exact for any F).
    """

    equations: tuple[sp.Eq, sp.Eq]
    x_hat: sp.Expr
    z_hat: sp.Expr
    D: sp.Expr
    residual_x: sp.Expr
    residual_z: sp.Expr
    reconstruction_residuals: tuple[sp.Expr, sp.Expr]

    @property
    def matches_eq2(self) -> bool:
        """Whether the solution is eq. (2) of the paper."""
        return self.residual_x == 0 and self.residual_z == 0


def derive_prediction_functions(
    transport: SymbolicTransport | str | None = None,
) -> PredictionFunctions:
    """Solve x_t = alpha z + gamma x and F = alpha_hat z + gamma_hat x for x and z (eq. 2).

    Args:
        transport: ``None`` for generic coefficients (symbols alpha, gamma, alpha_hat,
            gamma_hat), or a transport whose coefficient expressions are used.

    Returns:
        :class:`PredictionFunctions`.
    """
    if transport is None:
        a, g, ah, gh = alpha, gamma, alpha_hat, gamma_hat
    else:
        tr = symbolic_transport(transport)
        a, g, ah, gh = tr.alpha, tr.gamma, tr.alpha_hat, tr.gamma_hat
    eqs = (sp.Eq(x_t, a * z + g * x), sp.Eq(F, ah * z + gh * x))
    sol = sp.solve(eqs, [x, z], dict=True)[0]
    det = sp.simplify(a * gh - ah * g)
    x_hat, z_hat = sp.simplify(sol[x]), sp.simplify(sol[z])
    eq2_x = (a * F - ah * x_t) / det
    eq2_z = (gh * x_t - g * F) / det
    return PredictionFunctions(
        equations=eqs,
        x_hat=x_hat,
        z_hat=z_hat,
        D=det,
        residual_x=sp.simplify(x_hat - eq2_x),
        residual_z=sp.simplify(z_hat - eq2_z),
        reconstruction_residuals=(
            sp.simplify(a * eq2_z + g * eq2_x - x_t),
            sp.simplify(ah * eq2_z + gh * eq2_x - F),
        ),
    )


@dataclass(frozen=True)
class WeightEquivalence:
    """Objective (1) against objective (3): which omega_hat gives the same gradient?

    With F = F_theta(x_t, t) depending on a parameter theta, the integrands are
    L1 = ||F - z_t||^2 / omega and L3 = ||f^x(F, x_t, t) - x||^2 / omega_hat.

    Attributes:
        error_relation: x^ - x = f^x(F, x_t, t) - x written as alpha / D (F - z_t) (B.1.3).
        error_residual: simplify(f^x - x - alpha / D (F - z_t)): 0.
        gradient_ratio: (d L3 / d theta) / (d L1 / d theta), in terms of D.
        required_weight: The omega_hat that makes the gradients equal: alpha^2 omega / D^2.
        paper_weight: The paper's omega_hat = alpha omega / D (below eq. 3).
        ratio_with_paper_weight: gradient_ratio with the paper's weight: alpha / D, not 1.
    """

    error_relation: sp.Eq
    error_residual: sp.Expr
    gradient_ratio: sp.Expr
    required_weight: sp.Expr
    paper_weight: sp.Expr
    ratio_with_paper_weight: sp.Expr

    @property
    def paper_weight_is_exact(self) -> bool:
        """Whether the paper's omega_hat makes (1) and (3) have equal gradients."""
        return _is_zero(self.ratio_with_paper_weight - 1)


def objective_weight_equivalence() -> WeightEquivalence:
    """Compare the gradients of objectives (1) and (3) (section 3.1).

    f^x - x = alpha / D (F - z_t) exactly, so the integrand of (3) is (alpha / D)^2 omega /
    omega_hat times that of (1): the gradients agree for omega_hat = alpha^2 omega / D^2.
    The paper's omega_hat = alpha omega / D leaves a factor alpha / D, which is a function of
    t (not a constant learning-rate factor) and negative for Linear and TrigFlow (D = -1).

    Returns:
        :class:`WeightEquivalence`.
    """
    theta = sp.Symbol("theta", real=True)
    omega, omega_hat = sp.symbols("omega omegahat", positive=True)
    F_theta = sp.Function("F", real=True)(theta)
    det = alpha * gamma_hat - alpha_hat * gamma
    z_t = alpha_hat * z + gamma_hat * x
    f_x = (alpha * F_theta - alpha_hat * (alpha * z + gamma * x)) / det
    residual = sp.simplify(f_x - x - alpha / det * (F_theta - z_t))
    L1 = (F_theta - z_t) ** 2 / omega
    L3 = (f_x - x) ** 2 / omega_hat
    ratio = sp.simplify(sp.diff(L3, theta) / sp.diff(L1, theta))
    ratio_D = sp.simplify(ratio.subs(alpha_hat, (alpha * gamma_hat - D_sym) / gamma))
    required = sp.solve(sp.Eq(ratio_D, 1), omega_hat)[0]
    paper = alpha * omega / D_sym
    return WeightEquivalence(
        error_relation=sp.Eq(
            sp.Symbol("xhat") - x, alpha / D_sym * (sp.Symbol("F") - sp.Symbol("z_t"))
        ),
        error_residual=residual,
        gradient_ratio=ratio_D,
        required_weight=required,
        paper_weight=paper,
        ratio_with_paper_weight=sp.simplify(ratio_D.subs(omega_hat, paper)),
    )


@dataclass(frozen=True)
class LambdaZeroTarget:
    """The lambda = 0 objective as a regression on alpha_hat z + gamma_hat x (App. B.1.3).

    Attributes:
        difference: f^x(F, x_t, t) - x with x_t = alpha z + gamma x, simplified.
        factored: alpha / D (F - (alpha_hat z + gamma_hat x)).
        residual: simplify(difference - factored): 0.
        target: The regression target alpha_hat z + gamma_hat x.
    """

    difference: sp.Expr
    factored: sp.Expr
    residual: sp.Expr
    target: sp.Expr


def lambda_zero_target(transport: SymbolicTransport | str | None = None) -> LambdaZeroTarget:
    """Show that f^x(F, x_t, t) - x = alpha / D (F - alpha_hat z - gamma_hat x) (App. B.1.3).

    Args:
        transport: ``None`` for generic coefficients, or a transport.

    Returns:
        :class:`LambdaZeroTarget`.
    """
    if transport is None:
        a, g, ah, gh = alpha, gamma, alpha_hat, gamma_hat
    else:
        tr = symbolic_transport(transport)
        a, g, ah, gh = tr.alpha, tr.gamma, tr.alpha_hat, tr.gamma_hat
    det = a * gh - ah * g
    diff = sp.factor(sp.simplify((a * F - ah * (a * z + g * x)) / det - x))
    target = ah * z + gh * x
    factored = a / sp.simplify(det) * (F - target)
    return LambdaZeroTarget(diff, factored, sp.simplify(diff - factored), target)


@dataclass(frozen=True)
class FlowMatchingCheck:
    """Is a transport flow matching, alpha_hat = d alpha / dt and gamma_hat = d gamma / dt?

    Attributes:
        name: The transport's name.
        alpha_residual: simplify(alpha_hat - alpha').
        gamma_residual: simplify(gamma_hat - gamma').
        velocity_ratio: c(t) with (alpha_hat, gamma_hat) = c(t) (alpha', gamma') when one
            function c serves both coefficients, else None. Then F is the velocity
            d x_tau / d tau in the time tau with d tau / dt = 1 / c(t): c = -1 for ReLinear
            (tau = 1 - t, its network time), c = 2 / pi for TrigFlow (tau = pi t / 2, the
            angle of sCM), a function of t for EDM.
    """

    name: str
    alpha_residual: sp.Expr
    gamma_residual: sp.Expr
    velocity_ratio: sp.Expr | None

    @property
    def is_flow_matching(self) -> bool:
        """Exactly flow matching in the library's time (c = 1)."""
        return self.alpha_residual == 0 and self.gamma_residual == 0

    @property
    def is_flow_matching_in_some_time(self) -> bool:
        """Flow matching after a change of time (a common ratio c(t) exists)."""
        return self.velocity_ratio is not None


def flow_matching_check(transport: SymbolicTransport | str) -> FlowMatchingCheck:
    """Check condition (b) of section 3.1 / App. B.1.3 for a transport.

    Args:
        transport: A transport or a name of Tab. 2.

    Returns:
        :class:`FlowMatchingCheck`.
    """
    tr = symbolic_transport(transport)
    da, dg = tr.path_velocity()
    ratio = None
    if da != 0 and dg != 0:
        ca, cg = sp.simplify(tr.alpha_hat / da), sp.simplify(tr.gamma_hat / dg)
        if _is_zero(ca - cg):
            ratio = ca
    return FlowMatchingCheck(
        name=tr.name,
        alpha_residual=sp.simplify(tr.alpha_hat - da),
        gamma_residual=sp.simplify(tr.gamma_hat - dg),
        velocity_ratio=ratio,
    )


@dataclass(frozen=True)
class FiniteDifferenceLimit:
    """The finite differences of eq. (6) / Alg. 1 as series (App. B.1.2).

    f(t) stands for f^x(F_theta-(x_t, t), x_t, t) along a path x_t = alpha(t) z + gamma(t) x.

    Attributes:
        first_order: (f(t) - f(lambda t)) / (t - lambda t) (eq. 6).
        step: The symbol h = t - lambda t (h -> 0 as lambda -> 1).
        first_order_series: Its Taylor series in h: f' - h f'' / 2 + h^2 f''' / 6.
        limit: The lambda -> 1 (h -> 0) limit: d f / dt.
        first_order_error: Leading error -h f'' / 2 (first order in the step).
        central: (f(t + eps) - f(t - eps)) / (2 eps) (Alg. 1 line 13).
        central_series: Its Taylor series about eps = 0: f' + eps^2 f''' / 6.
        central_error: Leading error eps^2 f''' / 6.
        total_derivative: d f^x / dt by the chain rule, with F(t) = F_theta(x_t, t) on the path.
    """

    first_order: sp.Expr
    step: sp.Symbol
    first_order_series: sp.Expr
    limit: sp.Expr
    first_order_error: sp.Expr
    central: sp.Expr
    central_series: sp.Expr
    central_error: sp.Expr
    total_derivative: sp.Expr


def finite_difference_limit() -> FiniteDifferenceLimit:
    """Series of the first-order (eq. 6) and central (Alg. 1 l. 13) differences (App. B.1.2).

    Returns:
        :class:`FiniteDifferenceLimit`.
    """
    tau = sp.Symbol("t", positive=True)
    lam, eps, h = sp.symbols("lambda epsilon h", positive=True)
    f = sp.Function("f")
    first = (f(tau) - f(lam * tau)) / (tau - lam * tau)
    # lambda t = t - h: expand in the step h.
    in_step = (f(tau) - f(tau - h)) / h
    if sp.simplify(first.subs(lam, 1 - h / tau) - in_step) != 0:  # pragma: no cover
        raise AssertionError("substitution lambda = 1 - h / t failed")
    first_series = sp.series(in_step, h, 0, 3).removeO().doit()
    limit = first_series.subs(h, 0)
    central = (f(tau + eps) - f(tau - eps)) / (2 * eps)
    central_series = sp.series(central, eps, 0, 4).removeO().doit()
    # Chain rule for f^x = (alpha F - alpha_hat x_t) / D along the path.
    a, g, ah, gh = (sp.Function(n)(tau) for n in ("alpha", "gamma", "alphahat", "gammahat"))
    F_path = sp.Function("F")(tau)
    xt = a * z + g * x
    fx = (a * F_path - ah * xt) / (a * gh - ah * g)
    return FiniteDifferenceLimit(
        first_order=first,
        step=h,
        first_order_series=first_series,
        limit=limit,
        first_order_error=sp.expand(first_series - limit).coeff(h, 1) * h,
        central=central,
        central_series=central_series,
        central_error=sp.simplify(central_series - limit),
        total_derivative=sp.diff(fx, tau),
    )


@dataclass(frozen=True)
class FiniteDifferenceError:
    """Errors of the two finite differences at one step size (exact arithmetic, 30 digits).

    Attributes:
        epsilon: The step (t - lambda t for the first-order difference; half-width for the
            central one).
        derivative: The exact d f^x / dt.
        first_order_error: |first-order difference - derivative|.
        central_error: |central difference - derivative|.
    """

    epsilon: float
    derivative: float
    first_order_error: float
    central_error: float


def finite_difference_errors(
    transport: SymbolicTransport | str,
    network: sp.Expr,
    x_value: float,
    z_value: float,
    t_value: float,
    epsilons: Sequence[float],
) -> list[FiniteDifferenceError]:
    """Compare eq. (6) near lambda = 1 with the central difference of Alg. 1 on a concrete F.

    f(r) = f^x(F(x_r, r), x_r, r) along x_r = alpha(r) z + gamma(r) x. The first-order
    difference uses lambda = 1 - eps / t (so t - lambda t = eps), the central one t +- eps.
    Everything is evaluated with 30-digit arithmetic, so the numbers are exact to print.

    Args:
        transport: A transport.
        network: F as an expression in the symbols ``x_t`` (:data:`x_t`) and ``t``.
        x_value: The data point x.
        z_value: The noise z.
        t_value: The time t.
        epsilons: Step sizes.

    Returns:
        One :class:`FiniteDifferenceError` per epsilon.
    """
    tr = symbolic_transport(transport)
    r = sp.Symbol("r", real=True)
    xr = tr.interpolate(z_value, x_value).subs(tr.time, r)
    Fr = sp.sympify(network).subs({x_t: xr, tr.time: r}, simultaneous=True)
    f_r = tr.f_x(sp.Symbol("_F"), sp.Symbol("_xt")).subs(tr.time, r)
    f_r = f_r.subs({sp.Symbol("_F"): Fr, sp.Symbol("_xt"): xr}, simultaneous=True)
    func = sp.lambdify(r, f_r, modules="mpmath")
    dfunc = sp.lambdify(r, sp.diff(f_r, r), modules="mpmath")
    rows = []
    with mpmath.workdps(30):
        t0 = mpmath.mpf(t_value)
        exact = dfunc(t0)
        for eps in epsilons:
            e = mpmath.mpf(eps)
            first = (func(t0) - func(t0 - e)) / e
            central = (func(t0 + e) - func(t0 - e)) / (2 * e)
            rows.append(
                FiniteDifferenceError(
                    float(eps), float(exact), float(abs(first - exact)), float(abs(central - exact))
                )
            )
    return rows


def target_factor(transport: SymbolicTransport | str) -> sp.Expr:
    """The factor 4 alpha / (D sin(pi t / 2)) of the target (Alg. 1 line 15; eq. 5).

    With sin(pi t / 2) (docs/paper-notes.md, E2) the factor is exactly -4 for TrigFlow.

    Args:
        transport: A transport.

    Returns:
        The simplified factor.
    """
    tr = symbolic_transport(transport)
    return sp.simplify(4 * tr.alpha / (tr.D * sp.sin(sp.pi * tr.time / 2)))
