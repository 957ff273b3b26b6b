"""Sample quality versus the number of function evaluations (NFE).

Shared by the demo, the notebooks and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .metrics import evaluate_2d
from .model_api import Model
from .sampler import sample
from .transports import Transport

__all__ = ["QualityPoint", "quality_vs_nfe"]


@dataclass(frozen=True)
class QualityPoint:
    """One point of a quality-versus-NFE curve.

    Attributes:
        label: Name of the curve (e.g. "lambda=0, kappa=0.5").
        steps: The ``steps`` argument given to the sampler.
        nfe: Network evaluations actually made.
        metrics: Metric name -> value (lower is better).
        settings: The sampler keyword arguments used.
    """

    label: str
    steps: int
    nfe: int
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)


def quality_vs_nfe(
    model: Model,
    transport: str | Transport,
    reference: Tensor,
    steps_list: Sequence[int],
    *,
    label: str,
    metrics: Sequence[str] = ("w2",),
    num_samples: int | None = None,
    seed: int = 0,
    y: Tensor | None = None,
    time_points_for: Callable[[int], Sequence[float] | None] | None = None,
    **sampler_kwargs: Any,
) -> list[QualityPoint]:
    """Sample ``model`` with UCGM-S at each step count and score the samples against ``reference``.

    Args:
        model: The network.
        transport: Its transport.
        reference: Data points, shape (n, 2) (or (n, d)).
        steps_list: Step counts to try.
        label: Curve name.
        metrics: Names accepted by :func:`ucgm_lab.metrics.evaluate_2d`.
        num_samples: Samples per point (default: as many as ``reference``).
        seed: Seed of the initial noise (the same noise for every step count) and of rho's noise.
        y: Optional class ids, shape (num_samples,).
        time_points_for: Optional function steps -> explicit time points (or None for the schedule).
        **sampler_kwargs: Passed to :func:`ucgm_lab.sample` (kappa, rho, order, schedule, ...).

    Returns:
        One :class:`QualityPoint` per step count.
    """
    n = num_samples or reference.shape[0]
    noise = torch.randn((n, *reference.shape[1:]), generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else noise.device
    noise = noise.to(device)
    points = []
    for steps in steps_list:
        time_points = time_points_for(steps) if time_points_for else None
        out = sample(
            model,
            noise,
            transport,
            None if time_points is not None else steps,
            time_points=time_points,
            y=y,
            generator=torch.Generator(device=device).manual_seed(seed + 1),
            **sampler_kwargs,
        )
        values = evaluate_2d(out.sample.cpu(), reference.cpu(), metrics=tuple(metrics))
        points.append(QualityPoint(label, steps, out.nfe, values, dict(sampler_kwargs)))
    return points
