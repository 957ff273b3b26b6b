"""Image quality versus the number of function evaluations (NFE), with the digits metric."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..evaluation import QualityPoint
from ..model_api import Model
from ..sampler import sample
from ..transports import Transport
from .metric import DigitsFrechet

__all__ = ["METRIC_NAME", "format_quality_table", "image_quality_vs_nfe", "model_device"]

METRIC_NAME = "digits_fd"
"""Key of the digits metric in ``QualityPoint.metrics``."""


def image_quality_vs_nfe(
    model: Model,
    transport: str | Transport,
    metric: DigitsFrechet,
    steps_list: Sequence[int],
    *,
    label: str,
    seed: int = 0,
    time_points_for: Callable[[int], Sequence[float] | None] | None = None,
    **sampler_kwargs: Any,
) -> list[QualityPoint]:
    """Sample a class-conditional digits model at each step count and score it.

    Every point uses the same initial noise and the test split's labels (``metric.num_samples``
    images), so its value is comparable with ``metric.floor()``.

    Args:
        model: The network.
        transport: Its transport.
        metric: The digits metric.
        steps_list: Step counts to try.
        label: Curve name.
        seed: Seed of the initial noise (and of rho's noise, seed + 1).
        time_points_for: Optional function steps -> explicit time points (or None for the
            schedule), e.g. ``{2: [0.999, 0.5]}.get`` for a few-step model.
        **sampler_kwargs: Passed to :func:`ucgm_lab.sample` (kappa, rho, order, schedule, ...).

    Returns:
        One :class:`~ucgm_lab.evaluation.QualityPoint` per step count, metric ``"digits_fd"``
        and the classifier accuracy ``"accuracy"`` (how often the sample shows its class).
    """
    device = model_device(model)
    y = metric.test_labels.to(device)
    noise = torch.randn((y.shape[0], 1, 8, 8), generator=torch.Generator().manual_seed(seed)).to(device)
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
        values = {METRIC_NAME: metric.distance(out.sample), "accuracy": metric.accuracy(out.sample, y)}
        settings = dict(sampler_kwargs)
        if time_points is not None:
            settings["time_points"] = list(time_points)
        points.append(QualityPoint(label, steps, out.nfe, values, settings))
    return points


def model_device(model: Model) -> torch.device:
    """The device of a module's parameters (CPU for other callables)."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def format_quality_table(points: Sequence[QualityPoint], metric: str = METRIC_NAME, digits: int = 1) -> str:
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
    lines = ["| curve | " + " | ".join(f"NFE {n}" for n in nfes) + " |", "|---|" + "---|" * len(nfes)]
    for label, values in rows.items():
        cells = [f"{values[n]:.{digits}f}" if n in values else "" for n in nfes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
