"""Exercises of notebook 02: the constraints of a transport, an epsilon-prediction adapter."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import solutions
from .core import Exercise, Mismatch, check, compare, register

__all__ = ["CONSTRAINT_NAMES", "check_constraint_violations", "check_epsilon_to_velocity"]

CONSTRAINT_NAMES = solutions.CONSTRAINT_NAMES


def _edm_sigma(t: Tensor) -> Tensor:
    return torch.exp(4 * (2.68 * t - 1.59))


# (name, alpha, gamma, alpha_hat, gamma_hat, the constraints it breaks). The expected sets are
# written by hand from the formulas, not computed by the reference solution.
_HALF_PI = math.pi / 2
_CASES = (
    (
        "Linear: alpha = t, gamma = 1 - t, alpha_hat = 1, gamma_hat = -1",
        lambda t: t,
        lambda t: 1 - t,
        lambda t: torch.ones_like(t),
        lambda t: -torch.ones_like(t),
        set(),
    ),
    (
        "TrigFlow: alpha = sin(pi t/2), gamma = cos(pi t/2), targets their derivatives / (pi/2)",
        lambda t: torch.sin(_HALF_PI * t),
        lambda t: torch.cos(_HALF_PI * t),
        lambda t: torch.cos(_HALF_PI * t),
        lambda t: -torch.sin(_HALF_PI * t),
        set(),
    ),
    (
        "EDM-like: alpha = s / sqrt(s^2 + 1/4), gamma = 1 / sqrt(s^2 + 1/4), s = exp(4 (2.68 t - 1.59))",
        lambda t: _edm_sigma(t) / torch.sqrt(_edm_sigma(t) ** 2 + 0.25),
        lambda t: 1 / torch.sqrt(_edm_sigma(t) ** 2 + 0.25),
        lambda t: -0.5 / torch.sqrt(_edm_sigma(t) ** 2 + 0.25),
        lambda t: 2 * _edm_sigma(t) / torch.sqrt(_edm_sigma(t) ** 2 + 0.25),
        {"alpha(0)=0", "alpha(1)=1", "gamma(0)=1", "gamma(1)=0"},
    ),
    (
        "alpha = t, gamma = 1 - t, alpha_hat = 1, gamma_hat = 1 (D = 2t - 1)",
        lambda t: t,
        lambda t: 1 - t,
        lambda t: torch.ones_like(t),
        lambda t: torch.ones_like(t),
        {"D nonzero"},
    ),
    (
        "alpha = t, gamma = 1 - t, alpha_hat = 1, gamma_hat = 1/2 (D = 3t/2 - 1)",
        lambda t: t,
        lambda t: 1 - t,
        lambda t: torch.ones_like(t),
        lambda t: torch.full_like(t, 0.5),
        {"D nonzero"},
    ),
    (
        "alpha = sin(pi t), gamma = 1 - t, alpha_hat = 1, gamma_hat = -1",
        lambda t: torch.sin(math.pi * t),
        lambda t: 1 - t,
        lambda t: torch.ones_like(t),
        lambda t: -torch.ones_like(t),
        {"alpha(1)=1", "alpha nondecreasing"},
    ),
    (
        "alpha = t^2, gamma = (1 - t)(1 + 2t), alpha_hat = 2t, gamma_hat = -4t + 1",
        lambda t: t * t,
        lambda t: (1 - t) * (1 + 2 * t),
        lambda t: 2 * t,
        lambda t: 1 - 4 * t,
        {"gamma nonincreasing"},
    ),
    (
        "swapped roles: alpha = 1 - t, gamma = t, alpha_hat = -1, gamma_hat = 1",
        lambda t: 1 - t,
        lambda t: t,
        lambda t: -torch.ones_like(t),
        lambda t: torch.ones_like(t),
        {
            "alpha(0)=0",
            "alpha(1)=1",
            "alpha nondecreasing",
            "gamma(0)=1",
            "gamma(1)=0",
            "gamma nonincreasing",
        },
    ),
)


def _check_constraint_violations(answer) -> int:
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    for label, a, g, ah, gh, expected in _CASES:
        got = answer(a, g, ah, gh, grid)
        if not isinstance(got, (set, frozenset, list, tuple)):
            raise Mismatch(
                f"return a set of constraint names; got {type(got).__name__} for {label}."
            )
        got = set(got)
        unknown = got - set(CONSTRAINT_NAMES)
        if unknown:
            raise Mismatch(f"unknown names {sorted(unknown)}; use names from {CONSTRAINT_NAMES}.")
        if got != expected:
            missed, extra = sorted(expected - got), sorted(got - expected)
            raise Mismatch(
                f"transport {label}: expected {sorted(expected) or 'no violation'}, got "
                f"{sorted(got) or 'no violation'}"
                + (f"; you missed {missed}" if missed else "")
                + (f"; wrongly reported {extra}" if extra else "")
                + "."
            )
    return len(_CASES)


register(
    Exercise(
        "constraint_violations",
        "which of the constraints (a)-(c) of section 3.1 a transport breaks",
        "02_special_cases.ipynb",
        _check_constraint_violations,
        solutions.constraint_violations,
        hints=(
            "evaluate the four coefficients on the grid and test each of the seven conditions separately.",
            "Section 3.1, constraints (a)-(c): the ends of alpha and gamma, their monotonicity (torch.diff), and D = alpha gamma_hat - alpha_hat gamma on the inner grid points.",
            "(a) alpha(0) = 0, alpha(1) = 1, alpha nondecreasing; (b) gamma(0) = 1, gamma(1) = 0, gamma nonincreasing; (c) D has no zero inside (0, 1): look for |D| <= tol or a change of sign on the inner grid points; compare with tol.",
        ),
        shortcuts=(
            "ucgm_lab.transports.transport:Transport.constraint_report",
            "ucgm_lab.transports.transport:Transport._validate",
            "ucgm_lab.symbolic.special_cases:check_constraints",
        ),
    )
)


def check_constraint_violations(answer):
    """Check ``answer(alpha, gamma, alpha_hat, gamma_hat, grid, tol=1e-6) -> set of names``."""
    return check("constraint_violations", answer)


# ---------------------------------------------------------------------- epsilon adapter
def _check_epsilon_to_velocity(answer) -> int:
    g = torch.Generator().manual_seed(7)
    cases = 0
    for time in (0.1, 0.4, 0.75, 0.95):
        x = torch.randn(6, 2, generator=g, dtype=torch.float64)
        z = torch.randn(6, 2, generator=g, dtype=torch.float64)
        x_t = time * z + (1 - time) * x
        # an exact epsilon model returns z; the Linear transport's target is then z - x
        compare(answer(z, x_t, time), z - x, f"exact epsilon at t = {time}")
        # an inexact one: F must still decode (by eq. 2 for Linear) to the model's own z
        eps = z + 0.3 * torch.randn(6, 2, generator=g, dtype=torch.float64)
        x_hat = (x_t - time * eps) / (1 - time)
        compare(answer(eps, x_t, time), eps - x_hat, f"imperfect epsilon at t = {time}")
        cases += 2
    return cases


register(
    Exercise(
        "epsilon_to_velocity",
        "adapter: a noise (epsilon) prediction as the Linear transport's output F",
        "02_special_cases.ipynb",
        _check_epsilon_to_velocity,
        solutions.epsilon_to_velocity,
        hints=(
            "an epsilon model predicts the noise z; recover the data estimate, then form the Linear target.",
            "Invert x_t = t z + (1 - t) x for x given z = eps; the Linear transport's target is alpha_hat z + gamma_hat x with alpha_hat = 1, gamma_hat = -1.",
            "x_hat = (x_t - t * eps) / (1 - t); F = eps - x_hat.",
        ),
        shortcuts=(
            "ucgm_lab.transports.transport:Transport.predict_x",
            "ucgm_lab.transports.transport:Transport.predict_z",
            "ucgm_lab.transports.transport:Transport.target",
        ),
    )
)


def check_epsilon_to_velocity(answer):
    """Check ``answer(eps, x_t, t) -> F`` for the Linear transport."""
    return check("epsilon_to_velocity", answer)
