"""UCGM-S's line-level step formulas (Alg. 2).

Extrapolation (line 5), the multistep estimates of docs/paper-notes.md F7, the stochastic
ratio, reconstruction (line 8) and the order-2 correction (lines 9-12).

Split out of :mod:`ucgm_lab.sampler`, which re-exports every name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from .sampler_grid import _check_divisor
from .transports import Decomposition, Transport

__all__ = [
    "MULTISTEP_FORMS",
    "adams_bashforth_weight",
    "auto_stochastic_ratio",
    "extrapolate",
    "form_variable",
    "multistep_estimates",
    "reconstruct",
    "second_order_correction",
    "transport_rates",
]


# ---------------------------------------------------------------------- line-level pieces
def extrapolate(current: Tensor, previous: Tensor, kappa: float) -> Tensor:
    """Extrapolated estimate e_i + kappa (e_i - e_{i-1}) (Alg. 2 line 5)."""
    return current + kappa * (current - previous)


def adams_bashforth_weight(s_prev: float, s_now: float, s_next: float) -> float:
    """kappa_i = h_i / (2 h_{i-1}) with h_i = s_{i+1} - s_i (0 when h_{i-1} is infinite).

    The weight that makes e_i + kappa_i (e_i - e_{i-1}) the mean over [s_i, s_{i+1}] of the line
    through (s_{i-1}, e_{i-1}) and (s_i, e_i): the two-step Adams-Bashforth rule with variable
    steps.
    """
    h_prev, h_now = s_now - s_prev, s_next - s_now
    return 0.0 if math.isinf(h_prev) else h_now / (2.0 * h_prev)


MULTISTEP_FORMS = ("velocity", "noise", "data")
"""Forms of :func:`multistep_estimates` (the ``multistep`` argument of :func:`sample`)."""


def form_variable(
    form: Literal["velocity", "noise", "data"], row: Sequence[float], t: float
) -> tuple[float, float]:
    """(s, scale) of a multistep form at one time: the state is y = x / scale, integrated in s.

    The one place where a form's time variable is computed, for the Adams-Bashforth weight of
    :func:`multistep_estimates` and the Adams-Moulton corrector
    (:mod:`ucgm_lab.sampler_corrector`).

    Args:
        form: "velocity" (s = t, scale 1), "noise" (s = alpha / gamma, scale gamma) or "data"
            (s = gamma / alpha, scale alpha).
        row: (alpha, gamma, ...) at t.
        t: The time.

    Returns:
        (s, scale); s is infinite where scale is 0.
    """
    if form == "velocity":
        return t, 1.0
    num, den = (row[0], row[1]) if form == "noise" else (row[1], row[0])
    return (math.inf if den == 0.0 else num / den), den


def multistep_estimates(
    form: Literal["velocity", "noise", "data"],
    state: Tensor,
    raw: Decomposition,
    previous: Decomposition,
    rows: tuple[Sequence[float], Sequence[float], Sequence[float]],
    times: tuple[float, float, float],
    rates: tuple[Sequence[float], Sequence[float]] | None = None,
    *,
    values: tuple[Tensor, Tensor] | None = None,
) -> Decomposition:
    """Estimates whose reconstruction (Alg. 2 line 8) is a two-step Adams-Bashforth step.

    Alg. 2's kappa extrapolates both estimates by a constant and stays first order
    (docs/paper-notes.md E6). Here one quantity e, whose integral over a time variable s gives
    the state, is extrapolated with the step-size weight kappa_i = h_i / (2 h_{i-1}) of
    :func:`adams_bashforth_weight`, and the estimates are made consistent with the current
    state x~_i again, so that the reconstruction alpha(t') z^' + gamma(t') x^' integrates the
    line through e_{i-1}, e_i over [s_i, s_{i+1}] exactly:

    * ``"velocity"``: e = v = alpha'(t) z^ + gamma'(t) x^ (the PF-ODE dx/dt = v; on Linear
      v = F), s = t: the target x_T = x~_i + h_i (v_i + kappa_i (v_i - v_{i-1})) and (x^', z^')
      the solution of alpha_i z^' + gamma_i x^' = x~_i, alpha(t') z^' + gamma(t') x^' = x_T
      (determinant alpha_i gamma(t') - gamma_i alpha(t') > 0 for a transport whose
      signal-to-noise ratio falls with t).
    * ``"noise"``: e = z^, s = alpha / gamma (the PF-ODE reads d(x / gamma) / ds = z^);
      x^' = (x~_i - alpha_i z^') / gamma_i.
    * ``"data"``: e = x^, s = gamma / alpha (d(x / alpha) / ds = x^); z^' = (x~_i - gamma_i
      x^') / alpha_i. Its s is infinite at t = 0, where the noise form is used instead; it
      divides by alpha_i, which is ill-conditioned for grid points near t = 0.

    All three are second order (tests/ucgm_lab/test_sampler.py) at one evaluation per step;
    docs/paper-notes.md F7 and notebook 20 derive them.

    Args:
        form: "velocity", "noise" or "data".
        state: x~_i, shape (B, ...).
        raw: The estimates at t_i (Alg. 2 line 3), shapes (B, ...).
        previous: The raw estimates at t_{i-1}.
        rows: (alpha, gamma, ...) at t_{i-1}, t_i and t_{i+1} (the first two entries are used).
        times: (t_{i-1}, t_i, t_{i+1}).
        rates: (alpha'(t), gamma'(t)) at t_{i-1} and t_i (needed by "velocity").
        values: The velocities (v_{i-1}, v_i) if already computed ("velocity" only; the same
            expression alpha' z^ + gamma' x^, so the result does not change): a sampler that
            keeps each evaluation's v computes it once instead of at every use.

    Returns:
        The estimates (x^', z^') to reconstruct the state at t_{i+1} from; with rho = 0 the
        reconstruction is the Adams-Bashforth step. Equal to ``raw`` when e_i = e_{i-1}.
    """
    if form == "data" and rows[2][0] == 0.0:
        form = "noise"  # s = gamma / alpha is infinite at the data end
    if form == "velocity" and values is None and rates is None:
        raise ValueError("multistep='velocity' needs the rates alpha'(t), gamma'(t).")
    alpha, gamma = rows[1][0], rows[1][1]
    # the two-step Adams-Bashforth weight in the form's time variable s (s = t for "velocity")
    kappa = adams_bashforth_weight(*(form_variable(form, rows[k], times[k])[0] for k in range(3)))
    if form == "velocity":
        if values is not None:
            v_prev, v_now = values
        else:
            assert rates is not None
            (ad_prev, gd_prev), (ad_now, gd_now) = rates
            v_now = ad_now * raw.z_hat + gd_now * raw.x_hat
            v_prev = ad_prev * previous.z_hat + gd_prev * previous.x_hat
        target = state + (times[2] - times[1]) * extrapolate(v_now, v_prev, kappa)
        a_next, g_next = rows[2][0], rows[2][1]
        det = alpha * g_next - gamma * a_next
        return Decomposition(
            x_hat=(alpha * target - a_next * state) / det,
            z_hat=(g_next * state - gamma * target) / det,
        )
    if form == "noise":
        z_hat = extrapolate(raw.z_hat, previous.z_hat, kappa)
        return Decomposition(x_hat=(state - alpha * z_hat) / gamma, z_hat=z_hat)
    x_hat = extrapolate(raw.x_hat, previous.x_hat, kappa)
    return Decomposition(x_hat=x_hat, z_hat=(state - gamma * x_hat) / alpha)


def transport_rates(transport: Transport, times: Tensor) -> list[tuple[float, float]]:
    """(alpha'(t), gamma'(t)) at every time of a grid, by automatic differentiation.

    Args:
        transport: The transport.
        times: The grid, shape (P,), float64.

    Returns:
        One (alpha', gamma') pair per time.

    Works inside ``torch.no_grad()`` and ``torch.inference_mode()`` (and on times made there):
    the derivative is taken outside both.
    """
    with torch.inference_mode(False), torch.enable_grad():
        t = times.detach().to(torch.float64).clone().requires_grad_(True)
        (d_alpha,) = torch.autograd.grad(transport.alpha(t).sum(), t)
        (d_gamma,) = torch.autograd.grad(transport.gamma(t).sum(), t)
    return list(zip(d_alpha.tolist(), d_gamma.tolist(), strict=True))


def auto_stochastic_ratio(transport: Transport, t_now: Tensor, t_next: Tensor) -> Tensor:
    """The SDE-like stochastic ratio rho = clip(2 |t_i - t_{i+1}| alpha(t_i) / alpha(t_{i+1})^2, 0, 1).

    App. B.1.6 (Euler-Maruyama variance ratio, with g(t) = sqrt(2 alpha(t))); the main
    text's Alg. 2 line 7 divides by alpha(t_{i+1}) without the square (docs/paper-notes.md, E3).

    Args:
        transport: The transport.
        t_now: t_i, 0-d tensor.
        t_next: t_{i+1}, 0-d tensor.

    Returns:
        rho as a 0-d tensor in [0, 1] (1 where alpha(t_{i+1}) = 0).
    """
    a_now, a_next = transport.alpha(t_now), transport.alpha(t_next)
    rho = 2 * (t_now - t_next).abs() * a_now / (a_next * a_next)
    return torch.nan_to_num(rho, nan=1.0, posinf=1.0).clamp(0.0, 1.0)


def reconstruct(
    transport: Transport,
    est: Decomposition,
    t_next: Tensor,
    rho: Tensor | float,
    fresh_noise: Tensor | None,
) -> Tensor:
    """X' = alpha(t') (sqrt(1 - rho) z^ + sqrt(rho) eps) + gamma(t') x^ (Alg. 2 line 8)."""
    if not torch.is_tensor(t_next):
        t_next = torch.as_tensor(t_next, dtype=torch.get_default_dtype())
    if fresh_noise is None:
        noise_part = est.z_hat
    else:
        rho_t = torch.as_tensor(rho, dtype=est.z_hat.dtype, device=est.z_hat.device)
        noise_part = torch.sqrt(1 - rho_t) * est.z_hat + torch.sqrt(rho_t) * fresh_noise
    return transport.alpha(t_next) * noise_part + transport.gamma(t_next) * est.x_hat


def second_order_correction(
    transport: Transport,
    state: Tensor,
    t_now: Tensor,
    t_next: Tensor,
    est: Decomposition,
    est_next: Decomposition,
    form: Literal["noise", "data"] = "noise",
    *,
    _grid_checked: bool = False,
) -> Tensor:
    """Corrected next state of second-order UCGM-S (Alg. 2 lines 10-11).

    ``form="noise"`` is the paper's line 11 corrected as in docs/paper-notes.md E1 (average z^, not x^), as in
    the reference implementation: Heun's method for dy/ds = z^ with y = x~ / gamma and
    s = alpha / gamma,

        x' = x~ gamma(t') / gamma(t) + (alpha(t') - gamma(t') alpha(t) / gamma(t)) (z^ + z^') / 2.

    It divides by gamma(t), which is tiny near t = 1: with t_0 = 0.999 and few steps the first
    correction multiplies z^' - z^ by ~1/gamma(t_0) and the sample can explode.

    ``form="data"`` is the same trapezoid rule in the data-prediction variables y = x~ / alpha,
    s = gamma / alpha (averaging x^ with the matching alpha ratio; an addition of ucgm-lab):

        x' = x~ alpha(t') / alpha(t) + (gamma(t') - alpha(t') gamma(t) / alpha(t)) (x^ + x^') / 2,

    which is well conditioned near the noise end. Both reduce to the first-order update when
    the two estimates agree, and both are second order (tests/ucgm_lab/test_sampler.py).

    Args:
        transport: The transport.
        state: x~ at t_i, shape (B, ...).
        t_now, t_next: t_i and t_{i+1} (0-d tensors).
        est: The (extrapolated) estimates at t_i.
        est_next: The estimates at the predicted state at t_{i+1}.
        form: "noise" (the paper, default) or "data".

    Returns:
        The corrected state at t_{i+1}.

    Raises:
        ValueError: If the divisor (gamma(t_i) or alpha(t_i)) is below
            :func:`divisor_tolerance` of its dtype in magnitude (e.g. cos(pi/2) = 6e-17 in
            float64, -4.4e-8 in float32, for TrigFlow at t = 1). :func:`sample` checks its
            whole grid once before the first step (``_grid_checked=True`` skips it here).
    """
    c_now, c_next = transport.coefficients(t_now), transport.coefficients(t_next)
    noise_form = form == "noise"
    divisor = c_now.gamma if noise_form else c_now.alpha
    if not _grid_checked:
        dtype = divisor.dtype if torch.is_tensor(divisor) else torch.float64
        _check_divisor(float(divisor), dtype, float(t_now), transport, form)
    if noise_form:
        ratio = c_next.gamma / divisor
        mean_z = 0.5 * (est.z_hat + est_next.z_hat)
        return state * ratio + (c_next.alpha - ratio * c_now.alpha) * mean_z
    ratio = c_next.alpha / divisor
    mean_x = 0.5 * (est.x_hat + est_next.x_hat)
    return state * ratio + (c_next.gamma - ratio * c_now.gamma) * mean_x
