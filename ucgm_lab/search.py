"""A search for the best UCGM-S settings at each NFE budget (the paper tunes Tab. 6 by hand).

For every budget of network evaluations N, :func:`search_sampler` looks for the settings of
:func:`ucgm_lab.sample` (Alg. 2) that minimise a quality metric (lower is better):

* the order (1, or 2 with the "noise" or "data" correction), the two-step Adams-Bashforth
  multistep forms of order 1 (``multistep="velocity"`` / ``"noise"``, docs/paper-notes.md F7)
  and, where labels are given, the classifier-free guidance scale and interval;
* the time grid: Kumaraswamy shapes (a, b, c) (App. B.2.2) with the data-end gap 0.001
  ("uniform") or 0 ("even"), and for small budgets explicit time points optimised directly;
* the extrapolation ratio kappa (Alg. 2 line 5) and the stochastic ratio rho, constant or
  "auto" (App. B.1.6).

How it searches (a few hundred sampler runs per budget at most): for every structure (order,
correction, multistep form) a coordinate descent over preset values of each setting, the grid
first at rho = 0 (every deterministic candidate sees the same noise and no fresh noise, so
their comparison is paired), then a pattern search on the continuous ones (kappa, rho, a, b, c)
of the best with steps 0.1, 0.03 and 0.01, then a pattern search on explicit time points, moved
in logit(t) (steps 1, 0.3, 0.1, 0.03: fine near both ends of [0, 1]), when the grid has at most
``space.explicit_max_points`` points; the best candidate of the other kind (deterministic,
rho = 0, or stochastic, rho > 0) gets the same two pattern searches (a deterministic one with
rho kept at 0), so that both kinds reach the validation streams refined. Every candidate
is run on the same *selection* noise (and the same fresh-noise stream for rho > 0), so that the
candidates differ by their settings only.

Picking the best of hundreds of candidates on one noise favours the ones that happen to suit it
(most of all with rho > 0, whose fresh noise is not shared with the deterministic candidates,
and the pattern search's fine moves of a, b, c), so the finalists (the best ``space.finalists``,
the best of each structure with rho = 0 and with rho > 0, and per deterministic structure its
best on a preset grid and on the "even" grid) are run on ``validation_streams`` (4)
*validation* streams, each an initial noise ``validation_factor`` (2) times larger than the
selection noise with a fresh-noise seed of its own, and chosen by their mean score over the
streams (:func:`robust_choice`). A stochastic setting carries the fresh noise's variance
besides the initial noise's: the best deterministic finalist is kept unless a stochastic one
beats it by more than the standard error of their paired score differences across the streams,
and with ``consistency_ratio`` the recommendation (:func:`ucgm_lab.recommended_settings`) is
kept by the same test: another finalist replaces it only if it beats it beyond that error.
The chosen settings are then run once more on a disjoint *held-out* noise (and fresh-noise
stream), and only that run gives the reported figure.

NFE accounting is exact and mirrors :class:`~ucgm_lab.sampler.SampleOutput.nfe`: a grid of P
points costs P evaluations at order 1 and 2P - 1 at order 2 (the last step takes x^ without a
correction), a guided evaluation counts 2. A candidate is kept only if its NFE is at most the
budget (order 2 fits odd budgets exactly and uses N - 1 evaluations for even N), and every
run checks the sampler's own count against the prediction. The winners of the smaller budgets
are candidates of every larger one (as they are, and with their grid refitted), so the best
selection score never gets worse with the budget (the validation may still choose another).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .model_api import Model, resolve_null_class
from .sampler import MULTISTEP_FORMS, sample, time_grid
from .schedules import AUTO_KUMARASWAMY, KumaraswamySchedule
from .transports import Transport, get_transport

__all__ = [
    "BudgetResult",
    "Choice",
    "SamplerSettings",
    "SearchResult",
    "SearchSpace",
    "SlicedW2",
    "count_nfe",
    "default_metric",
    "robust_choice",
    "search_sampler",
]

Metric = Callable[[Tensor, Tensor], float]
_PATTERN_ROUNDS = 15
"""Most rounds of a pattern-search phase: a setting moves at most this many steps per phase
(a single time point may need to travel from 0.999 to about 0.45 in steps of 0.1)."""
Rho = float | Literal["auto"]
_clock: Callable[[], float] = time.perf_counter
"""The search's clock (a module attribute so that tests can drive ``max_seconds`` with a fake
clock instead of wall time)."""


# ---------------------------------------------------------------------- settings
@dataclass(frozen=True)
class SamplerSettings:
    """One setting of :func:`ucgm_lab.sample`, with its exact NFE.

    Attributes:
        nfe: Network evaluations this setting makes (as counted by ``SampleOutput.nfe``).
        order: 1 or 2.
        kappa: Extrapolation ratio in [0, 1].
        rho: Stochastic ratio in [0, 1] or "auto".
        correction: Order-2 correction form ("noise" or "data"; ignored for order 1).
        steps: ``steps`` of :func:`ucgm_lab.sample` (None with explicit time points).
        schedule: The Kumaraswamy grid (None with explicit time points).
        time_points: Explicit decreasing times (0 excluded), or None.
        guidance_scale: Classifier-free guidance scale (1 = none).
        guidance_interval: (lo, hi) of times where guidance applies.
        multistep: None (Alg. 2) or the Adams-Bashforth form ("velocity", "noise", "data";
            order 1 and kappa = 0 only).
        corrector: With a multistep form and rho = 0: the Adams-Moulton corrector of
            ``sample(corrector=True)`` (same NFE; default off).
        lower_order_final: With a multistep form or kappa > 0: no extrapolation at the last
            step (``sample(lower_order_final=True)``; default off).
    """

    nfe: int
    order: int = 1
    kappa: float = 0.0
    rho: Rho = 0.0
    correction: str = "noise"
    steps: int | None = None
    schedule: KumaraswamySchedule | None = None
    time_points: tuple[float, ...] | None = None
    guidance_scale: float = 1.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    multistep: str | None = None
    corrector: bool = False
    lower_order_final: bool = False

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ucgm_lab.sample(model, noise, transport, **kwargs)``.

        Class labels ``y`` (and ``null_class``) are not part of the settings: pass them too.
        """
        kwargs: dict[str, Any] = {"order": self.order, "kappa": self.kappa, "rho": self.rho}
        if self.time_points is not None:
            kwargs["time_points"] = list(self.time_points)
        else:
            kwargs["steps"] = self.steps
            kwargs["schedule"] = self.schedule
        if self.order == 2:
            kwargs["correction"] = self.correction
        if self.multistep is not None:
            kwargs["multistep"] = self.multistep
        if self.corrector:
            kwargs["corrector"] = True
        if self.lower_order_final:
            kwargs["lower_order_final"] = True
        if self.guidance_scale != 1.0:
            kwargs["guidance_scale"] = self.guidance_scale
            kwargs["guidance_interval"] = self.guidance_interval
        return kwargs

    def describe(self) -> str:
        """A short one-line description, e.g. ``o1 kappa=0.45 rho=0 K(1.2,0.8,1) even``."""
        parts = [
            f"o{self.order}" + ("-data" if self.order == 2 and self.correction == "data" else "")
        ]
        if self.multistep is not None:
            parts[0] = f"AB2-{self.multistep}" + ("+AM3" if self.corrector else "")
        if self.lower_order_final:
            parts[0] += "+final-o1"
        parts.append(f"kappa={self.kappa:.3g}")
        parts.append(f"rho={self.rho if isinstance(self.rho, str) else f'{self.rho:.3g}'}")
        if self.time_points is not None:
            parts.append("t=[" + ", ".join(f"{t:.3f}" for t in self.time_points) + "]")
        elif self.schedule is not None:
            s = self.schedule
            grid = "even" if s.gap_data == 0 else "gap 0.001"
            parts.append(f"K({s.a:.3g},{s.b:.3g},{s.c:.3g}) {grid}")
        if self.guidance_scale != 1.0:
            lo, hi = self.guidance_interval
            parts.append(f"w={self.guidance_scale:.3g} on [{lo:g},{hi:g}]")
        return " ".join(parts)


