"""UCGM-S's plain loop and its helpers.

The plain loop runs order 1, kappa = 0, rho = 0, no multistep (the state update is one affine
combination per step); its helpers are the fused affine combination of the decomposition and
the finiteness checks without a host synchronisation per step.

Split out of :mod:`ucgm_lab.sampler`, which re-exports every name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from .sampler_output import _raise_non_finite
from .sampler_tables import GridTables, view_column
from .transports import Decomposition


def _plain_loop(
    noise: Tensor,
    dtype: torch.dtype,
    steps_iter: Iterable[int],
    network: Callable[..., Tensor],
    decompose: Callable[[Tensor, Tensor, int], Decomposition],
    tables: GridTables,
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
    float64 rounding (tests/ucgm_lab/test_sampler_tables.py). The coefficients c_x, c_F and
    the decomposition's columns come from the grid's tables
    (:class:`~ucgm_lab.sampler_tables.GridTables`), made once per grid.

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
        noise: x~_0, shape (B, ...) (copied into the state dtype).
        dtype: The state dtype.
        steps_iter: The step indices 0 .. N - 1 (a progress bar or a range).
        network: ``network(state, i, out)``: F at t_i written into ``out``.
        decompose: ``decompose(F, state, i)``: eq. 2 with the tabulated coefficients.
        tables: The grid's tables (N steps, t_0 .. t_N).
        last_output: The network closure's (raw output, F used) of its last evaluation.
        guided: Whether classifier-free guidance may combine two outputs into F.

    Returns:
        (the sample x^_{N-1}, the states x~_0 .. x~_{N-1} and the sample (N + 1, B, ...),
        x^ (N, B, ...), z^ (N, B, ...)), in the state dtype.
    """
    shape, device = noise.shape, noise.device
    num_points, time_list, plain_steps = tables.num_points, tables.time_list, tables.plain_steps
    check_each_step = guided
    with torch.no_grad():
        states_all = torch.empty((num_points + 1, *shape), dtype=dtype, device=device)
        outputs_all = torch.empty((num_points, *shape), dtype=dtype, device=device)
        scratch = None
        if tables.plain_needs_scratch:
            scratch = torch.empty(shape, dtype=dtype, device=device)
        state_rows, output_rows = states_all.unbind(0), outputs_all.unbind(0)
        state = state_rows[0].copy_(noise)  # the cast to the state dtype is exact
        for i in steps_iter:
            F = network(state, i, output_rows[i])
            if i == 0 and not check_each_step:
                check_each_step = not _cast_keeps_finite(last_output[0], dtype)
            if not check_each_step:
                last_output[0] = None  # not needed for the diagnosis: free it before the next step
            if i == num_points - 1:
                break
            step = plain_steps[i]
            nxt = state_rows[i + 1]
            if step is not None:
                c_x, c_F = step
                # (x~ or c_x x~) + c_F F, rounded as that expression, written into the buffer
                if c_x == 1.0:
                    torch.mul(F, c_F, out=nxt).add_(state)
                else:
                    torch.mul(state, c_x, out=nxt).add_(torch.mul(F, c_F, out=scratch))
            else:  # D(t_i) = 0: eq. 2 divides by zero; the check names the cause
                est = decompose(F, state, i)
                a_next, g_next = tables.coef_rows[i + 1][:2]
                nxt.copy_(a_next * est.z_hat + g_next * est.x_hat)
            if check_each_step and not _all_finite(nxt):
                _raise_non_finite(
                    i, time_list[i], time_list[i + 1], last_output, decompose(F, state, i)
                )
            state = nxt
        # eq. 2 over the (N, B, ...) stacks with the tables' (c1, c2, d): a coefficient equal
        # at every step is a number, so that _combine skips its +-1 (on Linear alpha_hat = 1,
        # gamma_hat = -1, D = -1: two operations per estimate), the others (N,) columns
        ndim = len(shape)
        x_terms = [view_column(c, ndim) for c in tables.x_hat_terms]
        z_terms = [view_column(c, ndim) for c in tables.z_hat_terms]
        stacked_x = states_all[:num_points]
        x_hat_all = _combine(x_terms[0], outputs_all, x_terms[1], stacked_x, x_terms[2])
        z_hat_all = _combine(z_terms[0], stacked_x, z_terms[1], outputs_all, z_terms[2])
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
