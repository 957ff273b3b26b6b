"""The derivations behind UCGM-S, done by SymPy (section 3.2, App. B.1.3, B.1.6).

Every function returns a small frozen dataclass of SymPy expressions: what was derived, and
the residuals ``simplify(result - expected)`` that prove (residual 0) or refute (residual not
0) a statement of the paper.

Sampling (UCGM-S):

* :func:`euler_reduction`: rho = kappa = 0 is Euler for flow-matching transports (B.1.6).
* :func:`second_order_correction`: the correction of Alg. 2 line 11 (docs/paper-notes.md, E1).
* :func:`adams_bashforth_check`: extrapolation with kappa = 1/2 and two-step Adams-Bashforth.
* :func:`stochastic_ratio`: rho from Euler-Maruyama (B.1.6; docs/paper-notes.md, E3).
* :func:`pf_ode_derivation`, :func:`tweedie_gaussian_check`: the PF-ODE of App. B.1.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..transports import SymbolicTransport, symbolic_transport
from .symbols import (
    F,
    alpha_fn,
    delta_t,
    gamma_fn,
    t_i,
    t_next,
    x,
    x_hat_next,
    x_hat_sym,
    x_t,
    x_tilde,
    z,
    z_hat_next,
    z_hat_sym,
)

__all__ = [
    "AdamsBashforthCheck",
    "EulerReduction",
    "PFODEDerivation",
    "SecondOrderCorrection",
    "StochasticRatio",
    "TweedieCheck",
    "adams_bashforth_check",
    "euler_reduction",
    "pf_ode_derivation",
    "second_order_correction",
    "stochastic_ratio",
    "tweedie_gaussian_check",
]


@dataclass(frozen=True)
class EulerReduction:
    """One deterministic UCGM-S step (rho = kappa = 0) as a series in the step (App. B.1.6).

    x' = alpha(t + Delta) f^z(F, x~, t) + gamma(t + Delta) f^x(F, x~, t)
       = c0 + c1 Delta + O(Delta^2).

    Attributes:
        name: The transport's name.
        step: x' as a function of Delta_t.
        zeroth_order_residual: simplify(c0 - x~): 0 (the decomposition is exact).
        velocity: c1 = alpha' f^z + gamma' f^x, the drift of the step.
        velocity_over_output: simplify(c1 / F) when c1 is F times a function of t, else None:
            1 is the Euler step x~ + F Delta t; -1 Euler in the network time 1 - t; pi / 2
            Euler in the angle pi t / 2; in general Euler in a time tau with
            d tau / dt = velocity_over_output (see :class:`FlowMatchingCheck`).
    """

    name: str
    step: sp.Expr
    zeroth_order_residual: sp.Expr
    velocity: sp.Expr
    velocity_over_output: sp.Expr | None

    @property
    def is_euler(self) -> bool:
        """The step is exactly Euler's x~ + F Delta t to first order."""
        return self.velocity_over_output == 1


def euler_reduction(transport: SymbolicTransport | str) -> EulerReduction:
    """Expand Alg. 2 with rho = 0, kappa = 0, order 1 in the step Delta t (App. B.1.6).

    Args:
        transport: A transport.

    Returns:
        :class:`EulerReduction`.
    """
    tr = symbolic_transport(transport)
    xh, zh = tr.f_x(F, x_tilde), tr.f_z(F, x_tilde)
    shifted = {tr.time: tr.time + delta_t}
    step = tr.alpha.subs(shifted) * zh + tr.gamma.subs(shifted) * xh
    c0 = step.subs(delta_t, 0)
    c1 = sp.simplify(sp.diff(step, delta_t).subs(delta_t, 0))
    ratio = sp.simplify(c1 / F)
    return EulerReduction(
        name=tr.name,
        step=step,
        zeroth_order_residual=sp.simplify(c0 - x_tilde),
        velocity=c1,
        velocity_over_output=ratio if not ratio.free_symbols & {x_tilde, F} else None,
    )


