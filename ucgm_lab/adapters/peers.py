"""UCGM-S against the peers' own solvers on small 2D models (paper Tab. 3 in miniature).

Trains a velocity model with torchcfm (its ``MLP`` and ``ConditionalFlowMatcher``) and one
with facebookresearch's flow_matching (``AffineProbPath(CondOTScheduler())`` and ucgm-lab's
``MLP2D``), samples each with

* the peer solvers: flow_matching's ``ODESolver`` and, for torchcfm (which has no solver of
  its own; its examples integrate with torchdyn/torchdiffeq), ``torchdiffeq.odeint``, with
  the methods "euler", "midpoint" and "dopri5";
* UCGM-S through the adapters of :mod:`ucgm_lab.adapters`, sweeping kappa and the order,

and scores each sample cloud against held-out data (sliced W2 by default) as a function of
the number of network evaluations (NFE). torchcfm and flow_matching are optional
dependencies (the ``notebooks`` extra); they are imported when used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from toy_data import sample_2d
from ucgm_lab.adapters.base import AdaptedModel, InputConvention, call_source, check_choice
from ucgm_lab.adapters.flow import adapt_flow_matching, adapt_torchcfm
from ucgm_lab.metrics import metric_floor, sliced_wasserstein2
from ucgm_lab.metrics.two_d import FloorResult
from ucgm_lab.networks import MLP2D
from ucgm_lab.schedules import KumaraswamySchedule, get_schedule

__all__ = [
    "PEER_LIBRARIES",
    "PEER_METHODS",
    "UCGM_SCHEDULES",
    "PeerModel",
    "QualityPoint",
    "SolveResult",
    "TrainConfig",
    "compare_samplers",
    "data_floor",
    "format_match_table",
    "format_quality_table",
    "make_metric",
    "nfe_to_reach",
    "peer_targets",
    "peer_curve",
    "peer_solve",
    "plot_quality_vs_nfe",
    "train_peer",
    "ucgm_curve",
    "ucgm_schedule",
]

PEER_LIBRARIES: tuple[str, ...] = ("torchcfm", "flow_matching")
PEER_METHODS: tuple[str, ...] = ("euler", "midpoint", "dopri5")
_EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun2": 2, "heun3": 3, "rk4": 4}
DEFAULT_NFES: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 50, 64, 80, 100)
DEFAULT_TOLERANCES: tuple[float, ...] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5)

Metric = Callable[[Tensor, Tensor], float]


# ---------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """Budget and architecture of one small 2D velocity model.

    Attributes:
        dataset: A name of :func:`toy_data.list_2d_datasets`.
        steps: Optimiser steps.
        batch_size: Data points per step (fresh samples every step).
        lr: Adam learning rate (cosine-annealed to 5% over the run).
        hidden: Width of the network (torchcfm's ``MLP(w=hidden)``, ucgm-lab's
            ``MLP2D(hidden=hidden, depth=3)``).
        seed: Seed of the data stream, the initialisation and the training times.
    """

    dataset: str = "checkerboard"
    steps: int = 3000
    batch_size: int = 512
    lr: float = 2e-3
    hidden: int = 128
    seed: int = 0


@dataclass
class PeerModel:
    """A velocity model trained with a peer library, with its UCGM adapter.

    Attributes:
        library: "torchcfm" or "flow_matching".
        network: The trained network (eval mode).
        adapted: The network seen as a UCGM model (:mod:`ucgm_lab.adapters`).
        inputs: How the network is called (see :data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).
        losses: Training loss per step.
        seconds: Training wall time.
        config: The training configuration.
    """

    library: str
    network: nn.Module
    adapted: AdaptedModel
    inputs: InputConvention
    losses: list[float] = field(repr=False)
    seconds: float
    config: TrainConfig

    def velocity(self, x: Tensor, s: Tensor) -> Tensor:
        """The network's velocity at x (B, 2) and source time s (a scalar or shape (B,))."""
        if s.ndim == 0:
            s = s.expand(x.shape[0])
        return call_source(self.network, x, s.to(x.dtype), None, self.inputs)

    def state_dict(self) -> dict[str, Tensor]:
        """The network's weights."""
        return self.network.state_dict()


