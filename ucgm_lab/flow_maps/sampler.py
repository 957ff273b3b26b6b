"""Few-step sampling with a flow map u(z_t, r, t) (MeanFlow, Geng et al. 2025, eq. 12 and Alg. 2).

One step from t to r follows the average velocity over the whole interval,

    z_r = z_t - (t - r) u(z_t, r, t)                  (MeanFlow eq. 12, section 4.1, "Sampling")

so one step from pure noise is z_0 = e - u(e, 0, 1) (MeanFlow Alg. 2), and a k-step sampler
applies the same update on a grid 1 = t_0 > t_1 > ... > t_k = 0 (each step one network evaluation, NFE = k).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..model_api import Model, check_batch, check_labels, check_model_takes_labels, model_dtype
from .objective import call_flow_map, check_flow_map_model

__all__ = ["flow_map_sample", "flow_map_times"]


def flow_map_times(steps: int) -> list[float]:
    """The evenly spaced grid 1, 1 - 1/k, ..., 0 of a k-step flow-map sampler.

    Args:
        steps: k >= 1 (the NFE).

    Returns:
        k + 1 decreasing times from 1 to 0.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"steps must be an integer >= 1 (the number of evaluations), got {steps!r}."
        )
    return [1 - i / steps for i in range(steps)] + [0.0]


@torch.no_grad()
def flow_map_sample(
    model: Model,
    noise: Tensor,
    steps: int = 1,
    *,
    times: Sequence[float] | None = None,
    y: Tensor | None = None,
) -> Tensor:
    """Map noise to samples with k flow-map steps z_r = z_t - (t - r) u(z_t, r, t).

    Args:
        model: Flow-map network ``model(z_t, t, y=None, r=None) -> u``.
        noise: The noise e = z_1, shape (B, ...).
        steps: Number of steps k (evenly spaced times; ignored when ``times`` is given).
        times: Optional strictly decreasing times from 1 to 0 (k + 1 values), e.g.
            ``[1.0, 0.5, 0.0]`` for two steps.
        y: Optional class ids, shape (B,).

    Returns:
        Samples, shape and dtype of ``noise``.
    """
    check_batch(noise, "noise")
    batch = noise.shape[0]
    check_labels(y, batch, "y")
    check_model_takes_labels(model, y)
    check_flow_map_model(model)
    grid = flow_map_times(steps) if times is None else [float(s) for s in times]
    if (
        len(grid) < 2
        or grid[0] != 1.0
        or grid[-1] != 0.0
        or any(b >= a for a, b in zip(grid, grid[1:], strict=False))
    ):
        raise ValueError(
            f"times must decrease strictly from 1 to 0 (at least two values), got {list(grid)}."
        )
    compute = torch.float64 if noise.dtype == torch.float64 else torch.float32
    net = model_dtype(model, compute)
    z = noise.to(compute)
    for t_now, r_next in zip(grid, grid[1:], strict=False):
        t = torch.full((batch,), t_now, device=noise.device, dtype=net)
        r = torch.full((batch,), r_next, device=noise.device, dtype=net)
        u = call_flow_map(model, z.to(net), r, t, y).to(compute)
        z = z - (t_now - r_next) * u
    return z.to(noise.dtype)
