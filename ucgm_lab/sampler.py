"""UCGM-S: the unified sampler (section 3.2, Alg. 2, App. B.1.6).

Each step decomposes the current state with one model evaluation (Alg. 2 line 3),
x~ = alpha(t_i) z^_i + gamma(t_i) x^_i, optionally extrapolates the estimates (line 5), and
reconstructs the state at the next time with optional fresh noise (line 8):

    x' = alpha(t_{i+1}) (sqrt(1 - rho) z^ + sqrt(rho) eps) + gamma(t_{i+1}) x^.

Order 2 adds a correction with a second evaluation at t_{i+1} (lines 9-12), averaging the
noise estimates z^ (docs/paper-notes.md, E1: the printed algorithm averages x^). With rho = 0,
kappa = 0 and order 1 on a flow-matching transport this is exactly the Euler method
(App. B.1.6).

``multistep="velocity"``, ``"noise"`` or ``"data"`` (an addition of ucgm-lab, docs/paper-notes.md
F7) replaces the constant kappa by the two-step Adams-Bashforth weight of the step sizes and
decomposes the state again, which makes order 1 second order at one evaluation per step
(:func:`multistep_estimates`). ``corrector=True`` adds to it the Adams-Moulton corrector of
:mod:`ucgm_lab.sampler_corrector` (third order, still one evaluation per step).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .model_api import (
    Model,
    call_model,
    check_batch,
    check_labels,
    check_model_takes_labels,
    model_dtype,
    resolve_null_class,
)
from .sampler_corrector import check_corrector, correct_step
from .schedules import KumaraswamySchedule, explicit_time_points, get_schedule
from .transports import Decomposition, Transport, get_transport

__all__ = [
    "MAX_STEPS",
    "NonFiniteSampleError",
    "SampleOutput",
    "MULTISTEP_FORMS",
    "adams_bashforth_weight",
    "auto_stochastic_ratio",
    "divisor_tolerance",
    "extrapolate",
    "multistep_estimates",
    "transport_rates",
    "reconstruct",
    "sample",
    "second_order_correction",
    "time_grid",
]


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


class NonFiniteSampleError(FloatingPointError):
    """The sampler's state went NaN or inf; the message names the step and the cause."""


@dataclass(frozen=True)
class SampleOutput:
    """Result of :func:`sample`.

    Attributes:
        sample: The generated data, shape (B, ...), in the noise tensor's dtype.
        x_hat: Per-step data estimates x^_i (Alg. 2 line 3, before extrapolation), shape
            (N, B, ...): the "history samples" that the notebooks draw (Fig. 2).
        z_hat: Per-step noise estimates z^_i, shape (N, B, ...).
        states: The states x~ at t_0, ..., t_{N-1} and the final sample, shape (N + 1, B, ...).
        times: The time grid t_0 > ... > t_N = 0, shape (N + 1,), float64.
        nfe: Number of network evaluations made (a guided evaluation counts 2).
    """

    sample: Tensor
    x_hat: Tensor
    z_hat: Tensor
    states: Tensor
    times: Tensor
    nfe: int


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


