"""Exercises of notebook 01: eq. (2), its SymPy derivation, the targets of Alg. 1."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..transports import get_transport
from . import solutions
from .core import Exercise, Mismatch, check, compare, register

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
            compare(out[0], tr.predict_x(F, x_t, time), f"{where}, x_hat = f^x")
            compare(out[1], tr.predict_z(F, x_t, time), f"{where}, z_hat = f^z")
            cases += 1
    return cases


register(
    Exercise(
        "prediction_functions",
        "f^x and f^z of eq. (2) from F, x_t and the four coefficients",
        "01_prediction_functions_and_objective.ipynb",
        _check_prediction_functions,
        solutions.prediction_functions,
        "solve x_t = alpha z + gamma x, F = alpha_hat z + gamma_hat x for (x, z); the determinant "
        "is D = alpha * gamma_hat - alpha_hat * gamma (mind its sign).",
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
        "build [sp.Eq(x_t, alpha*z + gamma*x), sp.Eq(F, alpha_hat*z + gamma_hat*x)] and call "
        "sp.solve(equations, [x, z], dict=True); return (solution[x], solution[z]).",
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
        "the target mixes the same noise z and data x as x_t, but with the hatted coefficients: "
        "alpha_hat multiplies the noise, gamma_hat the data.",
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
        "the sine is of pi t / 2 (the angle of TrigFlow), not of t; for TrigFlow the factor must "
        "be the constant -4.",
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
        "x_r = alpha(r) z + gamma(r) x with r = lambda t; Delta f = (f^x(F_t, x_t, t) - "
        "f^x(F(x_r, r), x_r, r)) / (t - r) for lambda < 1, the central difference "
        "(f^x at t + eps minus f^x at t - eps) / (2 eps) for lambda = 1; clip Delta f to [-1, 1]; "
        "F_target = F_t - 4 alpha / (D sin(pi t / 2)) * Delta f, all under torch.no_grad().",
    )
)


def check_alg1_target(answer):
    """Check ``answer(model, transport, x, z, t, lam, eps=0.005, clip=1.0) -> F_target``."""
    return check("alg1_target", answer)
