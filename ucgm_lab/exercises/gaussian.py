"""Exercises of notebook 05: the optima of App. B.1.5 for Gaussian data under TrigFlow."""

from __future__ import annotations

import math

import torch

from . import solutions
from .core import Exercise, check, compare, register

__all__ = ["check_consistency_optimum", "check_flow_matching_optimum"]

_CASES = ((1.5, 0.2), (1.5, 0.6), (-0.7, 0.4), (3.0, 0.9))


def _grid() -> torch.Tensor:
    return torch.linspace(-3, 5, 9, dtype=torch.float64)


def _run(answer, formula, label: str) -> int:
    for mu, t in _CASES:
        x_t = _grid()
        got = answer(mu, t, x_t)
        gamma = math.cos(math.pi * t / 2)
        compare(
            got,
            formula(mu, gamma, x_t),
            f"{label}, mu = {mu}, t = {t}, x_t = -3..5",
        )
    return len(_CASES)


def _check_flow_matching_optimum(answer) -> int:
    return _run(answer, lambda mu, g, x_t: (1 - g * g) * mu + g * x_t, "E[x | x_t]")


def _check_consistency_optimum(answer) -> int:
    return _run(answer, lambda mu, g, x_t: x_t + (1 - g) * mu, "consistency optimum")


register(
    Exercise(
        "flow_matching_optimum",
        "the lambda = 0 optimum E[x | x_t] for x ~ N(mu, 1) under TrigFlow",
        "05_gaussian_optimum.ipynb",
        _check_flow_matching_optimum,
        solutions.flow_matching_optimum,
        hints=(
            "at lambda = 0 the best prediction of x from x_t is the posterior mean; x and x_t are jointly Gaussian.",
            "Gaussian conditioning: E[x | x_t] = E[x] + Cov(x, x_t) / Var(x_t) (x_t - E[x_t]); for TrigFlow x_t = sin(pi t/2) z + cos(pi t/2) x.",
            "gamma = cos(pi t / 2); E[x | x_t] = (1 - gamma^2) mu + gamma x_t.",
        ),
        shortcuts=(
            "ucgm_lab.symbolic.gaussian:gaussian_optima",
            "ucgm_lab.symbolic.gaussian:gaussian_posterior",
            "ucgm_lab.symbolic.gaussian:gaussian_optimal_network",
            "ucgm_lab.symbolic.gaussian:gaussian_model",
            "ucgm_lab.symbolic.gaussian:gaussian_flow_map",
            "ucgm_lab.symbolic.gaussian:interpolant_slope",
        ),
    )
)

register(
    Exercise(
        "consistency_optimum",
        "the lambda -> 1 optimum: the end point of the PF-ODE through x_t (x ~ N(mu, 1), TrigFlow)",
        "05_gaussian_optimum.ipynb",
        _check_consistency_optimum,
        solutions.consistency_optimum,
        hints=(
            "the PF-ODE velocity does not depend on x_t here, so the flow is a translation.",
            "Integrate the velocity v_* of the cell above from the angle phi = pi t / 2 back to 0; or: the map must send the mean gamma mu of x_t to mu with slope 1.",
            "f_CM(x_t) = x_t + (1 - cos(pi t / 2)) mu.",
        ),
        shortcuts=(
            "ucgm_lab.symbolic.gaussian:gaussian_optima",
            "ucgm_lab.symbolic.gaussian:gaussian_flow_map",
            "ucgm_lab.symbolic.gaussian:gaussian_model",
            "ucgm_lab.symbolic.gaussian:interpolant_slope",
        ),
    )
)


def check_flow_matching_optimum(answer):
    """Check ``answer(mu, t, x_t) -> E[x | x_t]`` (mu, t floats; x_t a tensor)."""
    return check("flow_matching_optimum", answer)


def check_consistency_optimum(answer):
    """Check ``answer(mu, t, x_t) -> f_CM(x_t)`` (mu, t floats; x_t a tensor)."""
    return check("consistency_optimum", answer)