def multistep_estimates(
    form: Literal["velocity", "noise", "data"],
    state: Tensor,
    raw: Decomposition,
    previous: Decomposition,
    rows: tuple[Sequence[float], Sequence[float], Sequence[float]],
    times: tuple[float, float, float],
    rates: tuple[Sequence[float], Sequence[float]] | None = None,
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

    Returns:
        The estimates (x^', z^') to reconstruct the state at t_{i+1} from; with rho = 0 the
        reconstruction is the Adams-Bashforth step. Equal to ``raw`` when e_i = e_{i-1}.
    """
    if form == "data" and rows[2][0] == 0.0:
        form = "noise"  # s = gamma / alpha is infinite at the data end
    alpha, gamma = rows[1][0], rows[1][1]
    if form == "velocity":
        if rates is None:
            raise ValueError("multistep='velocity' needs the rates alpha'(t), gamma'(t).")
        kappa = adams_bashforth_weight(*times)
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

    def s(row: Sequence[float]) -> float:
        num, den = (row[0], row[1]) if form == "noise" else (row[1], row[0])
        return math.inf if den == 0.0 else num / den

    kappa = adams_bashforth_weight(s(rows[0]), s(rows[1]), s(rows[2]))
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
    """
    t = times.detach().to(torch.float64).clone().requires_grad_(True)
    with torch.enable_grad():
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


# ---------------------------------------------------------------------- the sampler
def sample(
    model: Model,
    noise: Tensor,
    transport: str | Transport,
    steps: int | None = None,
    *,
    order: Literal[1, 2] = 1,
    kappa: float = 0.0,
    rho: float | Literal["auto"] = 0.0,
    schedule: KumaraswamySchedule | Literal["uniform", "even", "auto"] = "even",
    time_points: Sequence[float] | Tensor | None = None,
    y: Tensor | None = None,
    guidance_scale: float = 1.0,
    guidance_interval: tuple[float, float] = (0.0, 1.0),
    guidance_interval_time: Literal["library", "network"] = "library",
    null_class: int | None = None,
    extrapolation_start: int = 1,
    correction: Literal["noise", "data"] = "noise",
    multistep: Literal["velocity", "noise", "data"] | None = None,
    corrector: bool = False,
    lower_order_final: bool = False,
    generator: torch.Generator | None = None,
    accumulate_float64: bool | None = None,
    progress: bool = False,
) -> SampleOutput:
    """Generate samples with UCGM-S (Alg. 2).

    Args:
        model: ``model(x_t, t, y=None) -> F`` (called without y when ``y`` is None).
        noise: The initial state x~ ~ N(0, I), shape (B, ...). Not modified.
        transport: The transport the model was trained with (a :class:`Transport` or a name).
        steps: N, the number of network evaluations for order 1. For order 2 the grid gets
            floor((N + 1) / 2) points (Alg. 2 line 1) so that NFE = 2 floor((N + 1) / 2) - 1
            stays comparable. Omit when ``time_points`` is given.
        order: 1 or 2 (second order averages z^, docs/paper-notes.md E1).
        kappa: Extrapolation ratio in [0, 1] (Alg. 2 line 5; the paper finds 0.2-0.6 good).
        rho: Stochastic ratio in [0, 1], or "auto" for the Euler-Maruyama ratio recomputed at
            every step (App. B.1.6). The paper recommends rho = lambda.
        schedule: Time grid: "even" (default: t_i = 1 - u_i with u evenly spaced from 0.001
            and no evaluation at the data end, so ``steps=2`` gives {0.999, 0.4995}; see
            :meth:`KumaraswamySchedule.even`), "uniform" (the reference implementation's grid,
            the identity with gaps 0.001 at both ends: its last evaluation sits at t = 0.001,
            so N evaluations make N - 1 useful steps and ``steps=2`` equals ``steps=1``),
            "auto" (the paper's (1.17, 0.8, 1.1)) or a :class:`KumaraswamySchedule`.
        time_points: Explicit decreasing times, e.g. ``[1.0, 0.3]`` for a 2-step model; 0 is
            appended. Overrides ``schedule``; the grid is used as given (no halving for order 2).
        y: Optional class ids, shape (B,).
        guidance_scale: Classifier-free guidance scale w (1 = no guidance):
            F = F(null) + w (F(y) - F(null)) for t_i inside ``guidance_interval``.
        guidance_interval: (lo, hi) of times where guidance applies.
        guidance_interval_time: "library" (default: ``guidance_interval`` is in library time,
            data at 0) or "network" (in the network's own time ``transport.model_time(t)``,
            as the reference implementation's ``cfg_interval``; for ReLinear the reference's
            [0.125, 1.0] is (0, 0.875) in library time). See docs/architecture.md.
        null_class: Class id of the unconditional model (default ``model.null_class``).
        extrapolation_start: First step index i that extrapolates (paper: 1; the reference: 2).
        correction: Form of the order-2 correction: "noise" (the paper's, averaging z^; unstable
            at few steps when gamma(t_0) is near 0) or "data" (averaging x^ in the data-prediction
            variables; well conditioned near t = 1). See :func:`second_order_correction`.
        multistep: None (default: Alg. 2) or "velocity" / "noise" / "data": from step
            ``extrapolation_start`` on, a two-step Adams-Bashforth step that reuses the previous
            evaluation (of the velocity dx/dt, z^ or x^; second order at one evaluation per step; order 1 and
            kappa = 0 only). See :func:`multistep_estimates`.
        corrector: With a ``multistep`` form and rho = 0 only: from step
            ``extrapolation_start`` on, the evaluation at the predicted state x~_i also
            corrects it (the three-point Adams-Moulton step from x~_{i-1} in the form's
            variables, the trapezoid where e_{i-2} is missing; then the sampler goes on from the
            corrected state with the same evaluation, as UniPC's corrector): third order at the
            same NFE. ``x_hat`` / ``z_hat`` stay the raw estimates of each evaluation and
            ``states`` holds the corrected states; the last step (to t_N = 0) is not corrected
            (no evaluation there). See :mod:`ucgm_lab.sampler_corrector`.
        lower_order_final: With ``multistep`` or kappa > 0 only: the last step (to t_N = 0)
            does not extrapolate, so the sample is the last evaluation's own data estimate
            x^_{N-1} (as diffusers' DPM-Solver++ and UniPC do below 15 steps,
            ``lower_order_final``; with the corrector, the correction of x~_{N-1} then does
            not change the sample, as in UniPC).
        generator: Torch generator for the fresh noise (on the noise tensor's device).
        accumulate_float64: Keep the state in float64 (default: yes except on MPS).
        progress: Show a tqdm progress bar.

    Dtypes: the network is called in its parameters' dtype (the model's dtype wins; a model
    without parameters gets the noise dtype); the state is kept in float64 (or the noise dtype)
    and the outputs are in the noise tensor's dtype.

    Returns:
        :class:`SampleOutput` with the final sample, the per-step estimates, the time grid
        and the number of function evaluations.

    Raises:
        NonFiniteSampleError: If the state becomes NaN or inf; the message names the step,
            its time and whether the network output or the update went non-finite (one
            reduction per step checks it; on the plain path, kappa = rho = 0 at order 1
            without guidance, one reduction after the loop names the same step).
    """
    check_batch(noise, "noise")
    batch = noise.shape[0]
    check_labels(y, batch, "y")
    check_model_takes_labels(model, y)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__} "
            "(e.g. torch.Generator().manual_seed(123), not 123)."
        )
    if null_class is not None and (
        isinstance(null_class, bool) or not isinstance(null_class, int) or null_class < 0
    ):
        raise TypeError(
            f"null_class must be a class id (an integer >= 0) or None, got {null_class!r}."
        )
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)):
        raise TypeError(
            f"guidance_scale must be a finite number (1 = no guidance), got {guidance_scale!r}."
        )
    if not math.isfinite(guidance_scale):
        raise ValueError(
            f"guidance_scale must be a finite number (1 = no guidance), got {guidance_scale}."
        )
    if guidance_interval_time not in ("library", "network"):
        raise ValueError(
            f"guidance_interval_time must be 'library' or 'network', got {guidance_interval_time!r}."
        )
    tr = get_transport(transport)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    if correction not in ("noise", "data"):
        raise ValueError(f"correction must be 'noise' (the paper's) or 'data', got {correction!r}.")
    if multistep is not None and multistep not in MULTISTEP_FORMS:
        raise ValueError(
            "multistep must be None (Alg. 2), 'velocity', 'noise' or 'data' (two-step "
            f"Adams-Bashforth), got {multistep!r}."
        )
    kappa = _unit_number(kappa, "kappa (extrapolation ratio)")
    if isinstance(rho, str):
        if rho.lower() != "auto":
            raise ValueError(f"rho must be a number in [0, 1] or 'auto', got {rho!r}.")
        rho_mode: float | None = None
    else:
        rho_mode = _unit_number(rho, "rho (stochastic ratio)")
    if multistep is not None and (order != 1 or kappa != 0.0):
        raise ValueError(
            f"multistep={multistep!r} replaces kappa and the order-2 correction: use it with "
            f"order=1 and kappa=0 (got order={order}, kappa={kappa})."
        )
    check_corrector(corrector, multistep, rho_mode)
    if not isinstance(lower_order_final, bool):
        raise TypeError(f"lower_order_final must be True or False, got {lower_order_final!r}.")
    if lower_order_final and multistep is None and kappa == 0.0:
        raise ValueError(
            "lower_order_final=True removes the extrapolation of the last step: use it with "
            "multistep='velocity', 'noise' or 'data', or kappa > 0 (got neither)."
        )
    if (
        isinstance(extrapolation_start, bool)
        or not isinstance(extrapolation_start, int)
        or extrapolation_start < 1
    ):
        raise ValueError(
            f"extrapolation_start must be an integer >= 1, got {extrapolation_start!r}."
        )
    if guidance_scale != 1.0:
        if y is None:
            raise ValueError("guidance_scale != 1 needs class labels y.")
        null_class = resolve_null_class(model, null_class)
        if null_class is None:
            raise ValueError(
                "Guidance needs the null class id: pass null_class=... or give the model `null_class`."
            )
    if (
        not isinstance(guidance_interval, (tuple, list))
        or len(guidance_interval) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in guidance_interval)
    ):
        raise TypeError(
            f"guidance_interval must be a pair of numbers (lo, hi), got {guidance_interval!r}."
        )
    g_lo, g_hi = guidance_interval
    if not 0 <= g_lo <= g_hi <= 1:
        raise ValueError(
            f"guidance_interval must satisfy 0 <= lo <= hi <= 1, got {guidance_interval}."
        )

    times = time_grid(steps, order, schedule, time_points)
    num_points = times.numel() - 1
    if (kappa > 0 or multistep is not None) and 1 < extrapolation_start >= num_points:
        # steps i = 0 .. num_points - 1; the default 1 stays accepted on a one-step grid
        used = f"kappa={kappa}" if multistep is None else f"multistep={multistep!r}"
        raise ValueError(
            f"extrapolation_start={extrapolation_start} is beyond the last step of this "
            f"{num_points}-step grid (steps 0..{num_points - 1}), so {used} would never be "
            f"applied: use extrapolation_start <= {max(num_points - 1, 1)}, or kappa=0."
        )
    if accumulate_float64 is None:
        accumulate_float64 = noise.device.type != "mps"
    state_dtype = torch.float64 if accumulate_float64 else noise.dtype
    net_dtype = model_dtype(model, noise.dtype)
    times = times.to(device=noise.device, dtype=state_dtype)
    batch_ones = torch.ones(batch, device=noise.device, dtype=net_dtype)
    y_pair = None
    if guidance_scale != 1.0:
        y_pair = torch.cat([y, torch.full_like(y, null_class)])

    # Per-grid tables, made once instead of at every step: the coefficients at every t_i as
    # Python numbers (alpha, gamma, alpha_hat, gamma_hat, D; exact in the state dtype) and the
    # network's time input for every step (mapped in the state dtype, then cast).
    grid = tr.coefficients(times)
    coef_rows = torch.stack(
        torch.broadcast_tensors(
            *(
                torch.as_tensor(c, dtype=state_dtype, device=times.device)
                for c in (grid.alpha, grid.gamma, grid.alpha_hat, grid.gamma_hat, grid.D)
            ),
            times,
        )[:5],
        dim=1,
    ).tolist()
    if order == 2:  # the correction's divisors at t_0 .. t_{N-2}, once, before any step
        column = 1 if correction == "noise" else 0
        for i, t_i in enumerate(times[:-2].tolist()):
            _check_divisor(coef_rows[i][column], state_dtype, t_i, tr, correction)
    network_times = tr.model_time(times)  # map in the state dtype, then cast
    # one (B,) row per step, as views made once (indexing a tuple costs no tensor operation)
    t_net_rows = (network_times.to(net_dtype)[:, None] * batch_ones).unbind(0)
    # the times that guidance_interval is compared with (library or network time)
    guidance_times = (network_times if guidance_interval_time == "network" else times).tolist()
    # a constant rho: the weights sqrt(1 - rho), sqrt(rho) of Alg. 2 line 8, once
    rho_weights = None if rho_mode is None else (math.sqrt(1 - rho_mode), math.sqrt(rho_mode))
    nfe = 0

    def network(state: Tensor, i: int, out: Tensor | None = None) -> Tensor:
        """One model evaluation at t_i: F in the state dtype (Alg. 2 line 3, with guidance).

        With ``out`` (shape (B, ...), the state dtype) F is written into it and ``out`` returned.
        """
        nonlocal nfe
        x_in = state.to(net_dtype)
        t_net = t_net_rows[i]
        guided = guidance_scale != 1.0 and g_lo <= guidance_times[i] <= g_hi
        if guided:
            F_pair = call_model(model, torch.cat([x_in, x_in]), torch.cat([t_net, t_net]), y_pair)
            last_output[0] = F_pair
            F_cond, F_null = F_pair.to(state_dtype).chunk(2)
            F = F_null + guidance_scale * (F_cond - F_null)
            if out is not None:
                F = out.copy_(F)
            nfe += 2
        else:
            F = call_model(model, x_in, t_net, y)
            last_output[0] = F
            F = F.to(state_dtype) if out is None else out.copy_(F)
            nfe += 1
        last_output[1] = F
        return F

    def decompose(F: Tensor, state: Tensor, i: int) -> Decomposition:
        """Transport.decompose (eq. 2) with the tabulated coefficients at t_i."""
        a, g, a_hat, g_hat, d = coef_rows[i]
        return Decomposition(
            x_hat=_combine(a, F, a_hat, state, d), z_hat=_combine(g_hat, state, g, F, d)
        )

    def evaluate(state: Tensor, i: int) -> Decomposition:
        """One model evaluation at t_i and its decomposition (Alg. 2 line 3, eq. 2)."""
        return decompose(network(state, i), state, i)

    last_output: list[Tensor | None] = [None, None]  # (network output, F used), for diagnosis

    state = noise.to(state_dtype)
    states, x_hats, z_hats = [state], [], []
    previous: Decomposition | None = None
    # the corrector's history: the raw estimates at t_{i-2} and the state x~_{i-1}
    before_previous: Decomposition | None = None
    state_before: Tensor | None = None
    time_list = times.tolist()
    rates = transport_rates(tr, times) if multistep == "velocity" else None
    # no tqdm object at all without a progress bar (building one costs more than a small step)
    bar = tqdm(range(num_points), desc="UCGM-S", leave=False) if progress else None
    steps_iter = bar if bar is not None else range(num_points)
    if order == 1 and multistep is None and kappa == 0.0 and rho_mode == 0.0:
        state, states_all, x_hat_all, z_hat_all = _plain_loop(
            state,
            num_points,
            steps_iter,
            network,
            decompose,
            coef_rows,
            time_list,
            last_output,
            guided=guidance_scale != 1.0,
        )
    else:
        with torch.no_grad():
            for i in steps_iter:
                raw = evaluate(state, i)
                x_hats.append(raw.x_hat)
                z_hats.append(raw.z_hat)
                if corrector and previous is not None and i >= extrapolation_start:
                    state = correct_step(
                        multistep, state, state_before, (before_previous, previous, raw),
                        i, coef_rows, time_list, rates,
                    )  # fmt: skip
                    states[-1] = state
                est = raw
                extrapolating = (
                    previous is not None
                    and i >= extrapolation_start
                    and not (lower_order_final and i == num_points - 1)
                )
                if multistep is not None and extrapolating:
                    est = multistep_estimates(
                        multistep,
                        state,
                        raw,
                        previous,
                        (coef_rows[i - 1], coef_rows[i], coef_rows[i + 1]),
                        (time_list[i - 1], time_list[i], time_list[i + 1]),
                        None if rates is None else (rates[i - 1], rates[i]),
                    )
                elif kappa > 0 and extrapolating:
                    est = Decomposition(
                        x_hat=extrapolate(raw.x_hat, previous.x_hat, kappa),
                        z_hat=extrapolate(raw.z_hat, previous.z_hat, kappa),
                    )
                before_previous, previous, state_before = previous, raw, state
                if i == num_points - 1:
                    # t_N = 0: the reconstruction alpha(0) z^ + gamma(0) x^ is x^ for transports with
                    # alpha(0) = 0, gamma(0) = 1; we return x^ for all (EDM has gamma(0) ~ 2).
                    state = est.x_hat
                    states.append(state)
                    break
                # Alg. 2 line 8 (as `reconstruct`, with the tabulated alpha, gamma at t_{i+1})
                noise_part = est.z_hat
                if rho_mode is None or rho_mode > 0:
                    fresh = torch.randn(
                        state.shape, generator=generator, device=state.device, dtype=state_dtype
                    )
                    if rho_weights is None:
                        rho_t = auto_stochastic_ratio(tr, times[i], times[i + 1]).to(state_dtype)
                        keep, mix = torch.sqrt(1 - rho_t), torch.sqrt(rho_t)
                    else:
                        keep, mix = rho_weights
                    noise_part = keep * est.z_hat + mix * fresh
                a_next, g_next = coef_rows[i + 1][:2]
                nxt = a_next * noise_part + g_next * est.x_hat
                if order == 2:
                    corr = evaluate(nxt, i + 1)
                    nxt = second_order_correction(
                        tr, state, times[i], times[i + 1], est, corr, correction, _grid_checked=True
                    )
                state = nxt
                if not _all_finite(state):  # the one reduction per step
                    _raise_non_finite(i, time_list[i], time_list[i + 1], last_output, raw)
                states.append(state)
        if not _all_finite(state):
            _raise_non_finite(num_points - 1, time_list[-2], 0.0, last_output, raw)
        x_hat_all, z_hat_all = torch.stack(x_hats), torch.stack(z_hats)
        states_all = torch.stack(states)
    if bar is not None:
        bar.close()
    return SampleOutput(
        sample=state.to(noise.dtype),
        x_hat=x_hat_all.to(noise.dtype),
        z_hat=z_hat_all.to(noise.dtype),
        states=states_all.to(noise.dtype),
        times=times.to(torch.float64).cpu(),
        nfe=nfe,
    )


