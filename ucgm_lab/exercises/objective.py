"""Exercises of notebook 01: eq. (2), its SymPy derivation, the targets of Alg. 1."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..transports import get_transport
from . import solutions
from .core import Exercise, Mismatch, as_tensor, check, compare, register

__all__ = [
    "check_alg1_target",
    "check_flow_matching_target",
    "check_prediction_functions",
    "check_solve_eq2",
    "check_target_factor",
]

TRANSPORTS = ("linear", "relinear", "trigflow", "edm", "triglinear", "random")
TIMES = (0.05, 0.3, 0.5, 0.8, 0.97)


def _data(seed: int, batch: int = 5, dim: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, dim)
    return (
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )


# ---------------------------------------------------------------------- prediction functions
def _check_prediction_functions(answer) -> int:
    cases = 0
    for name in TRANSPORTS:
        tr = get_transport(name)
        for k, time in enumerate(TIMES):
            F, x_t, _ = _data(100 + k)
            c = tr.coefficients(torch.full((F.shape[0], 1), time, dtype=torch.float64))
            out = answer(F, x_t, c.alpha, c.gamma, c.alpha_hat, c.gamma_hat)
            if not isinstance(out, tuple) or len(out) != 2:
                raise Mismatch(f"return the pair (x_hat, z_hat); got {type(out).__name__}.")
            where = f"transport {tr.name}, t = {time}"
            expected = (tr.predict_x(F, x_t, time), tr.predict_z(F, x_t, time))
            labels = ("x_hat = f^x", "z_hat = f^z")
            for which, (label, got, exp) in enumerate(zip(labels, out, expected, strict=True)):
                try:
                    compare(got, exp, f"{where}, {label}")
                except Mismatch as wrong:
                    raise Mismatch(f"{wrong}{_diagnose_eq2(answer, which)}") from None
            cases += 1
    return cases


def _close(got: Tensor, value: Tensor) -> bool:
    return got.shape == value.shape and torch.allclose(got, value, rtol=1e-5, atol=1e-5)


def _diagnose_eq2(answer, which: int) -> str:
    """A sentence naming a typical mistake in eq. (2), or "" when none fits.

    Linear and TrigFlow have D = -1, where forgetting /D and flipping the sign of D give the same
    numbers, so the answer is run once more on coefficients with D = 3 to tell them apart.
    """
    F, x_t = torch.tensor([[0.7, -1.3]], dtype=torch.float64), torch.tensor([[0.4, 2.0]])
    x_t = x_t.double()
    a, g, ah, gh = (torch.tensor(v, dtype=torch.float64) for v in (2.0, 1.0, 1.0, 2.0))
    D = a * gh - ah * g
    right = ((a * F - ah * x_t) / D, (gh * x_t - g * F) / D)
    try:
        out = answer(F, x_t, a, g, ah, gh)
        got = as_tensor(out[which], "")
    except Exception:  # noqa: BLE001 - no diagnosis then; the mismatch itself is reported
        return ""
    if _close(got, right[which] * D):
        return (
            " Your value is the right one times D: you forgot to divide by the determinant "
            "D = alpha * gamma_hat - alpha_hat * gamma."
        )
    if _close(got, -right[which]):
        return (
            " Your value has the wrong sign: the determinant is D = alpha * gamma_hat - "
            "alpha_hat * gamma (you used its negative, or swapped the terms of a numerator)."
        )
    if _close(got, right[1 - which]):
        return " This is the other estimate: return (x_hat, z_hat) in that order."
    return ""


register(
    Exercise(
        "prediction_functions",
        "f^x and f^z of eq. (2) from F, x_t and the four coefficients",
        "01_prediction_functions_and_objective.ipynb",
        _check_prediction_functions,
        solutions.prediction_functions,
        hints=(
            "x_t and F are two linear equations in the two unknowns x and z: solve the 2 x 2 system.",
            "Eq. (2) of section 3.1: write x_t = alpha z + gamma x and F = alpha_hat z + gamma_hat x as a matrix [[gamma, alpha], [gamma_hat, alpha_hat]] acting on (x, z) and invert it (Cramer's rule).",
            "D = alpha * gamma_hat - alpha_hat * gamma; x_hat = (alpha * F - alpha_hat * x_t) / D; z_hat = (gamma_hat * x_t - gamma * F) / D.",
        ),
        shortcuts=(
            "ucgm_lab.transports.transport:Transport.predict_x",
            "ucgm_lab.transports.transport:Transport.predict_z",
            "ucgm_lab.transports.transport:Transport.decompose",
            "ucgm_lab.symbolic.derivations.training:derive_prediction_functions",
        ),
    )
)


def check_prediction_functions(answer):
    """Check ``answer(F, x_t, alpha, gamma, alpha_hat, gamma_hat) -> (x_hat, z_hat)`` (eq. 2)."""
    return check("prediction_functions", answer)


# ---------------------------------------------------------------------- SymPy: solve eq. (2)
def _check_solve_eq2(answer) -> int:
    import sympy as sp

    x_t, F, x, z = sp.symbols("x_t F x z", real=True)
    alpha, gamma, alpha_hat, gamma_hat = sp.symbols("alpha gamma alphahat gammahat", real=True)
    out = answer(x_t, F, x, z, alpha, gamma, alpha_hat, gamma_hat)
    if not isinstance(out, tuple) or len(out) != 2:
        raise Mismatch(f"return the pair (x_expr, z_expr); got {type(out).__name__}.")
    D = alpha * gamma_hat - alpha_hat * gamma
    expected = ((alpha * F - alpha_hat * x_t) / D, (gamma_hat * x_t - gamma * F) / D)
    for label, got, exp in zip(("x", "z"), out, expected, strict=True):
        if not isinstance(got, sp.Expr):
            raise Mismatch(f"the {label} solution should be a SymPy expression, got {got!r}.")
        if got.has(x) or got.has(z):
            raise Mismatch(
                f"the {label} solution {got} still contains x or z: solve for both unknowns."
            )
        if sp.simplify(got - exp) != 0:
            raise Mismatch(f"the {label} solution: expected {exp}, got {got}.")
    return 2


register(
    Exercise(
        "solve_eq2",
        "solve the two mixtures of section 3.1 for x and z with SymPy (eq. 2)",
        "01_prediction_functions_and_objective.ipynb",
        _check_solve_eq2,
        solutions.solve_eq2,
        hints=(
            "let SymPy solve the same two linear equations as in prediction_functions, symbolically.",
            "sp.Eq(lhs, rhs) builds an equation; sp.solve([eq1, eq2], [x, z], dict=True) returns a list of solutions, each a dict {x: ..., z: ...}.",
            "equations = [sp.Eq(x_t, alpha*z + gamma*x), sp.Eq(F, alpha_hat*z + gamma_hat*x)]; s = sp.solve(equations, [x, z], dict=True)[0]; return s[x], s[z].",
        ),
        shortcuts=("ucgm_lab.symbolic.derivations.training:derive_prediction_functions",),
    )
)


def check_solve_eq2(answer):
    """Check ``answer(x_t, F, x, z, alpha, gamma, alpha_hat, gamma_hat) -> (x_expr, z_expr)``."""
    return check("solve_eq2", answer)


# ---------------------------------------------------------------------- lambda = 0 target
def _check_flow_matching_target(answer) -> int:
    cases = 0
    for name in TRANSPORTS:
        tr = get_transport(name)
        for k, time in enumerate(TIMES):
            x, z, _ = _data(200 + k)
            c = tr.coefficients(torch.full((x.shape[0], 1), time, dtype=torch.float64))
            got = answer(c.alpha_hat, c.gamma_hat, x, z)
            compare(got, tr.target(x, z, time), f"transport {tr.name}, t = {time}")
            cases += 1
    return cases


register(
    Exercise(
        "flow_matching_target",
        "the lambda = 0 regression target of objective (1)",
        "01_prediction_functions_and_objective.ipynb",
        _check_flow_matching_target,
        solutions.flow_matching_target,
        hints=(
            "at lambda = 0 the network regresses on the second mixture of the same noise and data.",
            "Section 3.1: x_t mixes (z, x) with (alpha, gamma); the target mixes them with the hatted coefficients (App. B.1.3).",
            "target = alpha_hat * z + gamma_hat * x.",
        ),
        shortcuts=(
            "ucgm_lab.transports.transport:Transport.target",
            "ucgm_lab.symbolic.derivations.training:lambda_zero_target",
        ),
    )
)


def check_flow_matching_target(answer):
    """Check ``answer(alpha_hat, gamma_hat, x, z) -> target`` (App. B.1.3)."""
    return check("flow_matching_target", answer)


# ---------------------------------------------------------------------- the factor of line 15
def _check_target_factor(answer) -> int:
    cases = 0
    times = torch.tensor(TIMES, dtype=torch.float64)
    for name in TRANSPORTS:
        tr = get_transport(name)
        c = tr.coefficients(times)
        got = answer(c.alpha, c.D, times)
        expected = 4 * c.alpha / (c.D * torch.sin(math.pi * times / 2))
        compare(got, expected, f"transport {tr.name}, t = {list(TIMES)}")
        cases += len(TIMES)
    return cases


register(
    Exercise(
        "target_factor",
        "the factor 4 alpha / (D sin(pi t / 2)) of Alg. 1 line 15",
        "01_prediction_functions_and_objective.ipynb",
        _check_target_factor,
        solutions.target_factor,
        hints=(
            "the finite difference of f^x becomes a correction of F through a factor built from alpha, D and TrigFlow's angle.",
            "Alg. 1 line 15 (eq. 5): F_target = sg(F_t) - factor * Delta f; the angle is pi t / 2, not t.",
            "factor = 4 * alpha / (D * torch.sin(math.pi * t / 2)); for TrigFlow it is the constant -4.",
        ),
        shortcuts=(
            "ucgm_lab.objective_terms:target_from_difference",
            "ucgm_lab.symbolic.derivations.training:target_factor",
        ),
    )
)


def check_target_factor(answer):
    """Check ``answer(alpha, D, t) -> factor`` on tensors of times."""
    return check("target_factor", answer)


# ---------------------------------------------------------------------- Alg. 1 target
class _SmoothNet(nn.Module):
    """A fixed float64 MLP whose finite differences are large enough to exercise the clip."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 2)).double()
        with torch.no_grad():
            self.net[0].weight.mul_(3.0)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat([x_t, t[:, None]], dim=1))