@dataclass(frozen=True)
class SecondOrderCorrection:
    """The second-order correction of Alg. 2 line 11, derived and checked.

    Attributes:
        average: "z" (docs/paper-notes.md E1, the reference code, the library) or "x" (printed).
        change_of_variables: d y / d s along the PF-ODE d x~/dt = alpha' z^ + gamma' x^, with
            y = x~ / gamma and s = alpha / gamma: it is z^, so Heun's (trapezoid) rule in s
            averages z^.
        trapezoid: x' from y' = y + (s' - s)(z^ + z^') / 2, i.e. the derived correction.
        formula: The correction with the chosen average (line 11 with z^ or as printed).
        trapezoid_residual: simplify(formula - trapezoid): 0 only for "z".
        exact_path_residual: x' - (alpha(t') z + gamma(t') x) when every estimate is exact
            (z^ = z^' = z, x^ = x^' = x, x~ = alpha z + gamma x): 0 only for "z".
        predictor_residual: x' - (alpha(t') z^ + gamma(t') x^) when the two estimates agree
            (z^' = z^, resp. x^' = x^): the correction then reduces to line 8; 0 only for "z".
    """

    average: str
    change_of_variables: sp.Expr
    trapezoid: sp.Expr
    formula: sp.Expr
    trapezoid_residual: sp.Expr
    exact_path_residual: sp.Expr
    predictor_residual: sp.Expr

    @property
    def is_consistent(self) -> bool:
        """All three residuals vanish."""
        return (
            self.trapezoid_residual == 0
            and self.exact_path_residual == 0
            and self.predictor_residual == 0
        )


def second_order_correction(average: str = "z") -> SecondOrderCorrection:
    """Derive Alg. 2 line 11 and test the averaged quantity (docs/paper-notes.md, E1).

    Along the PF-ODE of App. B.1.3, d x~ / dt = alpha' z^ + gamma' x^ with x^ = (x~ - alpha
    z^) / gamma. In y = x~ / gamma and s = alpha / gamma this is d y / d s = z^, so the
    trapezoid rule gives x' = x~ gamma(t') / gamma(t) + (alpha(t') - gamma(t') alpha(t) /
    gamma(t)) (z^ + z^') / 2. Averaging x^ instead (as printed) is not consistent: it is wrong
    even when every estimate is exact.

    Args:
        average: "z" or "x".

    Returns:
        :class:`SecondOrderCorrection`.

    Raises:
        ValueError: For another ``average``.
    """
    if average not in ("z", "x"):
        raise ValueError(f"average must be 'z' or 'x', got {average!r}.")
    tau = sp.Symbol("t", real=True)
    a, g = alpha_fn(tau), gamma_fn(tau)
    state, noise = sp.Function("xtilde")(tau), sp.Function("zhat")(tau)
    data_est = (state - a * noise) / g
    ode_rhs = sp.diff(a, tau) * noise + sp.diff(g, tau) * data_est
    dy_dt = sp.diff(state / g, tau).subs(sp.Derivative(state, tau), ode_rhs)
    dy_ds = sp.simplify(dy_dt / sp.diff(a / g, tau))

    a0, g0, a1, g1 = alpha_fn(t_i), gamma_fn(t_i), alpha_fn(t_next), gamma_fn(t_next)
    y1 = x_tilde / g0 + (a1 / g1 - a0 / g0) * (z_hat_sym + z_hat_next) / 2
    trapezoid = sp.expand(g1 * y1)
    first, second = (z_hat_sym, z_hat_next) if average == "z" else (x_hat_sym, x_hat_next)
    formula = x_tilde * g1 / g0 + (a1 - g1 * a0 / g0) * (first + second) / 2

    exact = {x_tilde: a0 * z + g0 * x, z_hat_sym: z, z_hat_next: z, x_hat_sym: x, x_hat_next: x}
    exact_res = sp.simplify(formula.subs(exact, simultaneous=True) - (a1 * z + g1 * x))
    if average == "z":
        agree = {z_hat_next: z_hat_sym}
        line8 = a1 * z_hat_sym + g1 * (x_tilde - a0 * z_hat_sym) / g0
    else:
        agree = {x_hat_next: x_hat_sym}
        line8 = a1 * (x_tilde - g0 * x_hat_sym) / a0 + g1 * x_hat_sym
    return SecondOrderCorrection(
        average=average,
        change_of_variables=dy_ds,
        trapezoid=trapezoid,
        formula=formula,
        trapezoid_residual=sp.simplify(formula - trapezoid),
        exact_path_residual=sp.factor(exact_res),
        predictor_residual=sp.factor(sp.simplify(formula.subs(agree) - line8)),
    )


