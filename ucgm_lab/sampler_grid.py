"""UCGM-S's time grid (Alg. 2 line 1) and the bounds it checks.

The step count, the grid of a schedule or of explicit time points, and the order-2
correction's divisor tolerance.

Split out of :mod:`ucgm_lab.sampler`, which re-exports every name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .schedules import KumaraswamySchedule, explicit_time_points, get_schedule
from .transports import Transport

__all__ = ["DIVISOR_TOLERANCE", "MAX_STEPS", "divisor_tolerance", "time_grid"]


MAX_STEPS = 100_000
"""Largest number of steps :func:`sample` accepts (every step's estimates are kept in memory)."""

DIVISOR_TOLERANCE = 1e-8
"""The order-2 correction refuses divisors gamma(t_i) (or alpha(t_i)) smaller than this in
float64; other dtypes scale it (:func:`divisor_tolerance`)."""


def divisor_tolerance(dtype: torch.dtype) -> float:
    """Smallest |gamma(t_i)| (or |alpha(t_i)|) the order-2 correction divides by in ``dtype``.

    The correction multiplies the state by gamma(t') / gamma(t) and subtracts two terms of
    that size, so its rounding error is about eps / |gamma(t)| (eps the dtype's machine
    epsilon): the divisor must be large enough that at most half the digits are lost,
    |gamma(t)| >= ~sqrt(eps). ``DIVISOR_TOLERANCE`` = 1e-8 is this bound in float64
    (sqrt(2.2e-16) = 1.5e-8); other dtypes scale it by sqrt(eps / eps_float64): 2.4e-4 in
    float32 (where cos(pi / 2) evaluates to -4.4e-8, not 6e-17), 2.1e-2 in float16.
    """
    ratio = torch.finfo(dtype).eps / torch.finfo(torch.float64).eps
    return DIVISOR_TOLERANCE * math.sqrt(ratio)


def _check_divisor(
    divisor: float, dtype: torch.dtype, t_now: float, transport: Transport, form: str
) -> None:
    """Raise the correction's one-line error if ``divisor`` is below the dtype's tolerance."""
    tolerance = divisor_tolerance(dtype)
    if abs(divisor) >= tolerance:
        return
    noise_form = form == "noise"
    name = "gamma" if noise_form else "alpha"
    raise ValueError(
        f"The {form}-form second-order correction divides by {name}(t_i) = {divisor:.3g} "
        f"(below {tolerance:.2g}, the tolerance in {str(dtype).replace('torch.', '')}) at "
        f"t_i = {t_now:g} for transport {transport.name!r}. "
        + (
            "Start the time grid slightly below 1 (a gap_noise > 0, or a first time point "
            "such as 0.999), or use correction='data'."
            if noise_form
            else "Use correction='noise'."
        )
    )


def time_grid(
    steps: int | None,
    order: int,
    schedule: KumaraswamySchedule | str,
    time_points: Sequence[float] | Tensor | None,
) -> Tensor:
    """The grid t_0 > t_1 > ... > t_P = 0 that :func:`sample` walks (Alg. 2 line 3).

    The one place where ``steps``, ``order``, ``schedule`` and ``time_points`` become times, so
    that the search and the zoo predict exactly the grid (and the NFE) :func:`sample` uses.

    Args:
        steps: Network evaluations requested (order 2: P = (steps + 1) // 2 points above 0), or
            None with explicit ``time_points``.
        order: 1 or 2.
        schedule: A :class:`KumaraswamySchedule` or a name of :data:`ucgm_lab.schedules.SCHEDULES`.
        time_points: Explicit decreasing times in (0, 1) (0 appended), or None.

    Returns:
        The grid, shape (P + 1,), float64, ending at 0 (``SampleOutput.times``).

    Raises:
        ValueError: Neither or disagreeing ``steps`` and ``time_points``, or a bad value.
        TypeError: ``schedule`` of another type.
    """
    grid, key = _time_grid(steps, order, schedule, time_points)
    return grid if key is None else grid.clone()


def _time_grid(
    steps: int | None,
    order: int,
    schedule: KumaraswamySchedule | str,
    time_points: Sequence[float] | Tensor | None,
) -> tuple[Tensor, tuple | None]:
    """:func:`time_grid` without the copy: (the grid, its key), read only.

    The key is (schedule, points) for a schedule's grid, which is then the cached tensor of
    :func:`_kumaraswamy_grid` (never modify it), and None for explicit time points (a new
    tensor). :func:`ucgm_lab.sample` only reads its grid, so it skips the copy, and keys its
    tables (:mod:`ucgm_lab.sampler_tables`) by the key: equal keys give equal grids.
    """
    if time_points is not None:
        grid = explicit_time_points(time_points)
        if steps is not None and steps != grid.numel() - 1:
            raise ValueError(
                f"steps={steps} disagrees with time_points ({grid.numel() - 1} points above 0); "
                "give one or the other."
            )
        return grid, None
    if steps is None:
        raise ValueError("Give steps (number of network evaluations) or explicit time_points.")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}.")
    if isinstance(schedule, str):
        try:
            schedule = get_schedule(schedule)
        except ValueError:
            raise ValueError(
                f"schedule must be 'uniform', 'even' (alias 'open'), 'auto' or a KumaraswamySchedule, got {schedule!r}."
            ) from None
    elif not isinstance(schedule, KumaraswamySchedule):
        raise TypeError(
            f"schedule must be 'uniform', 'even', 'auto' or a KumaraswamySchedule, got {type(schedule).__name__}."
        )
    points = (steps + 1) // 2 if order == 2 else steps
    return _kumaraswamy_grid(schedule, points), (schedule, points)


@functools.lru_cache(maxsize=512)
def _kumaraswamy_grid(schedule: KumaraswamySchedule, points: int) -> Tensor:
    """``schedule.time_points(points)``, computed once per (schedule, points).

    The schedule is a frozen dataclass of numbers, so equal schedules share one entry; the
    users get a copy (:func:`time_grid` clones it), never the cached tensor itself
    (:func:`ucgm_lab.sample` reads it without a copy). A
    sampler call or a search's grid fit then costs a copy instead of the Kumaraswamy formula.
    """
    return schedule.time_points(points)


def _unit_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")
    return float(value)
