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

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .model_api import (
    Model,
    call_model,
    model_dtype,
)
from .sampler_checks import check_settings
from .sampler_corrector import correct_step, form_value
from .sampler_grid import DIVISOR_TOLERANCE as DIVISOR_TOLERANCE
from .sampler_grid import MAX_STEPS as MAX_STEPS
from .sampler_grid import _check_divisor as _check_divisor
from .sampler_grid import _kumaraswamy_grid as _kumaraswamy_grid
from .sampler_grid import _time_grid
from .sampler_grid import _unit_number as _unit_number
from .sampler_grid import divisor_tolerance as divisor_tolerance
from .sampler_grid import time_grid as time_grid
from .sampler_loop import _all_finite as _all_finite
from .sampler_loop import _cast_keeps_finite as _cast_keeps_finite
from .sampler_loop import _combine as _combine
from .sampler_loop import _plain_loop as _plain_loop
from .sampler_output import NonFiniteSampleError as NonFiniteSampleError
from .sampler_output import SampleOutput as SampleOutput
from .sampler_output import _raise_non_finite as _raise_non_finite
from .sampler_steps import MULTISTEP_FORMS as MULTISTEP_FORMS
from .sampler_steps import adams_bashforth_weight as adams_bashforth_weight
from .sampler_steps import auto_stochastic_ratio as auto_stochastic_ratio
from .sampler_steps import extrapolate as extrapolate
from .sampler_steps import multistep_estimates as multistep_estimates
from .sampler_steps import reconstruct as reconstruct
from .sampler_steps import second_order_correction as second_order_correction
from .sampler_steps import transport_rates as transport_rates
from .sampler_tables import grid_tables
from .schedules import KumaraswamySchedule
from .transports import Decomposition, Transport

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
            (no evaluation there), nor is the first corrected step of ``multistep="noise"``
            (over the first step its s = alpha / gamma falls from about 1000 at t_0 = 0.999 to
            a few units, and the trapezoid there is far off). See
            :mod:`ucgm_lab.sampler_corrector`.
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
    checked = check_settings(
        model, noise, transport, order=order, kappa=kappa, rho=rho, y=y,
        guidance_scale=guidance_scale, guidance_interval=guidance_interval,
        guidance_interval_time=guidance_interval_time, null_class=null_class,
        extrapolation_start=extrapolation_start, correction=correction, multistep=multistep,
        corrector=corrector, lower_order_final=lower_order_final, generator=generator,
    )  # fmt: skip
    tr, kappa, rho_mode, null_class = (
        checked.transport,
        checked.kappa,
        checked.rho_mode,
        checked.null_class,
    )
    g_lo, g_hi = guidance_interval
    batch = noise.shape[0]

    grid, grid_key = _time_grid(steps, order, schedule, time_points)  # read only
    num_points = grid.numel() - 1
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
    y_pair = None
    if guidance_scale != 1.0:
        y_pair = torch.cat([y, torch.full_like(y, null_class)])

    # Per-grid tables, made once per grid (and kept for the built-in transports): the
    # coefficients at every t_i as Python numbers (alpha, gamma, alpha_hat, gamma_hat, D; exact
    # in the state dtype), the network's time input (mapped in the state dtype, then cast), ...
    tables = grid_tables(tr, grid, grid_key, state_dtype, net_dtype, noise.device)
    times, time_list, coef_rows = tables.times, tables.time_list, tables.coef_rows
    if order == 2:  # the correction's divisors at t_0 .. t_{N-2}, once, before any step
        column = 1 if correction == "noise" else 0
        for i, t_i in enumerate(time_list[:-2]):
            _check_divisor(coef_rows[i][column], state_dtype, t_i, tr, correction)
    # one (B,) row per step, as views of one fresh (N + 1, B) tensor (indexing a tuple costs
    # no tensor operation; the model may keep or modify its time input)
    t_net_rows = tables.network_times[:, None].expand(num_points + 1, batch).clone().unbind(0)
    # the times that guidance_interval is compared with (library or network time)
    guidance_times = tables.network_time_list if guidance_interval_time == "network" else time_list
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

    # no tqdm object at all without a progress bar (building one costs more than a small step)
    bar = tqdm(range(num_points), desc="UCGM-S", leave=False) if progress else None
    steps_iter = bar if bar is not None else range(num_points)
    if order == 1 and multistep is None and kappa == 0.0 and rho_mode == 0.0:
        state, states_all, x_hat_all, z_hat_all = _plain_loop(
            noise,
            state_dtype,
            steps_iter,
            network,
            decompose,
            tables,
            last_output,
            guided=guidance_scale != 1.0,
        )
    else:
        state = noise.to(state_dtype)
        states, x_hats, z_hats = [state], [], []
        previous: Decomposition | None = None
        # the corrector's history: the raw estimates at t_{i-2} and the state x~_{i-1}
        before_previous: Decomposition | None = None
        state_before: Tensor | None = None
        rates = tables.rates(tr) if multistep == "velocity" else None
        # the velocity form's v_k = alpha'(t_k) z^_k + gamma'(t_k) x^_k of each evaluation, made
        # once: the Adams-Bashforth step and the corrector use it up to five times
        velocities: dict[int, Tensor] = {}

        def velocity(k: int, est: Decomposition) -> Tensor:
            if k not in velocities:
                velocities[k] = form_value("velocity", est, rates[k])  # type: ignore[index]
            return velocities[k]

        with torch.no_grad():
            for i in steps_iter:
                raw = evaluate(state, i)
                x_hats.append(raw.x_hat)
                z_hats.append(raw.z_hat)
                velocities.pop(i - 3, None)  # the corrector reaches back to t_{i-2}
                if corrector and previous is not None and i >= extrapolation_start:
                    known = None
                    if rates is not None:
                        known = (velocities.get(i - 2), velocity(i - 1, previous), velocity(i, raw))
                    state = correct_step(
                        multistep, state, state_before, (before_previous, previous, raw),
                        i, coef_rows, time_list, rates, known,
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
                        values=None
                        if rates is None
                        else (velocity(i - 1, previous), velocity(i, raw)),
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
        times=tables.times_out.clone(),
        nfe=nfe,
    )