@dataclass(frozen=True)
class AdamsBashforthCheck:
    """UCGM-S with extrapolation (Alg. 2 line 5) against two-step Adams-Bashforth (AB2).

    Linear transport, rho = 0, uniform steps t_{i-1} = t_i + h, t_{i+1} = t_i - h; the
    states x_{i-1}, x_i were decomposed with network outputs (velocities) F_{i-1}, F_i.

    Attributes:
        kappa: The extrapolation ratio.
        update: x_{i+1} of Alg. 2 (line 8 with the extrapolated z^, x^), for this kappa.
        general_update: The same for a symbolic kappa: a two-step linear multistep method.
        extrapolated_velocity: alpha_hat z^ + gamma_hat x^ of the extrapolated estimates.
        velocity_residual: extrapolated velocity - ((1 + kappa) F_i - kappa F_{i-1}): 0.
        ab2: Adams-Bashforth: x_i - h (3/2 F_i - 1/2 F_{i-1}).
        difference: update - ab2 (kappa times the gap between the last step and Euler).
        first_step_residual: difference when the previous step was plain Euler
            (x_i = x_{i-1} - h F_{i-1}, as for the first extrapolated step): 0 for kappa = 1/2.
        local_error: Leading term of X(t_{i+1}) - update for an exact solution X (X' = F).
        ab2_local_error: The same for AB2 (order h^3).
        second_order_kappa: The kappa whose local error is O(h^3): 1/3.
    """

    kappa: sp.Expr
    update: sp.Expr
    general_update: sp.Expr
    extrapolated_velocity: sp.Expr
    velocity_residual: sp.Expr
    ab2: sp.Expr
    difference: sp.Expr
    first_step_residual: sp.Expr
    local_error: sp.Expr
    ab2_local_error: sp.Expr
    second_order_kappa: sp.Expr


