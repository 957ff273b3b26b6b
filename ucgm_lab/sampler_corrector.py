"""The Adams-Moulton corrector of UCGM-S's multistep forms (an addition of ucgm-lab).

:func:`ucgm_lab.sample` with ``multistep=`` (docs/paper-notes.md F7) predicts the state at
t_{i+1} by a two-step Adams-Bashforth step on one quantity e whose integral over a time
variable s gives the state:

* ``"velocity"``: y = x, s = t, e = v = alpha'(t) z^ + gamma'(t) x^;
* ``"noise"``: y = x / gamma, s = alpha / gamma, e = z^;
* ``"data"``: y = x / alpha, s = gamma / alpha, e = x^.

With ``corrector=True`` the evaluation at the predicted state x~_{i+1} (which the next step
makes anyway) also corrects that state: x~_{i+1} is replaced by the implicit Adams-Moulton
step from x~_i,

    y_{i+1} = y_i + h_i (w_{i-1} e_{i-1} + w_i e_i + w_{i+1} e_{i+1}),   h_i = s_{i+1} - s_i,

the integral over [s_i, s_{i+1}] of the parabola through (s_{i-1}, e_{i-1}), (s_i, e_i),
(s_{i+1}, e_{i+1}) (:func:`adams_moulton_weights`; the trapezoid on e_i, e_{i+1} at the first
corrected step, where no e_{i-1} exists). The noise form skips that first correction: its
s = alpha / gamma falls from about 1000 (t_0 = 0.999) to a few units over the first step, z^
changes mostly near the small end, and the trapezoid's half weight there put the corrected state
far off (exact Gaussian model, Linear, 4 steps: mean error 23 against 0.26 uncorrected; 0.21
with the first correction skipped, tests/ucgm_lab/test_sampler_corrector.py). The velocity and
data forms keep it (their first step is short in s). The sampler then goes on from the corrected state
with the same e_{i+1} (predict-evaluate-correct, "PEC": no second evaluation). This is the
idea of UniPC's corrector UniC (Zhao et al. 2023) in UCGM-S's variables; it raises the order of
the two-step Adams-Bashforth predictor from 2 to 3 at the same number of evaluations
(tests/ucgm_lab/test_sampler_corrector.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from torch import Tensor

from .sampler_steps import form_variable
from .transports import Decomposition

__all__ = [
    "adams_moulton_weights",
    "check_corrector",
    "correct_step",
    "corrected_state",
    "form_value",
    "form_variable",
]


def adams_moulton_weights(
    s_prev: float | None, s_now: float, s_next: float
) -> tuple[float, float, float]:
    """Weights (w_{i-1}, w_i, w_{i+1}) of the variable-step three-point Adams-Moulton rule.

    The integral over [s_i, s_{i+1}] of the parabola through (s_{i-1}, e_{i-1}), (s_i, e_i),
    (s_{i+1}, e_{i+1}) is h (w_{i-1} e_{i-1} + w_i e_i + w_{i+1} e_{i+1}) with h = s_{i+1} - s_i,
    g = s_i - s_{i-1}:

        w_{i-1} = -h^2 / (6 g (g + h)),  w_i = (h + 3 g) / (6 g),  w_{i+1} = (2 h + 3 g) / (6 (g + h))

    (-1/12, 8/12, 5/12 on equal steps). Without a previous point (``s_prev`` None) or with
    g infinite (s_{i-1} at an end where s is infinite) it is the trapezoid (0, 1/2, 1/2), the
    limit g -> infinity.

    Args:
        s_prev: s_{i-1}, or None for the trapezoid.
        s_now: s_i (finite).
        s_next: s_{i+1} (finite).

    Returns:
        (w_{i-1}, w_i, w_{i+1}), summing to 1.
    """
    if s_prev is None or math.isinf(s_prev):
        return 0.0, 0.5, 0.5
    g, h = s_now - s_prev, s_next - s_now
    w_prev = -h * h / (6.0 * g * (g + h))
    w_next = (2.0 * h + 3.0 * g) / (6.0 * (g + h))
    return w_prev, 1.0 - w_prev - w_next, w_next


def form_value(
    form: Literal["velocity", "noise", "data"],
    est: Decomposition,
    rate: tuple[float, float] | None = None,
) -> Tensor:
    """The quantity e = dy/ds of a form from one evaluation's estimates, shape (B, ...).

    Args:
        form: "velocity" (v = alpha' z^ + gamma' x^), "noise" (z^) or "data" (x^).
        est: The raw estimates of one evaluation (Alg. 2 line 3).
        rate: (alpha'(t), gamma'(t)) at its time (needed by "velocity").
    """
    if form == "velocity":
        if rate is None:
            raise ValueError("The velocity form needs the rates alpha'(t), gamma'(t).")
        return rate[0] * est.z_hat + rate[1] * est.x_hat
    return est.z_hat if form == "noise" else est.x_hat


def corrected_state(
    form: Literal["velocity", "noise", "data"],
    state_prev: Tensor,
    estimates: tuple[Decomposition | None, Decomposition, Decomposition],
    rows: tuple[Sequence[float] | None, Sequence[float], Sequence[float]],
    times: tuple[float | None, float, float],
    rates: tuple[tuple[float, float] | None, ...] | None = None,
    *,
    values: Sequence[Tensor | None] | None = None,
) -> Tensor | None:
    """The Adams-Moulton corrected state x~_{i+1} (module docstring), or None where undefined.

    Args:
        form: The multistep form ("velocity", "noise" or "data").
        state_prev: x~_i, the (corrected) state the step to t_{i+1} started from, shape (B, ...).
        estimates: The raw estimates at t_{i-1} (None: the trapezoid), t_i and t_{i+1}
            (the last one evaluated at the predicted state).
        rows: (alpha, gamma, ...) at t_{i-1} (or None), t_i, t_{i+1}.
        times: (t_{i-1} or None, t_i, t_{i+1}).
        rates: (alpha', gamma') at the same three times (needed by "velocity").
        values: The form's e at the same three times where already computed (None entries
            are computed from the estimates by :func:`form_value`, the same expression): a
            sampler that keeps each evaluation's velocity computes it once.

    Returns:
        The corrected state at t_{i+1}, shape (B, ...); None where the predicted state is kept:
        when s_i is infinite (the noise form started at gamma(t_i) = 0), and at the noise form's
        first corrected step (no e_{i-1}; see the module docstring).
    """
    first = estimates[0] is None or rows[0] is None or times[0] is None  # no e_{i-1}
    if first and form == "noise":
        return None
    rates = rates if rates is not None else (None, None, None)
    s_now, scale_now = form_variable(form, rows[1], times[1])
    s_next, scale_next = form_variable(form, rows[2], times[2])
    if math.isinf(s_now) or math.isinf(s_next):
        return None
    s_prev = None if first else form_variable(form, rows[0], times[0])[0]  # type: ignore[arg-type]
    w_prev, w_now, w_next = adams_moulton_weights(s_prev, s_now, s_next)
    h = s_next - s_now
    known = values if values is not None else (None, None, None)

    def e(k: int) -> Tensor:
        if known[k] is not None:
            return known[k]  # type: ignore[return-value]
        return form_value(form, estimates[k], rates[k])  # type: ignore[arg-type]

    increment = w_now * e(1) + w_next * e(2)
    if w_prev != 0.0:
        increment = increment + w_prev * e(0)
    y_prev = state_prev if scale_now == 1.0 else state_prev / scale_now
    y_next = y_prev + h * increment
    return y_next if scale_next == 1.0 else scale_next * y_next


def check_corrector(corrector: object, multistep: str | None, rho_mode: float | None) -> None:
    """Refuse a corrector that is not a bool or lacks its multistep form and rho = 0."""
    if not isinstance(corrector, bool):
        raise TypeError(f"corrector must be True or False, got {corrector!r}.")
    if corrector and multistep is None:
        raise ValueError(
            "corrector=True corrects the Adams-Bashforth step of a multistep form: use it with "
            "multistep='velocity', 'noise' or 'data' (got multistep=None)."
        )
    if corrector and rho_mode != 0.0:
        raise ValueError(
            "corrector=True integrates the deterministic probability-flow ODE: use it with "
            f"rho=0 (got rho={'auto' if rho_mode is None else rho_mode})."
        )


def correct_step(
    form: str | None,
    state: Tensor,
    state_before: Tensor | None,
    estimates: tuple[Decomposition | None, Decomposition | None, Decomposition],
    i: int,
    coef_rows: Sequence[Sequence[float]],
    time_list: Sequence[float],
    rates: Sequence[tuple[float, float]] | None,
    values: Sequence[Tensor | None] | None = None,
) -> Tensor:
    """The corrected state x~_i of :func:`ucgm_lab.sample`'s step i (:func:`corrected_state`).

    Args:
        form: The multistep form.
        state: The predicted x~_i, shape (B, ...).
        state_before: x~_{i-1}, the (corrected) state the step to t_i started from.
        estimates: The raw estimates at t_{i-2} (None at the first corrected step: the
            trapezoid), t_{i-1} and t_i.
        i: The step index (>= 1).
        coef_rows: (alpha, gamma, alpha_hat, gamma_hat, D) at every grid time.
        time_list: The grid times.
        rates: (alpha', gamma') at every grid time (the velocity form), or None.
        values: The form's e at t_{i-2}, t_{i-1}, t_i where already computed (or None).

    Returns:
        The corrected x~_i, or ``state`` where the correction is undefined.
    """
    assert form is not None and state_before is not None and estimates[1] is not None
    # t_{i-2}, t_{i-1}, t_i; without e_{i-2} (the first corrected step) the trapezoid
    trio = [None if estimates[0] is None else i - 2, i - 1, i]

    def pick(table: Sequence) -> tuple:
        return tuple(None if k is None else table[k] for k in trio)

    corrected = corrected_state(
        form,  # type: ignore[arg-type]
        state_before,
        estimates,
        pick(coef_rows),  # type: ignore[arg-type]
        pick(time_list),  # type: ignore[arg-type]
        None if rates is None else pick(rates),
        values=values,
    )
    return state if corrected is None else corrected
