"""UCGM-S: the unified sampler (section 3.2, Alg. 2, App. B.1.6).

Each step decomposes the current state with one model evaluation (Alg. 2 line 3),
x~ = alpha(t_i) z^_i + gamma(t_i) x^_i, optionally extrapolates the estimates (line 5), and
reconstructs the state at the next time with optional fresh noise (line 8):

    x' = alpha(t_{i+1}) (sqrt(1 - rho) z^ + sqrt(rho) eps) + gamma(t_{i+1}) x^.

Order 2 adds a correction with a second evaluation at t_{i+1} (lines 9-12), averaging the
noise estimates z^ (docs/paper-notes.md, E1: the printed algorithm averages x^). With rho = 0,
kappa = 0 and order 1 on a flow-matching transport this is exactly the Euler method
(App. B.1.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .model_api import Model, call_model, check_batch, check_labels, resolve_null_class
from .schedules import KumaraswamySchedule, explicit_time_points
from .transports import Decomposition, Transport, get_transport

__all__ = [
    "SampleOutput",
    "auto_stochastic_ratio",
    "extrapolate",
    "reconstruct",
    "sample",
    "second_order_correction",
]


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
    c = transport.coefficients(t_next)
    if fresh_noise is None:
        noise_part = est.z_hat
    else:
        rho_t = torch.as_tensor(rho, dtype=est.z_hat.dtype, device=est.z_hat.device)
        noise_part = torch.sqrt(1 - rho_t) * est.z_hat + torch.sqrt(rho_t) * fresh_noise
    return c.alpha * noise_part + c.gamma * est.x_hat


def second_order_correction(
    transport: Transport,
    state: Tensor,
    t_now: Tensor,
    t_next: Tensor,
    est: Decomposition,
    est_next: Decomposition,
    form: Literal["noise", "data"] = "noise",
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
        ValueError: If the divisor (gamma(t_i) or alpha(t_i)) is 0.
    """
    c_now, c_next = transport.coefficients(t_now), transport.coefficients(t_next)
    noise_form = form == "noise"
    divisor = c_now.gamma if noise_form else c_now.alpha
    if float(divisor) == 0.0:
        name = "gamma" if noise_form else "alpha"
        raise ValueError(
            f"The {form}-form second-order correction divides by {name}(t_i), which is 0 at "
            f"t_i = {float(t_now):g} for transport {transport.name!r}. "
            + (
                "Start the time grid slightly below 1 (a gap_noise > 0, or a first time point "
                "such as 0.999), or use correction='data'."
                if noise_form
                else "Use correction='noise'."
            )
        )
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
    schedule: KumaraswamySchedule | Literal["uniform", "even", "auto"] = "uniform",
    time_points: Sequence[float] | Tensor | None = None,
    y: Tensor | None = None,
    guidance_scale: float = 1.0,
    guidance_interval: tuple[float, float] = (0.0, 1.0),
    null_class: int | None = None,
    extrapolation_start: int = 1,
    correction: Literal["noise", "data"] = "noise",
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
        schedule: Time grid: a :class:`KumaraswamySchedule`, "uniform" (the identity with gaps
            0.001, as in the reference), "even" (no evaluation at the data end, see
            :meth:`KumaraswamySchedule.even`) or "auto" (the paper's (1.17, 0.8, 1.1)).
        time_points: Explicit decreasing times, e.g. ``[1.0, 0.3]`` for a 2-step model; 0 is
            appended. Overrides ``schedule``; the grid is used as given (no halving for order 2).
        y: Optional class ids, shape (B,).
        guidance_scale: Classifier-free guidance scale w (1 = no guidance):
            F = F(null) + w (F(y) - F(null)) for t_i inside ``guidance_interval``.
        guidance_interval: (lo, hi) of times where guidance applies.
        null_class: Class id of the unconditional model (default ``model.null_class``).
        extrapolation_start: First step index i that extrapolates (paper: 1; the reference: 2).
        correction: Form of the order-2 correction: "noise" (the paper's, averaging z^; unstable
            at few steps when gamma(t_0) is near 0) or "data" (averaging x^ in the data-prediction
            variables; well conditioned near t = 1). See :func:`second_order_correction`.
        generator: Torch generator for the fresh noise (on the noise tensor's device).
        accumulate_float64: Keep the state in float64 (default: yes except on MPS).
        progress: Show a tqdm progress bar.

    Returns:
        :class:`SampleOutput` with the final sample, the per-step estimates, the time grid
        and the number of function evaluations.
    """
    check_batch(noise, "noise")
    batch = noise.shape[0]
    check_labels(y, batch, "y")
    tr = get_transport(transport)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    if correction not in ("noise", "data"):
        raise ValueError(f"correction must be 'noise' (the paper's) or 'data', got {correction!r}.")
    kappa = _unit_number(kappa, "kappa (extrapolation ratio)")
    if isinstance(rho, str):
        if rho.lower() != "auto":
            raise ValueError(f"rho must be a number in [0, 1] or 'auto', got {rho!r}.")
        rho_mode: float | None = None
    else:
        rho_mode = _unit_number(rho, "rho (stochastic ratio)")
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
    g_lo, g_hi = guidance_interval
    if not 0 <= g_lo <= g_hi <= 1:
        raise ValueError(
            f"guidance_interval must satisfy 0 <= lo <= hi <= 1, got {guidance_interval}."
        )

    times = _time_grid(steps, order, schedule, time_points)
    num_points = times.numel() - 1
    if accumulate_float64 is None:
        accumulate_float64 = noise.device.type != "mps"
    state_dtype = torch.float64 if accumulate_float64 else noise.dtype
    model_dtype = noise.dtype
    times = times.to(device=noise.device, dtype=state_dtype)
    batch_ones = torch.ones(batch, device=noise.device, dtype=model_dtype)
    y_pair = None
    if guidance_scale != 1.0:
        y_pair = torch.cat([y, torch.full_like(y, null_class)])

    nfe = 0

    def evaluate(state: Tensor, t_now: Tensor) -> Decomposition:
        nonlocal nfe
        x_in = state.to(model_dtype)
        t_net = tr.network_time(t_now).to(model_dtype) * batch_ones  # map in float64, then cast
        guided = guidance_scale != 1.0 and g_lo <= float(t_now) <= g_hi
        if guided:
            F_pair = call_model(model, torch.cat([x_in, x_in]), torch.cat([t_net, t_net]), y_pair)
            F_cond, F_null = F_pair.to(state_dtype).chunk(2)
            F = F_null + guidance_scale * (F_cond - F_null)
            nfe += 2
        else:
            F = call_model(model, x_in, t_net, y).to(state_dtype)
            nfe += 1
        return tr.decompose(F, state, t_now)

    state = noise.to(state_dtype)
    states, x_hats, z_hats = [state], [], []
    previous: Decomposition | None = None
    bar = tqdm(range(num_points), desc="UCGM-S", disable=not progress, leave=False)
    with torch.no_grad():
        for i in bar:
            t_now, t_next = times[i], times[i + 1]
            raw = evaluate(state, t_now)
            x_hats.append(raw.x_hat)
            z_hats.append(raw.z_hat)
            est = raw
            if kappa > 0 and previous is not None and i >= extrapolation_start:
                est = Decomposition(
                    x_hat=extrapolate(raw.x_hat, previous.x_hat, kappa),
                    z_hat=extrapolate(raw.z_hat, previous.z_hat, kappa),
                )
            previous = raw
            if i == num_points - 1:
                # t_N = 0: the reconstruction alpha(0) z^ + gamma(0) x^ is x^ for transports with
                # alpha(0) = 0, gamma(0) = 1; we return x^ for all (EDM has gamma(0) ~ 2).
                state = est.x_hat
                states.append(state)
                break
            current_rho = (
                rho_mode if rho_mode is not None else auto_stochastic_ratio(tr, t_now, t_next)
            )
            fresh = None
            if rho_mode is None or rho_mode > 0:
                fresh = torch.randn(
                    state.shape, generator=generator, device=state.device, dtype=state_dtype
                )
            nxt = reconstruct(tr, est, t_next, current_rho, fresh)
            if order == 2:
                corr = evaluate(nxt, t_next)
                nxt = second_order_correction(tr, state, t_now, t_next, est, corr, correction)
            state = nxt
            states.append(state)
    bar.close()
    return SampleOutput(
        sample=state.to(noise.dtype),
        x_hat=torch.stack(x_hats).to(noise.dtype),
        z_hat=torch.stack(z_hats).to(noise.dtype),
        states=torch.stack(states).to(noise.dtype),
        times=times.to(torch.float64).cpu(),
        nfe=nfe,
    )


def _time_grid(
    steps: int | None,
    order: int,
    schedule: KumaraswamySchedule | str,
    time_points: Sequence[float] | Tensor | None,
) -> Tensor:
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
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if isinstance(schedule, str):
        key = schedule.lower()
        if key == "uniform":
            schedule = KumaraswamySchedule()
        elif key == "even":
            schedule = KumaraswamySchedule.even()
        elif key == "auto":
            schedule = KumaraswamySchedule.auto()
        else:
            raise ValueError(
                f"schedule must be 'uniform', 'even', 'auto' or a KumaraswamySchedule, got {schedule!r}."
            )
    elif not isinstance(schedule, KumaraswamySchedule):
        raise TypeError(
            f"schedule must be 'uniform', 'even', 'auto' or a KumaraswamySchedule, got {type(schedule).__name__}."
        )
    points = (steps + 1) // 2 if order == 2 else steps
    return schedule.time_points(points)


def _unit_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")
    return float(value)