def adams_bashforth_check(kappa: sp.Expr | float = 0.5) -> AdamsBashforthCheck:
    """Compare kappa-extrapolated UCGM-S steps with two-step Adams-Bashforth (Alg. 2 l. 5-8).

    The extrapolated estimates carry the extrapolated velocity (1 + kappa) F_i - kappa
    F_{i-1}, which for kappa = 1/2 is exactly AB2's 3/2 F_i - 1/2 F_{i-1}. But line 8 rebuilds
    the state from the extrapolated estimates, not from x_i, so the update is AB2 plus kappa
    (x_i - x_{i-1} + h F_{i-1}): AB2 exactly when the previous step was a plain Euler step
    (the first extrapolated step), and otherwise the two-step method x_{i+1} = (1 + kappa) x_i
    - kappa x_{i-1} - h ((1 + kappa) F_i - 2 kappa F_{i-1}), whose local error is
    (1 - 3 kappa) h^2 X'' / 2: second order for kappa = 1/3, first order for kappa = 1/2.

    Args:
        kappa: The extrapolation ratio (default 1/2).

    Returns:
        :class:`AdamsBashforthCheck`.
    """
    kappa = sp.nsimplify(kappa)
    k = sp.Symbol("kappa", positive=True)
    h = sp.Symbol("h", positive=True)
    ti = sp.Symbol("t_i", real=True)
    x_prev, x_cur, F_prev, F_cur = sp.symbols("x_i-1 x_i F_i-1 F_i", real=True)
    tr = symbolic_transport("linear")

    def decompose(state: sp.Expr, out: sp.Expr, when: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
        return tr.at(tr.f_x(out, state), when), tr.at(tr.f_z(out, state), when)

    xh_prev, zh_prev = decompose(x_prev, F_prev, ti + h)
    xh_cur, zh_cur = decompose(x_cur, F_cur, ti)
    xh_ext = xh_cur + k * (xh_cur - xh_prev)
    zh_ext = zh_cur + k * (zh_cur - zh_prev)
    general = sp.expand(tr.at(tr.alpha, ti - h) * zh_ext + tr.at(tr.gamma, ti - h) * xh_ext)
    general = sp.collect(general, [x_prev, x_cur, F_prev, F_cur])
    velocity = sp.expand(tr.alpha_hat * zh_ext + tr.gamma_hat * xh_ext)
    update = sp.collect(sp.expand(general.subs(k, kappa)), [x_prev, x_cur, F_prev, F_cur])
    ab2 = x_cur - h * (sp.Rational(3, 2) * F_cur - sp.Rational(1, 2) * F_prev)
    difference = sp.factor(sp.expand(update - ab2))

    # A smooth exact solution X(t) with X' = F, as its Taylor polynomial about t_i.
    derivs = sp.symbols("X X' X'' X''' X''''", real=True)

    def exact_x(offset: sp.Expr) -> sp.Expr:
        return sum(derivs[n] * offset**n / sp.factorial(n) for n in range(5))

    def exact_dx(offset: sp.Expr) -> sp.Expr:
        return sum(derivs[n + 1] * offset**n / sp.factorial(n) for n in range(4))

    exact = {x_prev: exact_x(h), x_cur: exact_x(0), F_prev: exact_dx(h), F_cur: exact_dx(0)}

    def local(step: sp.Expr) -> sp.Expr:
        return sp.expand(exact_x(-h) - step.subs(exact, simultaneous=True))

    def leading(step: sp.Expr) -> sp.Expr:
        err = local(step)
        for power in range(5):
            term = sp.factor(err.coeff(h, power))
            if term != 0:
                return term * h**power
        return sp.Integer(0)

    c2 = local(general).coeff(h, 2)
    return AdamsBashforthCheck(
        kappa=kappa,
        update=update,
        general_update=general,
        extrapolated_velocity=sp.collect(velocity, [F_prev, F_cur]),
        velocity_residual=sp.simplify(velocity - ((1 + k) * F_cur - k * F_prev)),
        ab2=ab2,
        difference=difference,
        first_step_residual=sp.simplify(difference.subs(x_cur, x_prev - h * F_prev)),
        local_error=leading(update),
        ab2_local_error=leading(ab2),
        second_order_kappa=sp.solve(sp.Eq(c2, 0), k)[0],
    )


@dataclass(frozen=True)
class StochasticRatio:
    """The stochastic ratio rho from the Euler-Maruyama step (App. B.1.6; docs/paper-notes.md, E3).

    Line 8 injects alpha(t_{i+1}) sqrt(rho) eps; an Euler-Maruyama step of
    d x = f dt + g dw injects g sqrt(|Delta t|) eps. Equal variances give rho.

    Attributes:
        variance_equation: alpha(t_{i+1})^2 rho = g^2 |Delta t|.
        rho: The solution g^2 |Delta t| / alpha(t_{i+1})^2.
        appendix_rho: With g^2 = 2 alpha(t_i): 2 |Delta t| alpha(t_i) / alpha(t_{i+1})^2.
        main_text_rho: Alg. 2 line 7 as printed: 2 |Delta t| alpha(t_i) / alpha(t_{i+1}).
        main_text_variance_ratio: injected variance with the printed rho divided by
            g^2 |Delta t|: alpha(t_{i+1}), not 1.
    """

    variance_equation: sp.Eq
    rho: sp.Expr
    appendix_rho: sp.Expr
    main_text_rho: sp.Expr
    main_text_variance_ratio: sp.Expr


def stochastic_ratio() -> StochasticRatio:
    """Derive rho by matching the injected noise to an Euler-Maruyama step (App. B.1.6).

    Returns:
        :class:`StochasticRatio`.
    """
    rho, g2 = sp.Symbol("rho", positive=True), sp.Symbol("g^2", positive=True)
    dt = sp.Abs(delta_t)
    a0, a1 = alpha_fn(t_i), alpha_fn(t_next)
    equation = sp.Eq(a1**2 * rho, g2 * dt)
    solved = sp.solve(equation, rho)[0]
    main = 2 * dt * a0 / a1
    return StochasticRatio(
        variance_equation=equation,
        rho=solved,
        appendix_rho=solved.subs(g2, 2 * a0),
        main_text_rho=main,
        main_text_variance_ratio=sp.simplify(a1**2 * main / (2 * a0 * dt)),
    )


@dataclass(frozen=True)
class PFODEDerivation:
    """The PF-ODE of App. B.1.3 from the Lyapunov equation and Tweedie's formula.

    Attributes:
        drift_coefficient: H(t) = gamma' / gamma from d E[x_t | x_0] / dt = H E[x_t | x_0].
        g_squared: g^2 from the Lyapunov equation d(alpha^2)/dt = 2 H alpha^2 + g^2.
        pf_ode: The PF-ODE drift H x_t - g^2 / 2 * score.
        tweedie_x: f^x_* = (x_t + alpha^2 score) / gamma (Tweedie).
        tweedie_z: f^z_* = (x_t - gamma f^x_*) / alpha = -alpha score.
        velocity_residual: simplify(alpha' f^z_* + gamma' f^x_* - pf_ode): 0.
    """

    drift_coefficient: sp.Expr
    g_squared: sp.Expr
    pf_ode: sp.Expr
    tweedie_x: sp.Expr
    tweedie_z: sp.Expr
    velocity_residual: sp.Expr

    def g_squared_for(self, transport: SymbolicTransport | str) -> sp.Expr:
        """g(t)^2 of the forward SDE of a concrete transport (simplified)."""
        tr = symbolic_transport(transport)
        tau = sp.Symbol("t", real=True)
        coefficients = {
            alpha_fn(tau): tr.alpha.subs(tr.time, tau),
            gamma_fn(tau): tr.gamma.subs(tr.time, tau),
        }
        expr = self.g_squared.subs(coefficients)
        return sp.simplify(expr.doit().subs(tau, tr.time))


def pf_ode_derivation() -> PFODEDerivation:
    """Derive the PF-ODE and show it equals alpha' f^z_* + gamma' f^x_* (App. B.1.3).

    Returns:
        :class:`PFODEDerivation`.
    """
    tau = sp.Symbol("t", real=True)
    a, g = alpha_fn(tau), gamma_fn(tau)
    x0, score = sp.Symbol("x_0", real=True), sp.Symbol("s", real=True)  # s = grad log p_t(x_t)
    H, g2 = sp.symbols("H g^2", real=True)
    H_sol = sp.solve(sp.Eq(sp.diff(g * x0, tau), H * g * x0), H)[0]
    g2_sol = sp.solve(sp.Eq(sp.diff(a**2, tau), 2 * H_sol * a**2 + g2), g2)[0]
    pf = H_sol * x_t - g2_sol / 2 * score
    fx_star = (x_t + a**2 * score) / g
    fz_star = sp.simplify((x_t - g * fx_star) / a)
    velocity = sp.diff(a, tau) * fz_star + sp.diff(g, tau) * fx_star
    return PFODEDerivation(
        drift_coefficient=H_sol,
        g_squared=sp.expand(g2_sol),
        pf_ode=sp.collect(sp.expand(pf), [x_t, score]),
        tweedie_x=fx_star,
        tweedie_z=fz_star,
        velocity_residual=sp.simplify(velocity - pf),
    )


@dataclass(frozen=True)
class TweedieCheck:
    """Tweedie's formula checked on Gaussian data x ~ N(m, v).

    Attributes:
        score: grad log p_t(x_t) of p_t = N(gamma m, gamma^2 v + alpha^2).
        posterior_mean: E[x | x_t] by Gaussian conditioning.
        tweedie: (x_t + alpha^2 score) / gamma.
        residual: simplify(tweedie - posterior_mean): 0.
    """

    score: sp.Expr
    posterior_mean: sp.Expr
    tweedie: sp.Expr
    residual: sp.Expr


def tweedie_gaussian_check() -> TweedieCheck:
    """Check f^x_* = (x_t + alpha^2 grad log p_t) / gamma = E[x | x_t] for Gaussian data.

    Returns:
        :class:`TweedieCheck`.
    """
    m, v = sp.Symbol("m", real=True), sp.Symbol("v", positive=True)
    a, g = sp.symbols("alpha gamma", positive=True)
    var_t = g**2 * v + a**2
    score = -(x_t - g * m) / var_t
    post = m + g * v / var_t * (x_t - g * m)
    tweedie = (x_t + a**2 * score) / g
    return TweedieCheck(score, sp.simplify(post), sp.simplify(tweedie), sp.simplify(tweedie - post))
