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

__all__ = ["QualityPoint", "format_quality_table", "model_device", "quality_vs_nfe", "sweep_nfe"]


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


def model_device(model: Model) -> torch.device:
    """The device of a module's parameters (CPU for other callables)."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def sweep_nfe(
    model: Model,
    transport: str | Transport,
    noise: Tensor,
    steps_list: Sequence[int],
    score: Callable[[Tensor], dict[str, float]],
    *,
    label: str,
    seed: int = 0,
    y: Tensor | None = None,
    time_points_for: Callable[[int], Sequence[float] | None] | None = None,
    **sampler_kwargs: Any,
) -> list[QualityPoint]:
    """Sample ``model`` from the same ``noise`` at each step count and score the samples.

    Args:
        model: The network.
        transport: Its transport.
        noise: Initial states, shape (n, ...), on the model's device.
        steps_list: Step counts to try.
        score: Samples (n, ...) -> metric name -> value.
        label: Curve name.
        seed: Seed of rho's fresh noise (``seed + 1``).
        y: Optional class ids, shape (n,).
        time_points_for: Optional function steps -> explicit time points (or None for the schedule).
        **sampler_kwargs: Passed to :func:`ucgm_lab.sample` (kappa, rho, order, schedule, ...).

    Returns:
        One :class:`QualityPoint` per step count (explicit time points recorded in ``settings``).
    """
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
            generator=torch.Generator(device=noise.device).manual_seed(seed + 1),
            **sampler_kwargs,
        )
        settings = dict(sampler_kwargs)
        if time_points is not None:
            settings["time_points"] = list(time_points)
        points.append(QualityPoint(label, steps, out.nfe, score(out.sample), settings))
    return points


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
    noise = noise.to(model_device(model))
    ref = reference.cpu()
    return sweep_nfe(
        model,
        transport,
        noise,
        steps_list,
        lambda samples: evaluate_2d(samples.cpu(), ref, metrics=tuple(metrics)),
        label=label,
        seed=seed,
        y=y,
        time_points_for=time_points_for,
        **sampler_kwargs,
    )


def format_quality_table(points: Sequence[QualityPoint], metric: str, digits: int = 3) -> str:
    """A markdown table of quality points: one row per label, one column per NFE.

    Args:
        points: Points of one or several curves.
        metric: Which metric to show.
        digits: Decimals.

    Returns:
        The table as text (a blank cell where a curve lacks an NFE).
    """
    nfes = sorted({p.nfe for p in points})
    rows: dict[str, dict[int, float]] = {}
    for p in points:
        rows.setdefault(p.label, {})[p.nfe] = p.metrics[metric]
    lines = [
        "| curve | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
        "|---|" + "---|" * len(nfes),
    ]
    for label, values in rows.items():
        cells = [f"{values[n]:.{digits}f}" if n in values else "" for n in nfes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
