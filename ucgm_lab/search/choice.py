"""The finalists of a selection and the choice among them on the validation streams."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..schedules import KumaraswamySchedule
from .settings import SamplerSettings

__all__ = ["Choice", "robust_choice"]


def _finalists(
    cache: dict[SamplerSettings, float],
    count: int,
    presets: Sequence[KumaraswamySchedule] = (),
) -> list[SamplerSettings]:
    """The finalists of a selection cache (in this order, without repeats).

    * the ``count`` best settings;
    * the best of each structure (order, correction, multistep form, rho = 0 or not): the
      deterministic and the stochastic candidates always both reach the validation runs;
    * for each deterministic structure its best candidate on a preset grid (one of
      ``presets``, as the coordinate descent left it) and on the "even" grid: the pattern
      search's refinements of a, b, c fit the selection noise, and the validation streams
      judge whether they hold.
    """
    ranked = sorted((v, i, s) for i, (s, v) in enumerate(cache.items()) if math.isfinite(v))
    chosen = [s for _, _, s in ranked[:count]]
    seen = set()
    even = KumaraswamySchedule.even()
    preset_set = set(presets)

    def add(key: tuple[Any, ...], s: SamplerSettings) -> None:
        if key not in seen:
            seen.add(key)
            if s not in chosen:
                chosen.append(s)

    for _, _, s in ranked:
        structure = (s.order, s.correction if s.order == 2 else None, s.multistep)
        add((*structure, s.rho == 0.0), s)
        if s.rho == 0.0 and s.schedule is not None:
            if s.schedule in preset_set:
                add((*structure, "preset"), s)
            if s.schedule == even:
                add((*structure, "even"), s)
    return chosen


@dataclass(frozen=True)
class Choice:
    """What :func:`robust_choice` chose.

    Attributes:
        settings: The chosen settings.
        mean: Their mean score over the streams.
        se: The standard error of that mean across the streams (0 with one stream).
        best_mean: The settings with the lowest mean (``settings`` unless the tie rule kept a
            deterministic one).
    """

    settings: SamplerSettings
    mean: float
    se: float
    best_mean: SamplerSettings


def robust_choice(
    scores: dict[SamplerSettings, Sequence[float]],
    tiebreak: dict[SamplerSettings, float] | None = None,
    prefer: SamplerSettings | None = None,
) -> Choice:
    """Choose among finalists scored on the same S validation streams (lower is better).

    Every finalist is scored on the same S streams (initial noise and fresh-noise seed), so
    their scores are paired. The finalist with the lowest mean over the streams wins, except
    that a stochastic one (rho > 0, whose score also varies with the fresh noise) must beat the
    best deterministic (rho = 0) finalist by more than the standard error of the paired
    differences d_s = score_s(stochastic) - score_s(deterministic):

        keep the stochastic one only if mean(d) + sd(d) / sqrt(S) < 0.

    With S = 1 the standard error is unknown and the lowest score wins (the rule of a single
    validation noise).

    ``prefer`` (a finalist: the search's start, :func:`ucgm_lab.recommended_settings`, a rule
    validated on many models) is kept by the same test: the finalist chosen above replaces it
    only if it beats it by more than the standard error of their paired differences. Among
    finalists that the streams cannot tell apart, the one chosen for its low selection score is
    the one most likely to have merely suited the selection noise (on the torchcfm peer at 8
    and 16 NFE the fast search kept a four-point grid that lost to the recommendation on
    held-out noise).

    Args:
        scores: finalist -> its S scores (the same S for all; a non-finite score excludes it).
        tiebreak: finalist -> a secondary key for equal means (e.g. the selection score).
        prefer: A finalist to keep unless beaten beyond the standard error (None: none;
            ignored when it is not a finalist with finite scores).

    Returns:
        :class:`Choice`.

    Raises:
        ValueError: No finalist, finalists with different numbers of scores, or none finite.
    """
    if not scores:
        raise ValueError("robust_choice needs at least one finalist.")
    counts = {len(v) for v in scores.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every finalist needs the same number (>= 1) of scores, got {counts}.")
    n = counts.pop()
    tiebreak = tiebreak or {}
    values = {f: np.asarray(v, dtype=np.float64) for f, v in scores.items()}
    finite = {f: v for f, v in values.items() if np.isfinite(v).all()}
    if not finite:
        raise ValueError("no finalist has a finite score on every stream.")
    order = list(finite)

    def key(f: SamplerSettings) -> tuple[float, float, int]:
        return (float(finite[f].mean()), tiebreak.get(f, 0.0), order.index(f))

    def se(v: np.ndarray) -> float:
        return float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0

    best = min(finite, key=key)
    chosen = best
    if n > 1 and best.rho != 0.0:
        deterministic = [f for f in finite if f.rho == 0.0]
        if deterministic:
            simple = min(deterministic, key=key)
            d = finite[best] - finite[simple]
            if not float(d.mean()) + se(d) < 0.0:
                chosen = simple
    if prefer is not None and prefer in finite and chosen != prefer:
        d = finite[chosen] - finite[prefer]
        if not float(d.mean()) + se(d) < 0.0:
            chosen = prefer
    return Choice(chosen, float(finite[chosen].mean()), se(finite[chosen]), best)
