"""The solvers users pick for flow models: diffusers' DPM-Solver++ and UniPC in flow mode.

``DPMSolverMultistepScheduler`` / ``UniPCMultistepScheduler`` with
``prediction_type="flow_prediction", use_flow_sigmas=True`` integrate the flow ODE of the
linear interpolant x_sigma = (1 - sigma) x_0 + sigma eps from sigma = 1 (noise) to 0 (data);
the model output they expect is the velocity v = eps - x_0 (their data estimate is
x_sigma - sigma v). ucgm-lab's convention is the same direction (t = 0 data, t = 1 noise) but
any transport x_t = alpha(t) z + gamma(t) x: :func:`diffusers_sample` runs a UCGM model
inside the scheduler by

* mapping sigma to the time t with alpha(t) / (alpha(t) + gamma(t)) = sigma (t = sigma for
  the linear transport; bisection otherwise) and the flow state to x_t = (alpha + gamma) x_sigma;
* decomposing the network output with eq. (2) into (x^, z^) and handing the scheduler
  v = z^ - x^.

With ``flow_shift = 1`` the schedulers' grid is sigma_i = 0.999 (1 - i / N), i < N, then 0:
the grid of :func:`ucgm_lab.sample`'s default "even" schedule, so both start from the same
time. NFE is counted by wrapping the model (one call = one evaluation).

DPM-Solver++ of order 1 in flow mode is DDIM, which for a flow is exactly Euler's method
(tests/ucgm_lab/peers/test_diffusers_solvers.py checks it against a hand-written Euler loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..model_api import Model, call_model
from ..transports import Transport, flow_time, get_transport
from .solvers import SolveResult

__all__ = ["DIFFUSERS_SOLVERS", "DiffusersSolver", "diffusers_sample", "flow_time"]


@dataclass(frozen=True)
class DiffusersSolver:
    """One diffusers scheduler configuration (the name is what tables print).

    Attributes:
        label: Display name, e.g. "DPM-Solver++ 2M".
        scheduler: "dpm" (``DPMSolverMultistepScheduler``) or "unipc"
            (``UniPCMultistepScheduler``).
        order: ``solver_order``.
    """

    label: str
    scheduler: str
    order: int


DIFFUSERS_SOLVERS: dict[str, DiffusersSolver] = {
    "dpm++1": DiffusersSolver("DPM-Solver++ 1 (DDIM)", "dpm", 1),
    "dpm++2m": DiffusersSolver("DPM-Solver++ 2M", "dpm", 2),
    "dpm++3m": DiffusersSolver("DPM-Solver++ 3M", "dpm", 3),
    "unipc": DiffusersSolver("UniPC", "unipc", 2),
}
"""The configurations :func:`diffusers_sample` knows (diffusers' defaults otherwise)."""


def _scheduler(solver: DiffusersSolver, flow_shift: float):
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    cls = DPMSolverMultistepScheduler if solver.scheduler == "dpm" else UniPCMultistepScheduler
    return cls(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=flow_shift,
        solver_order=solver.order,
    )


def diffusers_sample(
    model: Model,
    noise: Tensor,
    transport: str | Transport,
    steps: int,
    solver: str = "dpm++2m",
    *,
    y: Tensor | None = None,
    flow_shift: float = 1.0,
) -> SolveResult:
    """Sample a UCGM model with diffusers' DPM-Solver++ or UniPC in flow mode.

    Args:
        model: ``model(x_t, t, y=None) -> F`` trained with ``transport``.
        noise: The initial noise, shape (B, ...).
        transport: The model's transport (a name or a :class:`Transport`; data at t = 0).
        steps: ``num_inference_steps`` (one network evaluation each).
        solver: A key of :data:`DIFFUSERS_SOLVERS` ("dpm++1", "dpm++2m", "dpm++3m", "unipc").
        y: Optional class ids, shape (B,).
        flow_shift: The schedulers' ``flow_shift`` (1: the even grid).

    Returns:
        :class:`~ucgm_lab.peers.solvers.SolveResult`: the sample (noise dtype) and the NFE
        counted by calls of ``model``.

    Raises:
        ValueError: An unknown solver or a bad ``steps``.
    """
    if solver not in DIFFUSERS_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(DIFFUSERS_SOLVERS)}, got {solver!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    tr = get_transport(transport)
    scheduler = _scheduler(DIFFUSERS_SOLVERS[solver], flow_shift)
    scheduler.set_timesteps(steps)
    sigmas = [float(s) for s in scheduler.sigmas]
    ones = torch.ones(noise.shape[0], dtype=noise.dtype, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    nfe = 0
    with torch.no_grad():
        for i, timestep in enumerate(scheduler.timesteps):
            t = flow_time(tr, sigmas[i])
            t64 = torch.tensor(t, dtype=torch.float64)
            c = tr.coefficients(t64)
            a, g = float(c.alpha), float(c.gamma)
            a_hat, g_hat, d = float(c.alpha_hat), float(c.gamma_hat), float(c.D)
            x_t = (a + g) * x
            t_net = tr.model_time(t64).to(noise.dtype) * ones
            F = call_model(model, x_t, t_net, y)
            nfe += 1
            x_hat = (a * F - a_hat * x_t) / d
            z_hat = (g_hat * x_t - g * F) / d
            x = scheduler.step(z_hat - x_hat, timestep, x).prev_sample
    return SolveResult(sample=x.to(noise.dtype), nfe=nfe)
