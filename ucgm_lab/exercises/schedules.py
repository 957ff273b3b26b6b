"""Exercises of notebook 04: the Kumaraswamy sampling grid and the mode of the Beta time density."""

from __future__ import annotations

from ..schedules import KumaraswamySchedule
from . import solutions
from .core import Exercise, check, compare, register

__all__ = ["check_beta_mode", "check_kumaraswamy_grid"]


def _check_kumaraswamy_grid(answer) -> int:
    cases = 0
    for a, b, c in ((1.0, 1.0, 1.0), (1.17, 0.8, 1.1), (2.0, 0.5, 1.5)):
        for steps, gaps in ((4, (0.001, 0.001)), (7, (0.01, 0.05)), (1, (0.001, 0.3))):
            expected = KumaraswamySchedule(a, b, c, *gaps).time_points(steps)
            got = answer(steps, a, b, c, *gaps)
            compare(
                got,
                expected,
                f"(a, b, c) = ({a}, {b}, {c}), steps = {steps}, (gap_noise, gap_data) = {gaps}",
                atol=1e-10,
            )
            cases += 1
    return cases


register(
    Exercise(
        "kumaraswamy_grid",
        "the UCGM-S time grid: flipped Kumaraswamy transform of a uniform grid, t = 0 appended",
        "04_schedules.ipynb",
        _check_kumaraswamy_grid,
        solutions.kumaraswamy_grid,
        hints=(
            "warp an even grid of u with a three-parameter increasing map of [0, 1], then run it from noise to data.",
            "App. B.2.2: u_i evenly spaced in [gap_noise, 1 - gap_data]; the Kumaraswamy transform k(u; a, b, c); the sampler's times t = 1 - k(u) and a final t_N = 0.",
            "u = linspace(gap_noise, 1 - gap_data, steps); k(u) = (1 - (1 - u^a)^b)^c; t = cat([1 - k(u), [0]]) (steps + 1 values, float64).",
        ),
        shortcuts=(
            "ucgm_lab.schedules:KumaraswamySchedule.time_points",
            "ucgm_lab.schedules:kumaraswamy",
            "ucgm_lab.schedules:explicit_time_points",
            "ucgm_lab.sampler_grid:time_grid",
        ),
    )
)


def check_kumaraswamy_grid(answer):
    """Check ``answer(steps, a, b, c, gap_noise=0.001, gap_data=0.001) -> times (steps + 1,)``."""
    return check("kumaraswamy_grid", answer)


def _check_beta_mode(answer) -> int:
    cases = 0
    for t1, t2 in ((2.0, 2.0), (2.4, 2.4), (3.0, 1.5), (1.5, 4.0), (10.0, 2.0)):
        got = answer(t1, t2)
        expected = (t1 - 1) / (t1 + t2 - 2)
        compare(got, expected, f"Beta({t1}, {t2})", atol=1e-10)
        cases += 1
    return cases


register(
    Exercise(
        "beta_mode",
        "the mode of the Beta(theta1, theta2) time density (theta1, theta2 > 1)",
        "04_schedules.ipynb",
        _check_beta_mode,
        solutions.beta_mode,
        hints=(
            "the mode is where the density peaks: where the derivative of its logarithm vanishes.",
            "log p(t) = (theta1 - 1) log t + (theta2 - 1) log(1 - t) + const (App. B.2.1); differentiate in t and solve for zero.",
            "mode = (theta1 - 1) / (theta1 + theta2 - 2) (not the mean theta1 / (theta1 + theta2)).",
        ),
        shortcuts=("ucgm_lab.symbolic.schedules:beta_mode",),
    )
)


def check_beta_mode(answer):
    """Check ``answer(theta1, theta2) -> mode``."""
    return check("beta_mode", answer)