def _build_network(library: str, config: TrainConfig) -> tuple[nn.Module, InputConvention]:
    if library == "torchcfm":
        from torchcfm.models.models import MLP

        return MLP(dim=2, w=config.hidden, time_varying=True), "concat"
    return MLP2D(dim=2, hidden=config.hidden, depth=3), "x_t"


def _adapt(library: str, network: nn.Module) -> AdaptedModel:
    if library == "torchcfm":
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        return adapt_torchcfm(network, ConditionalFlowMatcher(sigma=0.0), inputs="concat")
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    return adapt_flow_matching(network, AffineProbPath(scheduler=CondOTScheduler()))


def train_peer(
    library: str,
    config: TrainConfig | None = None,
    state_dict: dict[str, Tensor] | None = None,
) -> PeerModel:
    """Train (or rebuild from weights) a 2D velocity model with a peer library's own recipe.

    torchcfm: ``t, x_t, u_t = matcher.sample_location_and_conditional_flow(x_0, x_1)`` with
    ``matcher = ConditionalFlowMatcher(sigma=0)`` and ``loss = mse(MLP(cat[x_t, t]), u_t)``.
    flow_matching: ``p = AffineProbPath(CondOTScheduler()).sample(x_0, x_1, t)`` with
    t ~ U(0, 1) and ``loss = mse(MLP2D(p.x_t, p.t), p.dx_t)``. Both draw x_0 ~ N(0, I) and
    fresh data x_1 every step. Randomness comes from ``config.seed`` only; the global RNG
    state is left untouched.

    Args:
        library: "torchcfm" or "flow_matching".
        config: Budget and architecture (default :class:`TrainConfig`).
        state_dict: Weights of a network trained before with the same config: skip training.

    Returns:
        The :class:`PeerModel`.
    """
    check_choice(library, PEER_LIBRARIES, "peer library")
    config = config or TrainConfig()
    start = time.perf_counter()
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network, inputs = _build_network(library, config)
        if state_dict is not None:
            network.load_state_dict(state_dict)
        else:
            losses = _train(library, network, config)
    network.eval().requires_grad_(False)
    return PeerModel(
        library=library,
        network=network,
        adapted=_adapt(library, network),
        inputs=inputs,
        losses=losses,
        seconds=time.perf_counter() - start,
        config=config,
    )


def _train(library: str, network: nn.Module, config: TrainConfig) -> list[float]:
    data_gen = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, config.steps, eta_min=0.05 * config.lr
    )
    if library == "torchcfm":
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        matcher = ConditionalFlowMatcher(sigma=0.0)

        def loss_fn(x0: Tensor, x1: Tensor) -> Tensor:
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
            vt = network(torch.cat([xt, t[:, None]], dim=-1))
            return torch.mean((vt - ut) ** 2)
    else:
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler

        path = AffineProbPath(scheduler=CondOTScheduler())

        def loss_fn(x0: Tensor, x1: Tensor) -> Tensor:
            t = torch.rand(x1.shape[0])
            sample = path.sample(x_0=x0, x_1=x1, t=t)
            return torch.mean((network(sample.x_t, sample.t) - sample.dx_t) ** 2)

    network.train()
    losses = []
    for _ in range(config.steps):
        x1 = sample_2d(config.dataset, config.batch_size, generator=data_gen).points
        x0 = torch.randn_like(x1)
        loss = loss_fn(x0, x1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.detach().item())
    return losses


# ---------------------------------------------------------------------- peer solvers
@dataclass(frozen=True)
class SolveResult:
    """Samples of a peer solver and the number of network evaluations it made."""

    sample: Tensor
    nfe: int


