"""Runs and scores one setting on one noise, memoised, within the search's time and trial budgets.

The clock and the sampler are looked up in the package at each call
(``ucgm_lab.search._clock``, ``ucgm_lab.search.sample``), so that a test that replaces them
there (a fake clock, a spy) drives every module of the search.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from ..model_api import Model
from ..transports import Transport
from .metrics import Metric
from .settings import SamplerSettings

__all__: list[str] = []


def _package() -> ModuleType:
    """The ``ucgm_lab.search`` package (its ``_clock``, ``sample`` and ``robust_choice``)."""
    return sys.modules[__package__]


class _BudgetSpentError(Exception):
    """The time or trial budget is spent."""


@dataclass
class _Runner:
    """Runs and scores settings on one noise (memoised), within the search's budgets."""

    model: Model
    transport: Transport
    noise: Tensor
    reference: Tensor
    metric: Metric
    labels: Tensor | None
    null_class: int | None
    noise_seed: int
    deadline: float | None
    max_trials: int | None
    trials: int = 0
    cache: dict[SamplerSettings, float] = field(default_factory=dict)
    on_trial: Callable[[_Runner], None] | None = None
    reserve_runs: float = 0.0
    run_seconds: float = 0.0
    runs: int = 0

    def mean_run_seconds(self) -> float:
        """Mean seconds of one sampler run (with its metric) so far (0 before the first)."""
        return self.run_seconds / self.runs if self.runs else 0.0

    def score(self, settings: SamplerSettings, *, budgeted: bool = True) -> float:
        if settings in self.cache:
            return self.cache[settings]
        if budgeted:
            if self.max_trials is not None and self.trials >= self.max_trials:
                raise _BudgetSpentError
            # stop while the runs still to come after the selection (``reserve_runs`` of the
            # mean selection run: validation and held-out runs) and one more selection run fit
            mean = self.mean_run_seconds()
            if self.deadline is not None and (
                _package()._clock() + mean * (1 + self.reserve_runs) > self.deadline
            ):
                raise _BudgetSpentError
        t0 = _package()._clock()
        value = self.run(settings)
        self.run_seconds += _package()._clock() - t0
        self.runs += 1
        self.cache[settings] = value
        if budgeted:
            self.trials += 1
            if self.on_trial is not None:
                self.on_trial(self)
        return value

    def run(self, settings: SamplerSettings) -> float:
        generator = torch.Generator(device=self.noise.device).manual_seed(self.noise_seed)
        extra: dict[str, Any] = {}
        if self.labels is not None:
            extra["y"] = self.labels
            if settings.guidance_scale != 1.0:
                extra["null_class"] = self.null_class
        try:
            out = _package().sample(
                self.model,
                self.noise,
                self.transport,
                generator=generator,
                **settings.as_kwargs(),
                **extra,
            )
        except ValueError:
            if settings.order == 2 and settings.correction == "noise":
                return math.inf  # the "noise" correction at gamma(t_0) = 0: not a candidate
            raise
        if out.nfe != settings.nfe:
            raise RuntimeError(
                f"internal error: predicted {settings.nfe} NFE for {settings.describe()}, the sampler made {out.nfe}."
            )
        if not bool(torch.isfinite(out.sample).all()):
            return math.inf
        value = self.metric(out.sample, self.reference)
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(
                f"metric must return a number (lower is better), got {type(value).__name__}."
            )
        value = float(value)
        if math.isnan(value):
            raise ValueError(
                f"metric returned NaN for the finite samples of {settings.describe()}: a metric "
                "must return a number (lower is better; inf for a failed run), never NaN."
            )
        return value