def _check_alg1_target(answer) -> int:
    from ..objective import UCGMObjective

    cases = 0
    with torch.random.fork_rng(devices=[]):
        model = _SmoothNet(0)
    for name in ("linear", "trigflow", "triglinear"):
        tr = get_transport(name)
        for k, lam in enumerate((0.5, 0.9, 1.0)):
            x, z, _ = _data(300 + k, batch=8)
            t = torch.linspace(0.1, 0.95, 8, dtype=torch.float64)
            got = answer(model, tr, x, z, t, lam)
            where = f"transport {tr.name}, lambda = {lam}"
            if torch.is_tensor(got) and got.requires_grad:
                raise Mismatch(
                    f"{where}: your target carries a gradient (requires_grad=True). Alg. 1 "
                    "regresses F on sg(F_target): compute it under torch.no_grad() or detach it."
                )
            objective = UCGMObjective(tr, lam, clip=1.0)
            expected = objective(model, x, t=t, noise=z).target
            try:
                compare(got, expected, where, atol=1e-7)
            except Mismatch as wrong:
                per_t = (torch.as_tensor(got).detach() - expected).abs().amax(1)
                bad = [f"{float(s):.3g}" for s in t[per_t > 1e-7]]
                raise Mismatch(f"{wrong} Wrong at t = {', '.join(bad)}.") from None
            cases += 1
    return cases


