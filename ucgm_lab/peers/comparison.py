"""UCGM-S against the peers' own solvers on small 2D models (paper Tab. 3 in miniature).

Each sampler -- a peer solver (:mod:`ucgm_lab.peers.solvers`) or UCGM-S through the model's
adapter, sweeping kappa and the order -- is scored against held-out data (sliced W2 by
default) as a function of the number of network evaluations (NFE). The points are the
library's one :class:`~ucgm_lab.evaluation.QualityPoint` type (``model``: the peer library,
``family``: "peer" or "ucgm"); :func:`ucgm_lab.evaluation.format_quality_table` tabulates them
(``fill_below=True`` for the adaptive solvers) and :func:`ucgm_lab.viz.quality.plot_quality_vs_nfe`
draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from toy_data import sample_2d
from ucgm_lab.adapters.base import check_choice
from ucgm_lab.evaluation import QualityPoint
from ucgm_lab.metrics import metric_floor, sliced_wasserstein2
from ucgm_lab.metrics.two_d import FloorResult
from ucgm_lab.schedules import KumaraswamySchedule, get_schedule

from .solvers import EVALS_PER_STEP, PEER_METHODS, peer_solve
from .training import PeerModel

__all__ = [
    "DEFAULT_NFES",
    "DEFAULT_TOLERANCES",
    "PEER_METRIC",
    "UCGM_SCHEDULES",
    "Metric",
    "compare_samplers",
    "data_floor",
    "format_match_table",
    "make_metric",
    "nfe_to_reach",
    "peer_curve",
    "peer_targets",
    "ucgm_curve",
    "ucgm_schedule",
]

DEFAULT_NFES: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 50, 64, 80, 100)
DEFAULT_TOLERANCES: tuple[float, ...] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5)
PEER_METRIC = "sliced_w2"
"""Key of the comparison's metric in ``QualityPoint.metrics``."""

Metric = Callable[[Tensor, Tensor], float]

UCGM_SCHEDULES: tuple[str, ...] = ("open", "uniform", "auto")


def ucgm_schedule(name: str) -> KumaraswamySchedule:
    """A UCGM-S time grid by name, for comparisons with fixed-step peer solvers.

    * ``"open"``: the uniform grid without the data-end gap, t_i = 1 - u_i with
      u = linspace(0.001, 1, N + 1)[:-1]: the peers' Euler grid started at t = 0.999, so that
      every evaluation does work (the last step jumps from t = 1/N-ish to the data); the
      sampler's default grid ("even") is the same.
    * ``"uniform"``: the reference implementation's grid (gaps 0.001 at both ends; the last evaluation sits
      at t = 0.001, where it barely changes the sample: costly at small N).
    * ``"auto"``: the paper's Kumaraswamy "Auto" schedule (1.17, 0.8, 1.1).

    Args:
        name: One of :data:`UCGM_SCHEDULES`.

    Returns:
        The schedule.
    """
    check_choice(name, UCGM_SCHEDULES, "UCGM-S schedule")
    return get_schedule(name)


def make_metric(n_projections: int = 256, seed: int = 0) -> Metric:
    """Sliced W2 to the reference with fixed random directions (lower is better).

    The value is that of :func:`ucgm_lab.metrics.sliced_wasserstein2` (POT's estimator with
    the same ``seed``, hence the same directions). For clouds of equal size it is computed
    here by sorting the projections, which is exact for uniform weights and several times
    faster than POT's quantile code, so that sweeps can afford large clouds (the metric's
    sampling noise falls like n^-1/2, and only well below the model's own error do samplers
    separate). The same directions score every sampler.

    Args:
        n_projections: Number of directions.
        seed: Seed of the directions.

    Returns:
        ``metric(samples, reference) -> float``.
    """
    import ot

    theta = torch.as_tensor(
        np.asarray(ot.sliced.get_random_projections(2, n_projections, seed)), dtype=torch.float64
    )

    def metric(samples: Tensor, reference: Tensor) -> float:
        if samples.shape != reference.shape or samples.ndim != 2 or samples.shape[1] != 2:
            return sliced_wasserstein2(samples, reference, n_projections=n_projections, seed=seed)
        pa = (samples.detach().cpu().double() @ theta).sort(dim=0).values
        pb = (reference.detach().cpu().double() @ theta).sort(dim=0).values
        return float(((pa - pb) ** 2).mean().sqrt())

    return metric


_default_metric = make_metric()


