"""Image quality versus the number of function evaluations (NFE), with the digits metric."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..evaluation import QualityPoint, model_device, sweep_nfe
from ..evaluation import format_quality_table as _format_table
from ..model_api import Model
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
    noise = torch.randn((y.shape[0], 1, 8, 8), generator=torch.Generator().manual_seed(seed)).to(
        device
    )
    return sweep_nfe(
        model,
        transport,
        noise,
        steps_list,
        lambda samples: {
            METRIC_NAME: metric.distance(samples),
            "accuracy": metric.accuracy(samples, y),
        },
        label=label,
        seed=seed,
        y=y,
        time_points_for=time_points_for,
        **sampler_kwargs,
    )


def format_quality_table(
    points: Sequence[QualityPoint], metric: str = METRIC_NAME, digits: int = 1
) -> str:
    """:func:`ucgm_lab.evaluation.format_quality_table` with the digits metric and 1 decimal."""
    return _format_table(points, metric, digits)
