"""The peers' own ODE solvers, counting network evaluations.

flow_matching's ``ODESolver`` and, for torchcfm (which has no solver of its own; its examples integrate with torchdyn/torchdiffeq),
``torchdiffeq.odeint``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .training import PeerModel

__all__ = ["EVALS_PER_STEP", "PEER_METHODS", "SolveResult", "peer_solve"]

PEER_METHODS: tuple[str, ...] = ("euler", "midpoint", "dopri5")
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun2": 2, "heun3": 3, "rk4": 4}
"""Network evaluations per step of the fixed-step methods."""


@dataclass(frozen=True)
class SolveResult:
    """Samples of a peer solver and the number of network evaluations it made."""

    sample: Tensor
    nfe: int


class _Counted:
    """Count calls of a velocity function v(x, s)."""

    def __init__(self, velocity: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.velocity = velocity
        self.calls = 0

    def __call__(self, x: Tensor, s: Tensor) -> Tensor:
        self.calls += 1
        return self.velocity(x, s)


def peer_solve(
    peer: PeerModel,
    noise: Tensor,
    method: str,
    steps: int | None = None,
    tolerance: float = 1e-5,
) -> SolveResult:
    """Integrate the peer model's ODE from s = 0 to 1 with its own library's solver.

    flow_matching models use ``ODESolver(...).sample(noise, step_size=None, method=...,
    time_grid=...)``; torchcfm models ``torchdiffeq.odeint`` (as in torchcfm's examples).

    Args:
        peer: The model.
        noise: x_0, shape (B, 2).
        method: A torchdiffeq method name ("euler", "midpoint", "rk4", "dopri5", ...).
        steps: Number of fixed steps on linspace(0, 1, steps + 1) (fixed-step methods).
        tolerance: rtol = atol for adaptive methods.

    Returns:
        The :class:`SolveResult` (NFE counted, including the adaptive step-size start-up).
    """
    fixed = method in EVALS_PER_STEP
    if fixed and (steps is None or steps < 1):
        raise ValueError(f"Fixed-step method {method!r} needs steps >= 1.")
    grid = torch.linspace(0.0, 1.0, steps + 1) if fixed else torch.tensor([0.0, 1.0])
    counted = _Counted(peer.velocity)
    with torch.no_grad():
        if peer.library == "flow_matching":
            out = _flow_matching_solve(counted, noise, method, grid, tolerance)
        else:
            from torchdiffeq import odeint

            out = odeint(
                lambda s, x: counted(x, s),
                noise,
                grid.to(noise),
                method=method,
                rtol=tolerance,
                atol=tolerance,
            )[-1]
    return SolveResult(sample=out, nfe=counted.calls)


def _flow_matching_solve(
    counted: _Counted, noise: Tensor, method: str, grid: Tensor, tolerance: float
) -> Tensor:
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    class Velocity(ModelWrapper):
        def forward(self, x: Tensor, t: Tensor, **extras: Any) -> Tensor:
            return counted(x, t)

    solver = ODESolver(velocity_model=Velocity(nn.Identity()))
    return solver.sample(
        x_init=noise,
        step_size=None,
        method=method,
        time_grid=grid.to(noise),
        atol=tolerance,
        rtol=tolerance,
    )