def peer_curve(
    peer: PeerModel,
    noise: Tensor,
    reference: Tensor,
    method: str,
    nfes: Sequence[int] = DEFAULT_NFES,
    tolerances: Sequence[float] = DEFAULT_TOLERANCES,
    metric: Metric = _default_metric,
) -> list[QualityPoint]:
    """Score a peer solver at several budgets.

    Fixed-step methods run ``nfe // evals_per_step`` steps for each requested NFE (settings
    that give the same NFE are run once); adaptive methods run once per tolerance.

    Args:
        peer: The model.
        noise: x_0, shape (B, 2).
        reference: Held-out data, shape (M, 2).
        method: torchdiffeq method name.
        nfes: NFE budgets for fixed-step methods.
        tolerances: rtol = atol values for adaptive methods.
        metric: ``metric(samples, reference) -> float``.

    Returns:
        One :class:`QualityPoint` per distinct run, sorted by NFE.
    """
    points = []
    if method in EVALS_PER_STEP:
        per = EVALS_PER_STEP[method]
        for steps in sorted({n // per for n in nfes if n // per >= 1}):
            res = peer_solve(peer, noise, method, steps=steps)
            points.append(
                QualityPoint(
                    f"peer {method}",
                    steps,
                    res.nfe,
                    {PEER_METRIC: metric(res.sample, reference)},
                    {"method": method},
                    model=peer.library,
                    family="peer",
                )
            )
    else:
        for tol in tolerances:
            res = peer_solve(peer, noise, method, tolerance=tol)
            points.append(
                QualityPoint(
                    f"peer {method}",
                    None,
                    res.nfe,
                    {PEER_METRIC: metric(res.sample, reference)},
                    {"method": method, "tolerance": tol},
                    model=peer.library,
                    family="peer",
                )
            )
    return sorted(points, key=lambda p: p.nfe)


def ucgm_curve(
    peer: PeerModel,
    noise: Tensor,
    reference: Tensor,
    kappa: float = 0.0,
    order: int = 1,
    nfes: Sequence[int] = DEFAULT_NFES,
    metric: Metric = _default_metric,
    correction: str = "noise",
    **sample_kwargs: Any,
) -> list[QualityPoint]:
    """Score UCGM-S (through the peer model's adapter) at several budgets.

    Labels are "UCGM-S k=<kappa> o1", "UCGM-S k=<kappa> o2" (the paper's order-2 correction,
    averaging z^) and "UCGM-S k=<kappa> o2-data" (``correction="data"``, averaging x^).

    Args:
        peer: The model.
        noise: Initial state, shape (B, 2) (the same x_0 as the peer solvers).
        reference: Held-out data, shape (M, 2).
        kappa: Extrapolation ratio.
        order: 1 or 2 (order 2 runs the odd budgets >= 3 at or below each requested NFE).
        nfes: NFE budgets.
        metric: ``metric(samples, reference) -> float``.
        correction: Form of the order-2 correction, "noise" or "data" (see
            :func:`ucgm_lab.sampler.second_order_correction`); ignored for order 1.
        **sample_kwargs: Further arguments of :func:`ucgm_lab.sample` (e.g. ``schedule``).

    Returns:
        One :class:`QualityPoint` per distinct NFE, sorted by NFE.
    """
    label = f"UCGM-S k={kappa:g} o{order}"
    if order == 2:
        sample_kwargs = {**sample_kwargs, "correction": correction}
        label += "-data" if correction == "data" else ""
    seen: dict[int, QualityPoint] = {}
    # Order 2 makes 2 floor((n + 1) / 2) - 1 evaluations: request odd budgets >= 3 (at
    # least one corrected step).
    budgets = sorted({n - 1 + n % 2 for n in nfes if n >= 3} if order == 2 else set(nfes))
    for n in budgets:
        out = peer.adapted.sample(noise, steps=n, kappa=kappa, order=order, **sample_kwargs)
        if out.nfe not in seen:
            score = metric(out.sample, reference)
            seen[out.nfe] = QualityPoint(
                label,
                n,
                out.nfe,
                {PEER_METRIC: score},
                {**sample_kwargs, "kappa": kappa, "order": order},
                model=peer.library,
                family="ucgm",
            )
    return [seen[k] for k in sorted(seen)]


def compare_samplers(
    peer: PeerModel,
    noise: Tensor,
    reference: Tensor,
    *,
    nfes: Sequence[int] = DEFAULT_NFES,
    peer_methods: Sequence[str] = PEER_METHODS,
    tolerances: Sequence[float] = DEFAULT_TOLERANCES,
    kappas: Sequence[float] = (0.0, 0.25, 0.5),
    orders: Sequence[int] = (1, 2),
    corrections: Sequence[str] = ("noise", "data"),
    metric: Metric = _default_metric,
    **sample_kwargs: Any,
) -> list[QualityPoint]:
    """All peer curves and all UCGM-S curves (kappa x order x correction) for one model.

    Args:
        peer: The model.
        noise: Initial state / x_0, shape (B, 2), shared by every sampler.
        reference: Held-out data, shape (M, 2).
        nfes: NFE budgets of the fixed-step samplers.
        peer_methods: torchdiffeq method names.
        tolerances: rtol = atol values of the adaptive peer methods.
        kappas: UCGM-S extrapolation ratios.
        orders: UCGM-S orders.
        corrections: Forms of the order-2 correction ("noise": the paper's; "data").
        metric: ``metric(samples, reference) -> float``.
        **sample_kwargs: Further arguments of :func:`ucgm_lab.sample` (e.g. ``schedule``).

    Returns:
        The points of :func:`peer_curve` and :func:`ucgm_curve`, in that order.
    """
    points: list[QualityPoint] = []
    for method in peer_methods:
        points += peer_curve(peer, noise, reference, method, nfes, tolerances, metric)
    for order in orders:
        for correction in corrections if order == 2 else ("noise",):
            for kappa in kappas:
                points += ucgm_curve(
                    peer, noise, reference, kappa, order, nfes, metric, correction, **sample_kwargs
                )
    return points


def data_floor(
    dataset: str, n: int, repeats: int = 3, seed: int = 1000, metric: Metric = _default_metric
) -> FloorResult:
    """The metric between two independent data samples of size n (what a perfect model scores)."""

    def draw(count: int, s: int) -> Tensor:
        return sample_2d(dataset, count, seed=s).points

    return metric_floor(metric, draw, n, repeats=repeats, seed=seed)


def nfe_to_reach(
    points: Sequence[QualityPoint], target: float
) -> dict[tuple[str, str], int | None]:
    """The smallest NFE at which each curve scores at most ``target``.

    Args:
        points: Quality points (any models and samplers).
        target: Score to reach.

    Returns:
        ``{(model, sampler): nfe or None}`` (None: never reached within the sweep).
    """
    best: dict[tuple[str, str], int | None] = {}
    for p in sorted(points, key=lambda q: q.nfe):
        key = (p.model, p.sampler)
        best.setdefault(key, None)
        if best[key] is None and p.score <= target:
            best[key] = p.nfe
    return best


def peer_targets(
    points: Sequence[QualityPoint], model: str, budget: int = 100
) -> dict[str, QualityPoint]:
    """Each peer solver's point at the largest NFE not above ``budget``.

    Args:
        points: Quality points (any models).
        model: The model whose peer curves to read.
        budget: The NFE budget (100 for "the peer's quality at 100 NFE").

    Returns:
        ``{peer sampler label: point}``.
    """
    targets: dict[str, QualityPoint] = {}
    for p in sorted(points, key=lambda q: q.nfe):
        if p.model == model and p.family == "peer" and p.nfe <= budget:
            targets[p.sampler] = p
    return targets


def format_match_table(
    points: Sequence[QualityPoint], budget: int = 100, rel_tol: float = 0.02
) -> str:
    """The NFE each sampler needs to match each peer solver's quality at ``budget`` NFE.

    A sampler matches a target score when it scores at most ``target * (1 + rel_tol)``; the
    cell shows the smallest such NFE of the sweep ("-" if none).

    Args:
        points: Quality points of one or more models.
        budget: The peers' NFE budget that sets the targets.
        rel_tol: Relative slack of "matching".

    Returns:
        The table, one row per (model, peer target), one column per sampler.
    """
    samplers = list(dict.fromkeys(p.sampler for p in points))
    width = max(11, *(len(s) for s in samplers)) + 2
    label_w = 42
    header = "model: target (peer @ NFE = score)".ljust(label_w) + "".join(
        s.rjust(width) for s in samplers
    )
    lines = [header, "-" * len(header)]
    for model in dict.fromkeys(p.model for p in points):
        pts = [p for p in points if p.model == model]
        for name, target in peer_targets(pts, model, budget).items():
            reach = nfe_to_reach(pts, target.score * (1 + rel_tol))
            label = f"{model}: {name} @ {target.nfe} = {target.score:.4f}"
            cells = []
            for s in samplers:
                nfe = reach.get((model, s))
                cells.append(("-" if nfe is None else str(nfe)).rjust(width))
            lines.append(label.ljust(label_w) + "".join(cells))
    return "\n".join(lines)