def count_nfe(
    times: Tensor,
    order: int,
    guidance_scale: float = 1.0,
    guidance_interval: tuple[float, float] = (0.0, 1.0),
) -> int:
    """The NFE :func:`ucgm_lab.sample` makes on a grid, without running it.

    Args:
        times: The grid t_0 > ... > t_{P-1} > t_P = 0, shape (P + 1,).
        order: 1 or 2 (order 2 corrects every step but the last: 2P - 1 evaluations).
        guidance_scale: A guided evaluation (scale != 1, t inside the interval) counts 2.
        guidance_interval: (lo, hi).

    Returns:
        The number of network evaluations.
    """
    lo, hi = guidance_interval
    points = [float(t) for t in times[:-1]]

    def cost(t: float) -> int:
        return 2 if guidance_scale != 1.0 and lo <= t <= hi else 1

    total = sum(cost(t) for t in points)
    if order == 2:
        total += sum(cost(t) for t in points[1:])
    return total


# ---------------------------------------------------------------------- search space
@dataclass(frozen=True)
class SearchSpace:
    """What :func:`search_sampler` may vary, and the preset values it starts from.

    Attributes:
        orders: Orders to try (1 and/or 2; order 2 needs a budget of at least 3).
        corrections: Order-2 correction forms ("noise": the paper's; "data").
        multisteps: Adams-Bashforth forms of order 1 to try (``sample(multistep=...)``:
            "velocity", "noise", "data"; empty: none). Tried when 1 is in ``orders``.
        correctors: Whether each multistep form is tried without (False) and/or with (True)
            the Adams-Moulton corrector (``sample(corrector=True)``; with rho = 0 only, so
            tried when 0 is in ``rhos``).
        kappas: Preset extrapolation ratios (refined continuously in [0, 1] afterwards).
        rhos: Preset stochastic ratios: numbers in [0, 1] and/or "auto" (constants are refined).
        shapes: Preset Kumaraswamy (a, b, c) (refined multiplicatively afterwards).
        data_gaps: Data-end gaps of the Kumaraswamy grid: 0.001 (the sampler's "uniform") and
            0 (the sampler's "even": no evaluation at t = 0.001).
        explicit_max_points: Optimise explicit time points when the best grid has at most this
            many points (0: never).
        guidance_scales: Guidance scales to try (only with labels; 1 = no guidance).
        guidance_intervals: Guidance intervals to try (with scale != 1).
        refine: Run the pattern search on kappa, rho, a, b, c after the coordinate descent.
        finalists: How many of the best candidates are run on the validation streams besides
            the best of each structure and, per deterministic structure, its best on a preset
            grid and on the "even" grid; the streams choose among them
            (:func:`robust_choice`; 1: the selection's best, only scored on the streams).
    """

    orders: tuple[int, ...] = (1, 2)
    corrections: tuple[str, ...] = ("noise", "data")
    multisteps: tuple[str, ...] = ("velocity", "noise")
    correctors: tuple[bool, ...] = (False, True)
    kappas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    rhos: tuple[Rho, ...] = (0.0, "auto", 0.25, 1.0)
    shapes: tuple[tuple[float, float, float], ...] = (
        (1.0, 1.0, 1.0),
        AUTO_KUMARASWAMY,
        (1.0, 1.0, 0.7),
        (1.0, 1.0, 1.4),
    )
    data_gaps: tuple[float, ...] = (0.001, 0.0)
    explicit_max_points: int = 4
    guidance_scales: tuple[float, ...] = (1.0,)
    guidance_intervals: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    refine: bool = True
    finalists: int = 4

    @classmethod
    def fast(cls, consistency_ratio: float = 0.0) -> SearchSpace:
        """A small space around :func:`ucgm_lab.recommended_settings` for a model's lambda.

        Order 1, plain and with the Adams-Bashforth velocity form (without and, at rho = 0,
        with the Adams-Moulton corrector), kappa = 0, rho = 0 for
        lambda = 0 (rho = 1 and "auto" for lambda > 0), three grid exponents c (0.8, 1, 1.2) on
        the "even" grid, refined by the pattern search, explicit time points up to 4 points,
        two finalists. Use with ``search_sampler(..., consistency_ratio=lambda)`` so that the
        recommendation itself is a candidate.
        """
        if not _is_unit(consistency_ratio):
            raise ValueError(
                f"consistency_ratio must be lambda in [0, 1], got {consistency_ratio!r}."
            )
        rhos: tuple[Rho, ...] = (0.0,) if consistency_ratio == 0 else (1.0, "auto")
        return cls(
            orders=(1,),
            multisteps=("velocity",),
            correctors=(False, True),
            kappas=(0.0,),
            rhos=rhos,
            shapes=((1.0, 1.0, 1.0), (1.0, 1.0, 1.2), (1.0, 1.0, 0.8)),
            data_gaps=(0.0,),
            finalists=2,
        )

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SearchSpace: {message}")

        need(
            bool(self.orders) and set(self.orders) <= {1, 2},
            f"orders must be a non-empty subset of (1, 2), got {self.orders!r}.",
        )
        need(
            bool(self.corrections) and set(self.corrections) <= {"noise", "data"},
            f"corrections must be a non-empty subset of ('noise', 'data'), got {self.corrections!r}.",
        )
        need(
            isinstance(self.finalists, int)
            and not isinstance(self.finalists, bool)
            and self.finalists >= 1,
            f"finalists must be an integer >= 1, got {self.finalists!r}.",
        )
        need(
            set(self.multisteps) <= set(MULTISTEP_FORMS),
            f"multisteps must be a subset of {MULTISTEP_FORMS}, got {self.multisteps!r}.",
        )
        need(
            bool(self.correctors) and all(isinstance(c, bool) for c in self.correctors),
            f"correctors must be a non-empty tuple of True / False, got {self.correctors!r}.",
        )
        need(
            bool(self.kappas) and all(_is_unit(k) for k in self.kappas),
            f"kappas must be numbers in [0, 1], got {self.kappas!r}.",
        )
        need(
            bool(self.rhos) and all(r == "auto" or _is_unit(r) for r in self.rhos),
            f"rhos must be numbers in [0, 1] or 'auto', got {self.rhos!r}.",
        )
        need(
            bool(self.shapes)
            and all(len(s) == 3 and all(_is_number(v) and v > 0 for v in s) for s in self.shapes),
            f"shapes must be (a, b, c) triples of positive numbers, got {self.shapes!r}.",
        )
        need(
            bool(self.data_gaps) and all(_is_number(g) and 0 <= g < 0.5 for g in self.data_gaps),
            f"data_gaps must be numbers in [0, 0.5), got {self.data_gaps!r}.",
        )
        need(
            isinstance(self.explicit_max_points, int) and self.explicit_max_points >= 0,
            f"explicit_max_points must be an integer >= 0, got {self.explicit_max_points!r}.",
        )
        need(
            bool(self.guidance_scales)
            and all(_is_number(w) and w >= 0 for w in self.guidance_scales),
            f"guidance_scales must be numbers >= 0, got {self.guidance_scales!r}.",
        )
        need(
            bool(self.guidance_intervals)
            and all(len(iv) == 2 and 0 <= iv[0] <= iv[1] <= 1 for iv in self.guidance_intervals),
            f"guidance_intervals must be (lo, hi) with 0 <= lo <= hi <= 1, got {self.guidance_intervals!r}.",
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_unit(value: object) -> bool:
    return _is_number(value) and 0.0 <= float(value) <= 1.0  # type: ignore[arg-type]


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class BudgetResult:
    """The search's outcome for one NFE budget.

    Attributes:
        budget: The requested NFE budget.
        settings: The best settings (their ``nfe`` is at most ``budget``).
        selection_score: Its metric on the selection noise (what the search descended on).
        validation_score: Its mean metric over the validation streams (what chose it among
            the finalists, :func:`robust_choice`); inf when ``max_seconds`` left no time to
            validate (the selection's best is then kept).
        validation_se: The standard error of that mean across the streams (0 with one stream).
        holdout_score: Its metric on the held-out noise (the figure to report).
        default_holdout_score: ``sample``'s defaults (order 1, kappa 0, rho 0, "even"
            grid, ``steps = budget``) on the same held-out noise.
        trials: Distinct settings run on the selection noise.
        seconds: Wall time spent on this budget.
    """

    budget: int
    settings: SamplerSettings
    selection_score: float
    validation_score: float
    holdout_score: float
    default_holdout_score: float
    trials: int
    seconds: float
    validation_se: float = 0.0


@dataclass(frozen=True)
class SearchResult:
    """All budgets of one :func:`search_sampler` call.

    Attributes:
        budgets: One :class:`BudgetResult` per requested budget, in increasing order.
        seed: The seed of the noises.
        seconds: Total wall time.
        trials: Distinct settings run, over all budgets.
        stopped_early: True if the time or trial budget cut the search short.
        num_samples: B, the samples of a selection and of a held-out run (None: not recorded).
        validation_samples: Samples of one validation run (``validation_factor`` B).
        validation_streams: S, the number of validation runs averaged per finalist.
    """

    budgets: tuple[BudgetResult, ...]
    seed: int
    seconds: float
    trials: int
    stopped_early: bool = False
    num_samples: int | None = None
    validation_samples: int | None = None
    validation_streams: int | None = None
    _by_budget: dict[int, BudgetResult] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_budget", {b.budget: b for b in self.budgets})

    def best(self, nfe: int) -> SamplerSettings:
        """The best settings for budget ``nfe`` (one of the searched budgets)."""
        if nfe not in self._by_budget:
            raise KeyError(
                f"NFE budget {nfe!r} was not searched; searched: {sorted(self._by_budget)}."
            )
        return self._by_budget[nfe].settings

    def table(self) -> str:
        """A markdown table: budget, NFE used, held-out score, defaults' held-out score, settings.

        Each score column is headed with the number of samples it was measured on, and a note
        under the table says so: sample-based distances (Frechet distances, W2) are biased
        upwards by a finite sample, more for fewer samples, so the validation column (on
        ``validation_factor`` times more samples) is not comparable with the selection and
        held-out columns; compare values within a column.
        """
        n, nv, s = self.num_samples, self.validation_samples, self.validation_streams
        at = f" (n = {n})" if n else ""
        val = f" (mean of {s} runs, n = {nv} each)" if nv and s else ""
        lines = [
            f"| budget | NFE | held-out score{at} | selection{at} | validation{val} "
            f"| defaults (held-out{', n = ' + str(n) if n else ''}) | settings |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in self.budgets:
            lines.append(
                f"| {b.budget} | {b.settings.nfe} | {b.holdout_score:.4f} | {b.selection_score:.4f} "
                f"| {b.validation_score:.4f} +- {b.validation_se:.4f} | {b.default_holdout_score:.4f} "
                f"| {b.settings.describe()} |"
            )
        if n and nv and nv != n:
            lines.append(
                f"\nScores depend on the number of samples (a Frechet distance or W2 of a finite "
                f"sample is biased upwards, more for fewer samples): the validation column, on "
                f"{nv} samples per run, is not comparable with the others, on {n}; compare values "
                "within a column."
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------- metrics
class SlicedW2:
    """Sliced W2 with fixed directions, fast for repeated scoring against one reference.

    The value of :func:`ucgm_lab.metrics.sliced_wasserstein2` (POT's estimator, the same
    ``seed`` and hence the same directions). For clouds of equal size it is computed by
    sorting the projections (exact for uniform weights) with NumPy, about ten times faster
    than torch's CPU sort, and the sorted projections of the last reference are cached:
    a search scores hundreds of clouds against the same reference. The cache is keyed by the
    reference's content, not its address: a private copy of the last reference is compared
    exactly (``torch.equal``, one pass over M x 2 numbers, far cheaper than the sort), so a
    new reference allocated where a freed one lived, or one edited in place, is re-sorted.

    A reference k times larger than the samples (M = k N, 2D) is also exact and fast: sorted
    sample j is matched with the j-th block of k sorted reference points, so per direction
    W2^2 = (1 / M) sum_j (k s_j^2 - 2 s_j S_j + Q_j) with the block sums S_j, Q_j of the
    reference's projections and their squares (cached). A large reference removes the
    reference's share of the metric's sampling noise, which is what a search that selects
    among close settings needs (docs/architecture.md, "The sampler-settings search").

    Args:
        n_projections: Number of directions.
        seed: Seed of the directions.
    """

    def __init__(self, n_projections: int = 256, seed: int = 0) -> None:
        import ot

        if (
            isinstance(n_projections, bool)
            or not isinstance(n_projections, int)
            or n_projections < 1
        ):
            raise ValueError(f"n_projections must be a positive integer, got {n_projections!r}.")
        self.n_projections, self.seed = n_projections, seed
        self._theta = np.asarray(ot.sliced.get_random_projections(2, n_projections, seed)).T
        self._ref_copy: Tensor | None = None
        self._ref_sorted: np.ndarray | None = None
        self._blocks: tuple[int, np.ndarray, np.ndarray] | None = None

    def _sorted(self, points: Tensor) -> np.ndarray:
        return np.sort(self._theta @ points.detach().cpu().double().numpy().T, axis=-1)

    def _is_cached(self, reference: Tensor) -> bool:
        """Whether ``reference`` holds exactly the numbers of the cached one."""
        cached = self._ref_copy
        return (
            cached is not None
            and cached.shape == reference.shape
            and cached.dtype == reference.dtype
            and cached.device == reference.device
            and bool(torch.equal(cached, reference.detach()))
        )

    def __call__(self, samples: Tensor, reference: Tensor) -> float:
        """Sliced W2 between ``samples`` (N, 2) and ``reference`` (M, 2)."""
        n, m = samples.shape[0], reference.shape[0]
        plain = samples.ndim == 2 == reference.ndim and samples.shape[1] == 2 == reference.shape[1]
        if not plain or n == 0 or m % n != 0:
            from .metrics import sliced_wasserstein2

            return sliced_wasserstein2(
                samples, reference, n_projections=self.n_projections, seed=self.seed
            )
        if not self._is_cached(reference):
            self._ref_sorted, self._blocks = self._sorted(reference), None
            self._ref_copy = reference.detach().clone()
        if m == n:
            diff = self._sorted(samples) - self._ref_sorted
            return float(np.sqrt(np.mean(diff * diff)))
        k = m // n
        if self._blocks is None or self._blocks[0] != n:
            ref = self._ref_sorted.reshape(self.n_projections, n, k)
            self._blocks = (n, ref.sum(-1), (ref * ref).sum(-1))
        _, block_sum, block_sq = self._blocks
        s = self._sorted(samples)
        per_point = k * s * s - 2 * s * block_sum + block_sq
        return float(np.sqrt(max(per_point.sum() / (m * self.n_projections), 0.0)))


def default_metric(reference: Tensor) -> Metric:
    """The default metric for a kind of data (lower is better).

    * 2D points (M, 2): sliced W2 with 256 fixed directions (:class:`SlicedW2`, the value
      of :func:`ucgm_lab.metrics.sliced_wasserstein2`).
    * digits images (M, 1, 8, 8): the digits Frechet distance
      (:func:`ucgm_lab.metrics.digits.digits_frechet`; the reference is not used, the metric
      compares with the digits train split).
    * other images (M, C, H, W): the Frechet distance in the features of a fixed random CNN
      (:class:`ucgm_lab.metrics.image_frechet.ImageFrechet`; offline, any shape).

    Raises:
        ValueError: For any other shape (pass ``metric=`` yourself).
    """
    if reference.ndim == 2 and reference.shape[1] == 2:
        return SlicedW2()
    if tuple(reference.shape[1:]) == (1, 8, 8):
        from .metrics.digits import digits_frechet

        frechet = digits_frechet()
        return lambda samples, _reference: frechet.distance(samples)
    if reference.ndim == 4:
        from .metrics.image_frechet import ImageFrechet

        return ImageFrechet()
    raise ValueError(
        f"No default metric for data of shape {tuple(reference.shape)}: the defaults cover 2D "
        "points (M, 2), digits images (M, 1, 8, 8) and other images (M, C, H, W). Pass "
        "metric=callable(samples, reference) -> float."
    )


# ---------------------------------------------------------------------- the search
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
                _clock() + mean * (1 + self.reserve_runs) > self.deadline
            ):
                raise _BudgetSpentError
        t0 = _clock()
        value = self.run(settings)
        self.run_seconds += _clock() - t0
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
            out = sample(
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


def _proper(grid: Tensor) -> bool:
    """A grid t_0 > ... > t_{P-1} > t_P = 0: every point above 0 and strictly decreasing.

    The pattern search can push a Kumaraswamy shape so far that points round to 0 or merge
    in float64; the sampler would then make fewer evaluations than the grid has points.
    """
    return bool((grid[:-1] > 0).all()) and bool((grid[:-1] > grid[1:]).all())


def _fit(settings: SamplerSettings, budget: int) -> SamplerSettings | None:
    """``settings`` with the largest grid whose exact NFE is at most ``budget`` (None if none)."""
    kw = dict(
        order=settings.order,
        guidance_scale=settings.guidance_scale,
        guidance_interval=settings.guidance_interval,
    )
    if settings.time_points is not None:
        grid = torch.tensor([*settings.time_points, 0.0], dtype=torch.float64)
        if not _proper(grid):
            return None
        nfe = count_nfe(grid, **kw)
        return replace(settings, nfe=nfe, steps=None, schedule=None) if nfe <= budget else None
    for steps in range(budget, 0, -1):
        grid = time_grid(steps, settings.order, settings.schedule, None)
        if not _proper(grid):
            return None  # an extreme shape: points at t = 0 or merged in float64
        if settings.order == 2 and grid.numel() < 3:
            return None  # no corrected step: that is order 1
        nfe = count_nfe(grid, **kw)
        if nfe <= budget:
            return replace(settings, nfe=nfe, steps=steps)
    return None


def _preset_schedules(space: SearchSpace) -> list[KumaraswamySchedule]:
    """The preset grids: every shape with every data-end gap."""
    return [
        KumaraswamySchedule(a, b, c, gap_data=g)
        for g in space.data_gaps
        for (a, b, c) in space.shapes
    ]


def _readable_points(points: Sequence[float]) -> list[float]:
    """Time points rounded to 6 decimals, so that stored settings stay readable.

    Not when a point near t = 0 would round to 0 or two points would merge: then as they are.
    """
    rounded = [round(t, 6) for t in points]
    if all(a > b for a, b in zip(rounded, [*rounded[1:], 0.0], strict=True)):
        return rounded
    return list(points)


def _grid_points(settings: SamplerSettings) -> list[float]:
    grid = (
        torch.tensor([*settings.time_points, 0.0], dtype=torch.float64)
        if settings.time_points is not None
        else time_grid(settings.steps, settings.order, settings.schedule, None)
    )
    return [float(t) for t in grid[:-1]]


def _search_budget(
    runner: _Runner,
    budget: int,
    space: SearchSpace,
    smaller: Sequence[SamplerSettings] = (),
    exact_nfe: bool = False,
) -> SamplerSettings:
    """Coordinate descent per structure, pattern search, explicit time points (module doc).

    ``smaller`` are the winners of smaller budgets: each is a candidate as it is (it fits
    the budget, so a larger budget never selects worse on the selection noise) and with its
    grid refitted to this budget. With ``exact_nfe`` only candidates with NFE = budget count.
    """
    best: list[Any] = [None, math.inf]  # settings, score

    def consider(candidate: SamplerSettings | None) -> float:
        if candidate is None:
            return math.inf
        fitted = _fit(candidate, budget)
        if fitted is None or (exact_nfe and fitted.nfe != budget):
            return math.inf
        value = runner.score(fitted)
        if value < best[1] or best[0] is None:
            best[0], best[1] = fitted, value
        return value

    def descend(
        start: SamplerSettings,
        axes: list[Callable[[SamplerSettings], list[SamplerSettings]]],
        rounds: int = 2,
    ) -> SamplerSettings:
        current, current_score = start, consider(start)
        for _ in range(rounds):
            improved = False
            for axis in axes:
                for candidate in axis(current):
                    value = consider(candidate)
                    if value < current_score - 1e-12:
                        current, current_score, improved = candidate, value, True
            if not improved:
                break
        return current

    for previous in smaller:
        if not exact_nfe:
            value = runner.score(previous)
            if value < best[1] or best[0] is None:
                best[0], best[1] = previous, value
        consider(previous)

    schedules = _preset_schedules(space)
    guidance = [(1.0, (0.0, 1.0))]
    if runner.labels is not None:
        guidance += [
            (w, iv) for w in space.guidance_scales if w != 1.0 for iv in space.guidance_intervals
        ]
    axes = [
        lambda s: [replace(s, schedule=sch) for sch in schedules],
        lambda s: [replace(s, kappa=float(k)) for k in space.kappas] if s.multistep is None else [],
        lambda s: [
            replace(s, rho=r if r == "auto" else float(r))
            for r in space.rhos
            if not s.corrector or r == 0  # the corrector needs rho = 0
        ],
    ]
    if len(guidance) > 1:
        axes.append(
            lambda s: [
                replace(s, guidance_scale=float(w), guidance_interval=tuple(iv))
                for w, iv in guidance
            ]
        )

    structures: list[tuple[int, str, str | None, bool]] = []
    if 1 in space.orders:
        structures.append((1, "noise", None, False))
        correctors = [c for c in space.correctors if not c or 0.0 in space.rhos]
        structures += [
            (1, "noise", m, c) for m in space.multisteps for c in correctors if budget >= 2
        ]
    if 2 in space.orders and budget >= 3:
        structures += [(2, c, None, False) for c in space.corrections]
    if not structures:
        raise ValueError(
            f"No order in {space.orders} fits a budget of {budget} NFE (order 2 needs at least 3)."
        )
    # the first structure gets the full descent from the presets' first values; the others
    # start from its best (rho and grid transfer well between orders): the multistep forms
    # (kappa 0, grids of their own) for two rounds, order 2 for one
    first: SamplerSettings | None = None
    for order, correction, multistep, corrector in structures:
        if first is None:
            start = SamplerSettings(
                nfe=0,
                order=order,
                correction=correction,
                multistep=multistep,
                corrector=corrector,
                schedule=schedules[0],
                kappa=0.0 if multistep else float(space.kappas[0]),
                rho=space.rhos[0] if space.rhos[0] == "auto" else float(space.rhos[0]),
            )
            first = descend(start, axes, rounds=2)
        else:
            # the grid is searched at rho = 0 first (paired with the other deterministic
            # candidates: the same noise, no fresh noise), then rho
            kappa = 0.0 if multistep else first.kappa
            rho: Rho = 0.0 if 0.0 in space.rhos else first.rho
            descend(
                replace(
                    first,
                    order=order,
                    correction=correction,
                    multistep=multistep,
                    corrector=corrector,
                    kappa=kappa,
                    rho=rho,
                ),
                axes,
                rounds=2 if multistep else 1,
            )

    if best[0] is None:
        raise ValueError(f"No setting fits a budget of {budget} NFE.")

    def pattern(start: SamplerSettings, deterministic: bool) -> None:
        """Pattern search on kappa, rho (not when ``deterministic``), a, b, c."""
        current = start
        for step in (0.1, 0.03, 0.01):
            moves = [
                lambda s, d=d: (
                    [replace(s, kappa=round(min(max(s.kappa + d, 0.0), 1.0), 4))]
                    if s.multistep is None
                    else []
                )
                for d in (-step, step)
            ]
            if not deterministic:
                moves += [
                    lambda s, d=d: (
                        [replace(s, rho=round(min(max(s.rho + d, 0.0), 1.0), 4))]
                        if not isinstance(s.rho, str)
                        else []
                    )
                    for d in (-step, step)
                ]
            for name in ("a", "b", "c"):
                for f in (1 - 2 * step, 1 / (1 - 2 * step)):
                    moves.append(
                        lambda s, name=name, f=f: (
                            [
                                replace(
                                    s,
                                    schedule=replace(
                                        s.schedule,
                                        **{name: round(getattr(s.schedule, name) * f, 4)},
                                    ),
                                )
                            ]
                            if s.schedule is not None
                            else []
                        )
                    )
            current = descend(current, moves, _PATTERN_ROUNDS)

    def explicit_points(chosen: SamplerSettings) -> None:
        points = _readable_points(_grid_points(chosen))
        if 0 < len(points) <= space.explicit_max_points:
            explicit = replace(chosen, time_points=tuple(points), steps=None, schedule=None)
            for step in (1.0, 0.3, 0.1, 0.03):
                moves = []
                for i in range(len(points)):
                    for d in (-step, step):
                        moves.append(lambda s, i=i, d=d: [_move_point(s, i, d)])
                explicit = descend(explicit, moves, rounds=_PATTERN_ROUNDS)

    def best_fitting(stochastic: bool) -> SamplerSettings | None:
        """The best candidate that fits, with rho > 0 (``stochastic``) or rho = 0."""
        fits = [
            (v, i, c)
            for i, (c, v) in enumerate(runner.cache.items())
            if (c.rho != 0.0) == stochastic
            and math.isfinite(v)
            and c.nfe <= budget
            and (not exact_nfe or c.nfe == budget)
        ]
        return min(fits)[2] if fits else None

    # the best deterministic and the best stochastic candidate are both refined, whichever
    # leads: the validation streams compare the two kinds (robust_choice), so neither may reach
    # them unrefined (a stochastic optimum can need its own time points: on the zoo's
    # 8gaussians-cond-lam0 at 2 NFE, rho = 0.15 on its own two points scores 0.013 where the
    # best rho = 0 setting scores 0.044 and rho = 0 on those points 0.075)
    for stochastic in (best[0].rho != 0.0, best[0].rho == 0.0):
        lead = best_fitting(stochastic)
        if lead is None:
            continue
        if space.refine:
            pattern(lead, deterministic=not stochastic)
        explicit_points(best_fitting(stochastic))
    return best[0]


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


def _move_point(settings: SamplerSettings, i: int, delta: float) -> SamplerSettings | None:
    """Time point i moved by ``delta`` in logit(t), clipped to [1e-4, 0.9999].

    Returns None if the grid would not stay decreasing or the point does not move.
    """
    pts = list(settings.time_points or ())
    t = min(max(pts[i], 1e-4), 0.9999)
    logit = math.log(t / (1 - t)) + delta
    pts[i] = round(min(max(1 / (1 + math.exp(-logit)), 1e-4), 0.9999), 6)
    upper = 1.0 if i == 0 else pts[i - 1]
    lower = 0.0 if i == len(pts) - 1 else pts[i + 1]
    if (
        not lower < pts[i] <= 1.0
        or (i > 0 and pts[i] >= upper)
        or pts[i] == settings.time_points[i]
    ):
        return None
    return replace(settings, time_points=tuple(pts))


def search_sampler(
    model: Model,
    transport: str | Transport,
    reference_data: Tensor,
    nfe: Sequence[int] = (1, 2, 4, 8, 16),
    metric: Metric | None = None,
    *,
    space: SearchSpace | None = None,
    num_samples: int | None = None,
    labels: Tensor | None = None,
    null_class: int | None = None,
    holdout_reference: Tensor | None = None,
    validation_reference: Tensor | None = None,
    selection_noise: Tensor | None = None,
    holdout_noise: Tensor | None = None,
    validation_noise: Tensor | Sequence[Tensor] | None = None,
    validation_factor: int = 2,
    validation_streams: int | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    max_trials: int | None = None,
    exact_nfe: bool = False,
    consistency_ratio: float | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search the UCGM-S settings (Alg. 2) that minimise ``metric`` at each NFE budget.

    Selection and report use disjoint noises (see the module docstring): the reported
    ``holdout_score`` of each budget is never measured on the noise that chose the settings.

    Args:
        model: ``model(x_t, t, y=None) -> F`` (any model :func:`ucgm_lab.sample` accepts).
        transport: The transport it was trained with.
        reference_data: Data to score against, shape (M, ...); the samples get its shape (B, ...).
        nfe: NFE budgets (distinct positive integers).
        metric: ``metric(samples, reference) -> float``, lower is better. Default: sliced W2 for
            2D points, the digits Frechet distance for (M, 1, 8, 8), a Frechet distance in
            fixed random CNN features for other images (M, C, H, W) (:func:`default_metric`).
        space: What to search (:class:`SearchSpace`; guidance needs ``labels``).
        num_samples: B, samples per run (default M; equal sizes make the default 2D metric fast).
        labels: Class ids of the B samples, shape (B,), for conditional models.
        null_class: The unconditional class id for guidance (default ``model.null_class``).
        holdout_reference: Reference for the held-out figures (default ``reference_data``).
        validation_reference: Reference for the validation runs (default ``reference_data``).
        selection_noise, holdout_noise: Explicit initial noises, shape (B, ...) (default:
            drawn from ``seed``, disjoint streams).
        validation_noise: Explicit validation noises: one tensor (one stream) or a sequence
            of them, each of shape (``validation_factor`` B, ...) (default: drawn from
            ``seed``). The held-out noise must differ from all the others, and the validation
            streams from the selection noise and from each other.
        validation_factor: Each validation stream has this many times ``num_samples`` points
            (labels repeated): the finalists' scores are that much less noisy, so that a
            candidate that merely suited the selection noise does not win.
        validation_streams: S, the number of validation streams (each its own initial noise
            and fresh-noise seed); the finalists are chosen by their mean over the S streams
            with the tie rule of :func:`robust_choice` (a stochastic setting must win by more
            than its standard error across the streams). Default: 4, or the number of
            ``validation_noise`` tensors given.
        seed: Seed of the noises and of the fresh-noise streams (rho > 0).
        max_seconds: Wall-time budget of the whole search (shared evenly by the remaining
            budgets). Each budget stops its selection when the validation and held-out runs
            still to come (estimated from the mean selection run) would not fit, and validates
            its finalists, best first, while they fit (none when even the best does not: its
            ``validation_score`` is then inf). At least one selection run and the two held-out
            runs (the choice and the defaults) are always made, so a search exceeds
            ``max_seconds`` only when these minimal runs alone do not fit (tested within 10%
            on a fake clock).
        max_trials: Most distinct settings run per NFE budget.
        exact_nfe: Keep only settings whose NFE equals the budget (default: at most the
            budget; order 2 then cannot serve even budgets).
        consistency_ratio: The model's lambda: start every budget from
            :func:`ucgm_lab.recommended_settings` for it (a candidate that always reaches
            the validation streams, so the search keeps it unless something beats it there).
            None (default): no such start.
        progress: Show a tqdm progress bar.

    Returns:
        :class:`SearchResult`: per budget the best :class:`SamplerSettings` (their
        ``as_kwargs()`` go to :func:`ucgm_lab.sample`), selection and held-out scores.

    Raises:
        ValueError / TypeError: Bad inputs (the message says what is allowed).
    """
    start = _clock()
    if not callable(model):
        hint = (
            " (for an adapted model pass adapted.model and adapted.transport)"
            if hasattr(model, "transport")
            else ""
        )
        raise TypeError(
            f"model must be callable as model(x_t, t, y=None) -> F, got {type(model).__name__}{hint}."
        )
    tr = get_transport(transport)
    budgets = _check_budgets(nfe)
    if (
        not isinstance(reference_data, Tensor)
        or reference_data.ndim < 2
        or reference_data.shape[0] < 2
    ):
        raise ValueError(
            "reference_data must be a tensor of shape (M, ...) with M >= 2 data points, got "
            + (
                f"shape {tuple(reference_data.shape)}."
                if isinstance(reference_data, Tensor)
                else f"{type(reference_data).__name__}."
            )
        )
    if not bool(torch.isfinite(reference_data).all()):
        raise ValueError("reference_data contains NaN or infinite values.")
    if holdout_reference is None:
        holdout_reference = reference_data
    elif (
        not isinstance(holdout_reference, Tensor)
        or holdout_reference.shape[1:] != reference_data.shape[1:]
    ):
        raise ValueError("holdout_reference must be a tensor shaped like reference_data (M', ...).")
    if validation_reference is None:
        validation_reference = reference_data
    elif (
        not isinstance(validation_reference, Tensor)
        or validation_reference.shape[1:] != reference_data.shape[1:]
    ):
        raise ValueError(
            "validation_reference must be a tensor shaped like reference_data (M', ...)."
        )
    for name, given in (
        ("holdout_reference", holdout_reference),
        ("validation_reference", validation_reference),
    ):
        if given is not reference_data and not bool(torch.isfinite(given).all()):
            raise ValueError(
                f"{name} contains NaN or infinite values: every reference point must be finite."
            )
    if metric is None:
        metric = default_metric(reference_data)
    elif not callable(metric):
        raise TypeError(
            f"metric must be callable(samples, reference) -> float, got {type(metric).__name__}."
        )
    space = space or SearchSpace()
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}.")
    if (
        isinstance(validation_factor, bool)
        or not isinstance(validation_factor, int)
        or validation_factor < 1
    ):
        raise ValueError(
            f"validation_factor must be a positive integer, got {validation_factor!r}."
        )
    if isinstance(validation_noise, Tensor):
        validation_noise = [validation_noise]
    elif validation_noise is not None:
        validation_noise = list(validation_noise)
        if not validation_noise:
            raise ValueError("validation_noise must not be an empty sequence (or pass None).")
    if validation_streams is None:
        validation_streams = 4 if validation_noise is None else len(validation_noise)
    if (
        isinstance(validation_streams, bool)
        or not isinstance(validation_streams, int)
        or validation_streams < 1
    ):
        raise ValueError(
            f"validation_streams must be a positive integer, got {validation_streams!r}."
        )
    if validation_noise is not None and len(validation_noise) != validation_streams:
        raise ValueError(
            f"validation_noise has {len(validation_noise)} streams but validation_streams is "
            f"{validation_streams}: give one tensor per stream."
        )
    if not isinstance(exact_nfe, bool):
        raise TypeError(f"exact_nfe must be True or False, got {exact_nfe!r}.")
    if consistency_ratio is not None and not _is_unit(consistency_ratio):
        raise ValueError(
            f"consistency_ratio must be lambda in [0, 1] or None, got {consistency_ratio!r}."
        )
    if max_seconds is not None and not (_is_number(max_seconds) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}.")
    if max_trials is not None and (
        isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1
    ):
        raise ValueError(f"max_trials must be a positive integer or None, got {max_trials!r}.")
    if num_samples is None:
        num_samples = (
            int(labels.shape[0]) if isinstance(labels, Tensor) else int(reference_data.shape[0])
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}.")
    if labels is not None:
        if (
            not isinstance(labels, Tensor)
            or labels.shape != (num_samples,)
            or labels.is_floating_point()
        ):
            raise ValueError(
                f"labels must be an integer tensor of shape ({num_samples},) (one class id per sample)."
            )
        if any(w != 1.0 for w in space.guidance_scales):
            null_class = resolve_null_class(model, null_class)
            if null_class is None:
                raise ValueError(
                    "Guidance needs the null class id: pass null_class=... or give the model `null_class`."
                )
    elif any(w != 1.0 for w in space.guidance_scales):
        raise ValueError(
            "space.guidance_scales other than 1 need labels (class ids of the samples)."
        )

    shape = (num_samples, *reference_data.shape[1:])
    device, dtype = (
        reference_data.device,
        (reference_data.dtype if reference_data.is_floating_point() else torch.float32),
    )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    draws = [torch.randn(shape, generator=gen, dtype=dtype).to(device) for _ in range(2)]
    fresh_seeds = [int(v) for v in torch.randint(0, 2**62, (2,), generator=gen)]
    val_shape = (num_samples * validation_factor, *reference_data.shape[1:])
    draws.append(torch.randn(val_shape, generator=gen, dtype=dtype).to(device))
    fresh_seeds.append(int(torch.randint(0, 2**62, (1,), generator=gen)))
    for _ in range(validation_streams - 1):  # further streams after the first (stable seeds)
        draws.append(torch.randn(val_shape, generator=gen, dtype=dtype).to(device))
        fresh_seeds.append(int(torch.randint(0, 2**62, (1,), generator=gen)))
    given_all = [selection_noise, holdout_noise] + (
        validation_noise if validation_noise is not None else [None] * validation_streams
    )
    names = ["selection_noise", "holdout_noise"] + [
        f"validation_noise[{i}]"
        if validation_noise is not None and len(validation_noise) > 1
        else "validation_noise"
        for i in range(validation_streams)
    ]
    noises = []
    for given, drawn, name in zip(given_all, draws, names, strict=True):
        if given is None:
            noises.append(drawn)
        elif not isinstance(given, Tensor) or tuple(given.shape) != tuple(drawn.shape):
            raise ValueError(
                f"{name} must be a tensor of shape {tuple(drawn.shape)}, got {getattr(given, 'shape', type(given).__name__)}."
            )
        else:
            noises.append(given)

    def same(a: Tensor, b: Tensor) -> bool:
        return a.shape == b.shape and bool(torch.equal(a, b))

    if any(same(noises[1], other) for i, other in enumerate(noises) if i != 1):
        raise ValueError(
            "holdout_noise must differ from selection_noise and validation_noise (the reported "
            "figure must not be measured on a noise that chose the settings)."
        )
    for i in range(2, len(noises)):
        if same(noises[i], noises[0]) or any(same(noises[i], noises[j]) for j in range(2, i)):
            raise ValueError(
                "the validation streams must differ from selection_noise and from each other "
                "(their spread is what the choice among the finalists weighs)."
            )

    def runner(which: int, deadline: float | None, on_trial=None) -> _Runner:
        return _Runner(
            model,
            tr,
            noises[which],
            (reference_data, holdout_reference)[which] if which < 2 else validation_reference,
            metric,
            labels if which < 2 or labels is None else labels.repeat(validation_factor),
            null_class,
            fresh_seeds[which],
            deadline,
            max_trials,
            on_trial=on_trial,
        )

    results = []
    stopped = False
    total_trials = 0
    bar = tqdm(total=len(budgets), desc="search_sampler", disable=not progress, leave=False)
    holdout = runner(1, None)
    validations = [runner(2 + i, None) for i in range(validation_streams)]
    for k, budget in enumerate(budgets):
        t0 = _clock()
        deadline = None
        if max_seconds is not None:
            remaining = max_seconds - (t0 - start)
            deadline = t0 + max(remaining, 0.0) / (len(budgets) - k)

        def on_trial(r: _Runner, budget: int = budget) -> None:
            bar.set_postfix(nfe=budget, trials=r.trials, best=f"{min(r.cache.values()):.4g}")

        selection = runner(0, deadline, on_trial)
        # the validation and held-out runs that follow the selection, in selection runs
        selection.reserve_runs = space.finalists * validation_streams * validation_factor + 2
        starts = [r.settings for r in results]
        if consistency_ratio is not None:
            from .recommended import recommended_settings

            starts.append(recommended_settings(budget, consistency_ratio, tr))
        try:
            best = _search_budget(selection, budget, space, starts, exact_nfe)
        except _BudgetSpentError:
            stopped = True
            if not selection.cache:  # not even one run: run the recommendation (with
                # consistency_ratio) or the defaults outside the budget
                fallback = (
                    starts[-1]
                    if consistency_ratio is not None
                    else _fit(SamplerSettings(nfe=0, schedule=KumaraswamySchedule.even()), budget)
                )
                selection.score(fallback, budgeted=False)
            best = min(selection.cache, key=selection.cache.get)
        finalists = (
            _finalists(selection.cache, space.finalists, _preset_schedules(space))
            if space.finalists > 1
            else []
        )
        if best in finalists:
            finalists.remove(best)
        finalists.insert(0, best)
        if consistency_ratio is not None and starts[-1] in selection.cache:
            if starts[-1] in finalists:
                finalists.remove(starts[-1])
            finalists.insert(1, starts[-1])  # the recommendation always reaches validation
        checked = {}
        per_finalist = selection.mean_run_seconds() * validation_streams * validation_factor
        for f in finalists:
            # within max_seconds: validate the finalists (best first) while they fit, the
            # best one too: unvalidated, the selection's best is kept (one candidate needs no
            # choice), and the validation of even one finalist can cost several selection
            # runs (``validation_streams`` x ``validation_factor``), far beyond 10% of the budget
            after = per_finalist + 2 * selection.mean_run_seconds()  # and the held-out runs
            if deadline is not None and _clock() + after > deadline:
                stopped = True
                break
            checked[f] = [v.score(f, budgeted=False) for v in validations]
        if not any(all(math.isfinite(x) for x in scores) for scores in checked.values()):
            choice = Choice(best, math.inf, 0.0, best)
        else:
            # the recommendation (with consistency_ratio) is kept unless beaten beyond the SE
            prefer = starts[-1] if consistency_ratio is not None else None
            choice = robust_choice(checked, tiebreak=selection.cache, prefer=prefer)
        best = choice.settings
        default = SamplerSettings(nfe=budget, steps=budget, schedule=KumaraswamySchedule.even())
        results.append(
            BudgetResult(
                budget=budget,
                settings=best,
                selection_score=selection.cache[best],
                validation_score=choice.mean,
                validation_se=choice.se,
                holdout_score=holdout.score(best, budgeted=False),
                default_holdout_score=holdout.score(default, budgeted=False),
                trials=selection.trials,
                seconds=_clock() - t0,
            )
        )
        total_trials += selection.trials
        bar.update(1)
    bar.close()
    return SearchResult(
        tuple(results),
        seed,
        _clock() - start,
        total_trials,
        stopped,
        num_samples=num_samples,
        validation_samples=num_samples * validation_factor,
        validation_streams=validation_streams,
    )


def _check_budgets(nfe: Sequence[int] | int) -> list[int]:
    if isinstance(nfe, int) and not isinstance(nfe, bool):
        nfe = [nfe]
    try:
        values = list(nfe)
    except TypeError:
        raise TypeError(
            f"nfe must be a positive integer or a sequence of them, got {nfe!r}."
        ) from None
    if not values:
        raise ValueError("nfe must not be empty (give NFE budgets such as [1, 2, 4, 8, 16]).")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"NFE budgets must be positive integers, got {v!r} in {values!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"NFE budgets must be distinct, got {values!r}.")
    return sorted(values)