register(
    Exercise(
        "alg1_target",
        "F_target of Alg. 1 for lambda in (0, 1]: the difference, the clip, the factor",
        "01_prediction_functions_and_objective.ipynb",
        _check_alg1_target,
        solutions.alg1_target,
        hints=(
            "the target is the stop-gradient output minus a clipped change of the data estimate f^x along the path, scaled by the factor of line 15.",
            "Alg. 1 lines 3 and 8-15: build x_t, then x_r at r = lambda t (or t +- eps for lambda = 1), decode each with transport.predict_x, take the difference quotient, clip it, apply the factor; everything under torch.no_grad().",
            "x_r = alpha(r) z + gamma(r) x with r = lambda t; Delta f = (f^x(F_t, x_t, t) - f^x(F(x_r, r), x_r, r)) / (t - r) for lambda < 1, the central difference (f^x at t + eps minus f^x at t - eps) / (2 eps) for lambda = 1; clip Delta f to [-clip, clip]; F_target = F_t - 4 alpha / (D sin(pi t / 2)) * Delta f.",
        ),
        shortcuts=(
            "ucgm_lab.objective:UCGMObjective.__call__",
            "ucgm_lab.objective_terms:target_from_difference",
            "ucgm_lab.objective_targets:ObjectiveTargets._finite_difference",
        ),
    )
)


def check_alg1_target(answer):
    """Check ``answer(model, transport, x, z, t, lam, eps=0.005, clip=1.0) -> F_target``."""
    return check("alg1_target", answer)
