"""Deprecated: the peer comparison moved to :mod:`ucgm_lab.peers` (the adapters stay pure wrappers).

``ucgm_lab.adapters.peers.X`` reads ``X`` from :mod:`ucgm_lab.peers` (the plot from
:mod:`ucgm_lab.viz.quality`). The old point constructor and table keep their old signatures
here and build the library's one :class:`~ucgm_lab.evaluation.QualityPoint`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from .._deprecated import warn_moved
from ..evaluation import QualityPoint as _QualityPoint
from ..evaluation import format_quality_table as _format_quality_table

warn_moved("ucgm_lab.adapters.peers", "ucgm_lab.peers", stacklevel=2)


def QualityPoint(  # noqa: N802  (the old class name)
    model: str,
    sampler: str,
    family: str,
    nfe: int,
    score: float,
    setting: str,
    kappa: float | None = None,
    order: int | None = None,
    correction: str | None = None,
) -> _QualityPoint:
    """The old peer point ``(model, sampler, family, nfe, score, setting, ...)`` as the one point type."""
    key, _, value = setting.partition("=")
    settings: dict[str, object] = {"tolerance": float(value)} if key == "tol" else {}
    steps = int(value) if key == "steps" else None
    settings.update(
        {
            k: v
            for k, v in (("kappa", kappa), ("order", order), ("correction", correction))
            if v is not None
        }
    )
    return _QualityPoint(
        sampler, steps, nfe, {"sliced_w2": score}, settings, model=model, family=family
    )


def format_quality_table(points: Sequence[_QualityPoint], nfes: Sequence[int] | None = None) -> str:
    """The old peer table: :func:`ucgm_lab.evaluation.format_quality_table` filled from below."""
    if nfes is None:
        nfes = sorted({p.nfe for p in points if p.family == "ucgm"})
    return _format_quality_table(points, nfes=nfes, fill_below=True, digits=4)


def __getattr__(name: str) -> object:
    """Forward ``name`` to its new module (warned once, at import)."""
    module = "ucgm_lab.viz.quality" if name == "plot_quality_vs_nfe" else "ucgm_lab.peers"
    return getattr(importlib.import_module(module), name)