class _Counted:
    """Count calls of a velocity function v(x, s)."""

    def __init__(self, velocity: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.velocity = velocity
        self.calls = 0

    def __call__(self, x: Tensor, s: Tensor) -> Tensor:
        self.calls += 1
        return self.velocity(x, s)


def peer_solve(
    peer: PeerModel,
    noise: Tensor,
    method: str,
    steps: int | None = None,
    tolerance: float = 1e-5,
) -> SolveResult:
    """Integrate the peer model's ODE from s = 0 to 1 with its own library's solver.

    flow_matching models use ``ODESolver(...).sample(noise, step_size=None, method=...,
    time_grid=...)``; torchcfm models ``torchdiffeq.odeint`` (as in torchcfm's examples).

    Args:
        peer: The model.
        noise: x_0, shape (B, 2).
        method: A torchdiffeq method name ("euler", "midpoint", "rk4", "dopri5", ...).
        steps: Number of fixed steps on linspace(0, 1, steps + 1) (fixed-step methods).
        tolerance: rtol = atol for adaptive methods.

    Returns:
        The :class:`SolveResult` (NFE counted, including the adaptive step-size start-up).
    """
    fixed = method in _EVALS_PER_STEP
    if fixed and (steps is None or steps < 1):
        raise ValueError(f"Fixed-step method {method!r} needs steps >= 1.")
    grid = torch.linspace(0.0, 1.0, steps + 1) if fixed else torch.tensor([0.0, 1.0])
    counted = _Counted(peer.velocity)
    with torch.no_grad():
        if peer.library == "flow_matching":
            out = _flow_matching_solve(counted, noise, method, grid, tolerance)
        else:
            from torchdiffeq import odeint

            out = odeint(
                lambda s, x: counted(x, s),
                noise,
                grid.to(noise),
                method=method,
                rtol=tolerance,
                atol=tolerance,
            )[-1]
    return SolveResult(sample=out, nfe=counted.calls)


def _flow_matching_solve(
    counted: _Counted, noise: Tensor, method: str, grid: Tensor, tolerance: float
) -> Tensor:
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    class Velocity(ModelWrapper):
        def forward(self, x: Tensor, t: Tensor, **extras: Any) -> Tensor:
            return counted(x, t)

    solver = ODESolver(velocity_model=Velocity(nn.Identity()))
    return solver.sample(
        x_init=noise,
        step_size=None,
        method=method,
        time_grid=grid.to(noise),
        atol=tolerance,
        rtol=tolerance,
    )


# ---------------------------------------------------------------------- quality versus NFE
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


@dataclass(frozen=True)
class QualityPoint:
    """One sampler setting and its score.

    Attributes:
        model: The model's library ("torchcfm" or "flow_matching").
        sampler: Curve label, e.g. "peer euler" or "UCGM-S k=0.25 o2".
        family: "peer" or "ucgm".
        nfe: Network evaluations per sample.
        score: Metric against held-out data (lower is better).
        setting: The knob that produced this NFE ("steps=8", "tol=1e-3").
        kappa: UCGM-S extrapolation ratio (None for peers).
        order: UCGM-S order (None for peers).
        correction: Form of the order-2 correction ("noise" or "data"; None otherwise).
    """

    model: str
    sampler: str
    family: str
    nfe: int
    score: float
    setting: str
    kappa: float | None = None
    order: int | None = None
    correction: str | None = None


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
    if method in _EVALS_PER_STEP:
        per = _EVALS_PER_STEP[method]
        for steps in sorted({n // per for n in nfes if n // per >= 1}):
            res = peer_solve(peer, noise, method, steps=steps)
            points.append(
                QualityPoint(
                    peer.library,
                    f"peer {method}",
                    "peer",
                    res.nfe,
                    metric(res.sample, reference),
                    f"steps={steps}",
                )
            )
    else:
        for tol in tolerances:
            res = peer_solve(peer, noise, method, tolerance=tol)
            points.append(
                QualityPoint(
                    peer.library,
                    f"peer {method}",
                    "peer",
                    res.nfe,
                    metric(res.sample, reference),
                    f"tol={tol:g}",
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
                peer.library,
                label,
                "ucgm",
                out.nfe,
                score,
                f"steps={n}",
                kappa,
                order,
                correction if order == 2 else None,
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


def format_quality_table(points: Sequence[QualityPoint], nfes: Sequence[int] | None = None) -> str:
    """A text table: one row per (model, sampler), one column per NFE (score at that NFE).

    For adaptive solvers and order-2 UCGM-S (whose NFEs do not fall on the columns) the score
    of the largest NFE not above the column is shown, marked with its NFE in brackets.
    """
    cols = sorted(set(nfes) if nfes is not None else {p.nfe for p in points if p.family == "ucgm"})
    rows: dict[tuple[str, str], list[QualityPoint]] = {}
    for p in points:
        rows.setdefault((p.model, p.sampler), []).append(p)
    name_w = max(len(f"{m} / {s}") for m, s in rows) + 2
    header = "model / sampler".ljust(name_w) + "".join(f"{c:>16d}" for c in cols)
    lines = [header, "-" * len(header)]
    for (model, sampler), pts in rows.items():
        by_nfe = sorted(pts, key=lambda q: q.nfe)
        cells = []
        for c in cols:
            below = [q for q in by_nfe if q.nfe <= c]
            if not below:
                cells.append(f"{'-':>16}")
            elif below[-1].nfe == c:
                cells.append(f"{below[-1].score:>16.4f}")
            else:
                cells.append(f"{below[-1].score:>10.4f} [{below[-1].nfe:>3d}]")
        lines.append(f"{model} / {sampler}".ljust(name_w) + "".join(cells))
    return "\n".join(lines)


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


def plot_quality_vs_nfe(
    points: Sequence[QualityPoint],
    floor: FloorResult | None = None,
    ax: Any = None,
    title: str | None = None,
    metric_name: str = "sliced W2 to data",
) -> Any:
    """Quality versus NFE on log-log axes, with the data floor as a grey band.

    Peers are grey/black dashed lines with squares; UCGM-S curves are coloured by kappa:
    solid with circles for order 1, dash-dotted with up-triangles for order 2 with the "data"
    correction, dotted with down-triangles for the paper's ("noise") correction.

    Args:
        points: Quality points of one model.
        floor: The data floor (mean +- 2 std drawn as a band, the mean dotted).
        ax: A matplotlib axes (default: a new figure).
        title: Axes title.
        metric_name: Y-axis label.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    curves: dict[str, list[QualityPoint]] = {}
    for p in points:
        curves.setdefault(p.sampler, []).append(p)
    kappas = sorted({p.kappa for p in points if p.kappa is not None})
    peer_colors = ["0.0", "0.35", "0.6", "0.75"]
    n_peer = 0
    for sampler, pts in curves.items():
        pts = sorted(pts, key=lambda q: q.nfe)
        first = pts[0]
        if first.family == "peer":
            style = {"ls": "--", "marker": "s", "color": peer_colors[n_peer % len(peer_colors)]}
            n_peer += 1
        else:
            color = f"C{kappas.index(first.kappa) % 10}" if first.kappa in kappas else None
            ls, marker = "-", "o"
            if first.order == 2:
                ls, marker = ("-.", "^") if first.correction == "data" else (":", "v")
            style = {"ls": ls, "marker": marker, "color": color}
        ax.plot(
            [q.nfe for q in pts], [q.score for q in pts], ms=3.5, lw=1.4, label=sampler, **style
        )
    if floor is not None:
        lo = max(floor.mean - 2 * floor.std, 0.0)
        ax.axhspan(lo, floor.mean + 2 * floor.std, color="0.88", zorder=0)
        ax.axhline(floor.mean, color="0.4", lw=1, ls=":", label="data floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NFE (network evaluations per sample)")
    ax.set_ylabel(metric_name)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return ax
