"""Deprecated: image quality versus NFE is :func:`ucgm_lab.evaluation.quality_vs_nfe`.

Its reference is then a :class:`~ucgm_lab.metrics.digits.DigitsFrechet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._deprecated import warn_moved
from ..evaluation import DIGITS_METRIC, QualityPoint, model_device, quality_vs_nfe
from ..evaluation import format_quality_table as _format_table

warn_moved(__name__, "ucgm_lab.evaluation", stacklevel=2)

__all__ = ["METRIC_NAME", "format_quality_table", "image_quality_vs_nfe", "model_device"]

METRIC_NAME = DIGITS_METRIC


def image_quality_vs_nfe(
    model: Any, transport: Any, metric: Any, steps_list: Sequence[int], **kwargs: Any
) -> list[QualityPoint]:
    """Deprecated: ``ucgm_lab.evaluation.quality_vs_nfe(model, transport, metric, steps_list, ...)``."""
    return quality_vs_nfe(model, transport, metric, steps_list, **kwargs)


def format_quality_table(
    points: Sequence[QualityPoint], metric: str = METRIC_NAME, digits: int = 1
) -> str:
    """Deprecated: ``ucgm_lab.evaluation.format_quality_table(points, "digits_fd", 1)``."""
    return _format_table(points, metric, digits)