def _plain_loop(
    state: Tensor,
    num_points: int,
    steps_iter: Iterable[int],
    network: Callable[..., Tensor],
    decompose: Callable[[Tensor, Tensor, int], Decomposition],
    coef_rows: list[list[float]],
    time_list: list[float],
    last_output: list[Tensor | None],
    guided: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Alg. 2 at order 1 with kappa = rho = 0: one evaluation and one update per step.

    Without extrapolation and fresh noise the reconstruction (line 8) of the decomposition
    (eq. 2) is linear in the state and the network output,

        x' = alpha' z^ + gamma' x^ = c_x x~ + c_F F,
        c_x = (alpha' gamma_hat - gamma' alpha_hat) / D,  c_F = (gamma' alpha - alpha' gamma) / D,

    (primes at t_{i+1}, the rest at t_i), so each step costs what a bare Euler loop costs (on
    Linear c_x = 1 and c_F = t_{i+1} - t_i: the Euler step). The estimates x^_i, z^_i of every
    step are then computed after the loop in one vectorised call over the (N, B, ...) stacks,
    with the same expression and coefficients as the per-step decomposition (bit-identical to
    it for the same F and state); the states agree with the per-step reconstruction up to
    float64 rounding (tests/ucgm_lab/test_sampler_tables.py).

    Memory: the states (N + 1, B, ...) and the outputs F (N, B, ...) are written into buffers
    allocated once, before the first evaluation, by ``out=`` operations rounded as the
    expressions above; a step allocates nothing that outlives it (only the network's input in
    its dtype, and the network's own tensors). Tensors kept from every step land between the
    network's freed activations, so the heap grows at every step and is handed back to the
    system at the end of the call, to be faulted in again by the next one
    (docs/architecture.md, "The plain sampler loop").

    Finiteness: the states x~_1 .. x~_N are checked once, after the loop, with one reduction;
    the first non-finite one names the step, its times and the cause, as a check after every
    step would (``_raise_non_finite``), without a host synchronisation per step (which would
    stall a GPU queue). This needs the output F of that step only: a raw network output that
    is F itself or is widened to the state dtype is finite exactly when F is. With guidance,
    or a raw output that narrows (e.g. float64 to a float32 state), the two can differ, and
    every step is then checked right after it, with its raw output.

    Args:
        state: x~_0, shape (B, ...), in the state dtype.
        num_points: N, the number of steps (evaluations).
        steps_iter: The step indices 0 .. N - 1 (a progress bar or a range).
        network: ``network(state, i, out)``: F at t_i written into ``out``.
        decompose: ``decompose(F, state, i)``: eq. 2 with the tabulated coefficients.
        coef_rows: (alpha, gamma, alpha_hat, gamma_hat, D) at t_0 .. t_N.
        time_list: t_0 .. t_N.
        last_output: The network closure's (raw output, F used) of its last evaluation.
        guided: Whether classifier-free guidance may combine two outputs into F.

    Returns:
        (the sample x^_{N-1}, the states x~_0 .. x~_{N-1} and the sample (N + 1, B, ...),
        x^ (N, B, ...), z^ (N, B, ...)), in the state dtype.
    """
    shape, dtype, device = state.shape, state.dtype, state.device
    check_each_step = guided
    with torch.no_grad():
        states_all = torch.empty((num_points + 1, *shape), dtype=dtype, device=device)
        outputs_all = torch.empty((num_points, *shape), dtype=dtype, device=device)
        scratch = torch.empty(shape, dtype=dtype, device=device)
        state_rows, output_rows = states_all.unbind(0), outputs_all.unbind(0)
        state = state_rows[0].copy_(state)
        for i in steps_iter:
            F = network(state, i, output_rows[i])
            if i == 0 and not check_each_step:
                check_each_step = not _cast_keeps_finite(last_output[0], dtype)
            if not check_each_step:
                last_output[0] = None  # not needed for the diagnosis: free it before the next step
            if i == num_points - 1:
                break
            a, g, a_hat, g_hat, d = coef_rows[i]
            a_next, g_next = coef_rows[i + 1][:2]
            nxt = state_rows[i + 1]
            if d != 0.0:
                c_x = (a_next * g_hat - g_next * a_hat) / d
                c_F = (g_next * a - a_next * g) / d
                # (x~ or c_x x~) + c_F F, rounded as that expression, written into the buffer
                if c_x == 1.0:
                    torch.mul(F, c_F, out=nxt).add_(state)
                else:
                    torch.mul(state, c_x, out=nxt).add_(torch.mul(F, c_F, out=scratch))
            else:  # D(t_i) = 0: eq. 2 divides by zero; the check names the cause
                est = decompose(F, state, i)
                nxt.copy_(a_next * est.z_hat + g_next * est.x_hat)
            if check_each_step and not _all_finite(nxt):
                _raise_non_finite(
                    i, time_list[i], time_list[i + 1], last_output, decompose(F, state, i)
                )
            state = nxt
        # (N, 5) coefficient table, one row per step, broadcast over (N, B, ...)
        # a coefficient equal at every step stays a number, so that _combine skips its +-1
        # (on Linear alpha_hat = 1, gamma_hat = -1, D = -1: two operations per estimate)
        table = torch.tensor(coef_rows[:num_points], dtype=dtype, device=device)
        columns = table.reshape(num_points, 5, *([1] * len(shape))).unbind(1)
        a, g, a_hat, g_hat, d = (
            coef_rows[0][k] if all(row[k] == coef_rows[0][k] for row in coef_rows[:num_points])
            else columns[k]
            for k in range(5)
        )  # fmt: skip
        stacked_x = states_all[:num_points]
        x_hat_all = _combine(a, outputs_all, a_hat, stacked_x, d)
        z_hat_all = _combine(g_hat, stacked_x, g, outputs_all, d)
        sample_out = state_rows[num_points].copy_(x_hat_all[-1])
        # x~_0 is the caller's noise (never checked); with per-step checks only the sample is left
        if not _all_finite(sample_out if check_each_step else states_all[1:]):
            bad = ~torch.isfinite(states_all[1:].reshape(num_points, -1)).all(1)
            i = int(bad.nonzero()[0])  # the first non-finite state is x~_{i+1}, made by step i
            if last_output[0] is None:  # F of step i stands for its raw output (see above)
                last_output[0] = last_output[1] = output_rows[i]
            _raise_non_finite(
                i,
                time_list[i],
                time_list[i + 1],
                last_output,
                decompose(output_rows[i], state_rows[i], i),
            )
    return sample_out, states_all, x_hat_all, z_hat_all


def _cast_keeps_finite(raw: Tensor | None, dtype: torch.dtype) -> bool:
    """Whether casting ``raw`` (a network output) to ``dtype`` keeps every finite value finite.

    True for the same dtype and for a floating dtype whose largest value is not above
    ``dtype``'s (float16, bfloat16 or float32 to float64, float32 to float32): F is then finite
    exactly when the raw output is.
    """
    if raw is None or raw.dtype == dtype:
        return True
    if not (raw.dtype.is_floating_point and dtype.is_floating_point):
        return False
    return torch.finfo(raw.dtype).max <= torch.finfo(dtype).max


def _combine(
    c1: float | Tensor, first: Tensor, c2: float | Tensor, second: Tensor, d: float | Tensor
) -> Tensor:
    """(c1 first - c2 second) / d, skipping the multiplications and divisions by exactly +-1.

    x * 1, x / 1, x * -1 and x / -1 are exact in IEEE arithmetic, and round-to-nearest is
    symmetric, so fl(a - b) = -fl(b - a) and fl(-a - b) = -fl(a + b): folding a divisor
    d = -1 into the signs of the two terms gives a result bit-identical to the full expression
    (up to the sign of an exact zero). On the Linear transport (alpha_hat = 1, gamma_hat = -1,
    D = -1) the decomposition (eq. 2) then costs two element-wise operations per estimate
    instead of three and four. A coefficient may also be a tensor (a column of per-step
    values, broadcast against stacked steps): it is then always multiplied (or divided by).
    """

    def equals(c: float | Tensor, value: float) -> bool:
        return not isinstance(c, Tensor) and c == value

    if equals(d, -1.0):  # (c1 f - c2 s) / -1 = (-c1) f - (-c2) s, exactly
        c1, c2, d = -c1, -c2, 1.0
    if equals(c1, -1.0) and not equals(c2, -1.0):  # -f - c2 s = -(f + c2 s), exactly
        out = -_combine(1.0, first, -c2, second, 1.0)
    elif equals(c1, -1.0):  # -f + s
        out = second - first
    else:
        left = first if equals(c1, 1.0) else c1 * first
        if equals(c2, 1.0):
            out = left - second
        elif equals(c2, -1.0):
            out = left + second
        else:
            out = left - c2 * second
    return out if equals(d, 1.0) else out / d


def _all_finite(x: Tensor) -> bool:
    """Whether every element of ``x`` is finite, with one reduction in the usual case.

    A sum is finite exactly when every element is, unless finite elements overflow it
    (|x| ~ 1e308): the elementwise check runs only when the sum is not finite, and settles it.
    """
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


def _raise_non_finite(
    i: int, t_now: float, t_next: float, outputs: list[Tensor | None], est: Decomposition
) -> None:
    """Name the cause of a non-finite state at step i (called only on failure).

    ``outputs`` is (the network's output, the F used after guidance and the cast to the state
    dtype) of the last evaluation.
    """
    where = f"step {i} (t = {t_now:.6g} -> {t_next:.6g})"
    raw, used = outputs
    if raw is not None and not bool(torch.isfinite(raw).all()):
        raise NonFiniteSampleError(
            f"UCGM-S: the network output went NaN or inf at {where}. Check the model's weights "
            "and its inputs (the noise, y), and that the transport is the one it was trained with."
        )
    if used is not None and not bool(torch.isfinite(used).all()):
        raise NonFiniteSampleError(
            f"UCGM-S: the network output is finite but the F used at {where} is not: the "
            "guidance combination F_null + w (F_cond - F_null) or the cast to the state dtype "
            "overflowed. Lower guidance_scale, or keep the state in float64."
        )
    if not (bool(torch.isfinite(est.x_hat).all()) and bool(torch.isfinite(est.z_hat).all())):
        raise NonFiniteSampleError(
            f"UCGM-S: the decomposition (eq. 2) went NaN or inf at {where} although the network "
            "output is finite: a coefficient divides by (nearly) zero there. Start the grid "
            "slightly below 1 (gap_noise > 0) or above 0."
        )
    raise NonFiniteSampleError(
        f"UCGM-S: the state went NaN or inf at {where} although the network output is finite "
        "(an overflow in the update: extrapolation kappa, guidance scale or the order-2 "
        "correction). Try fewer extremes: a smaller kappa or guidance_scale, order 1, or "
        "correction='data'."
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
    if time_points is not None:
        grid = explicit_time_points(time_points)
        if steps is not None and steps != grid.numel() - 1:
            raise ValueError(
                f"steps={steps} disagrees with time_points ({grid.numel() - 1} points above 0); "
                "give one or the other."
            )
        return grid
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
    return _kumaraswamy_grid(schedule, points).clone()


@functools.lru_cache(maxsize=512)
def _kumaraswamy_grid(schedule: KumaraswamySchedule, points: int) -> Tensor:
    """``schedule.time_points(points)``, computed once per (schedule, points).

    The schedule is a frozen dataclass of numbers, so equal schedules share one entry; the
    callers get a copy (:func:`time_grid` clones it), never the cached tensor itself. A
    sampler call or a search's grid fit then costs a copy instead of the Kumaraswamy formula.
    """
    return schedule.time_points(points)


def _unit_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")
    return float(value)
