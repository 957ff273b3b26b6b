"""Sample quality versus the number of function evaluations (NFE), for every data kind.

One point type (:class:`QualityPoint`), one sweep (:func:`quality_vs_nfe`) whose reference
chooses the metric -- 2D points are scored with :func:`ucgm_lab.metrics.evaluate_2d`, images
of any shape with :class:`~ucgm_lab.metrics.image_frechet.ImageFrechet`, a
:class:`~ucgm_lab.metrics.digits.DigitsFrechet` scores digits with the digits metric and the
class accuracy, ``metric=`` takes your own -- one class-conditional sweep with and without guidance
(:func:`guidance_sweep`), and one table (:func:`format_quality_table`). Shared by the demo,
the notebooks, the peer comparison and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .metrics import evaluate_2d
from .metrics.classes import balanced_labels, class_metrics
from .metrics.digits import DigitsFrechet
from .metrics.image_frechet import IMAGE_METRIC, ImageFrechet
from .model_api import Model
from .runtime import single_thread
from .sampler import SampleOutput, sample
from .schedules import KumaraswamySchedule, get_schedule
from .transports import Transport, get_transport

__all__ = [
    "DIGITS_METRIC",
    "IMAGE_METRIC",
    "QualityPoint",
    "format_quality_table",
    "guidance_sweep",
    "model_and_transport",
    "model_device",
    "quality_vs_nfe",
    "sample_at_nfe",
    "sweep_nfe",
]

DIGITS_METRIC = "digits_fd"
"""Key of the digits metric in ``QualityPoint.metrics``."""


@dataclass(frozen=True)
class QualityPoint:
    """One point of a quality-versus-NFE curve (UCGM-S, or a peer library's solver).

    Attributes:
        label: Name of the curve (e.g. "lambda=0, kappa=0.5", "peer euler", "UCGM-S k=0.25 o2").
        steps: The ``steps`` given to the sampler (None for an adaptive solver).
        nfe: Network evaluations actually made.
        metrics: Metric name -> value (lower is better, except accuracies).
        settings: The sampler keyword arguments used (an adaptive solver: ``tolerance``).
        model: Which model the curve belongs to, when several share a table (e.g. the peer
            library "torchcfm"); "" otherwise.
        family: "ucgm" for UCGM-S, "peer" for a peer library's own solver.
    """

    label: str
    steps: int | None
    nfe: int
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    family: str = "ucgm"

    @property
    def sampler(self) -> str:
        """The curve name (the peer comparison's word for :attr:`label`)."""
        return self.label

    @property
    def score(self) -> float:
        """The first metric's value (the peer comparison scores with one metric)."""
        return next(iter(self.metrics.values()))

    @property
    def setting(self) -> str:
        """The knob that produced this NFE: "steps=8" or, for an adaptive solver, "tol=0.001"."""
        if "tolerance" in self.settings:
            return f"tol={self.settings['tolerance']:g}"
        return f"steps={self.steps}"

    @property
    def kappa(self) -> float | None:
        """UCGM-S extrapolation ratio (None for a peer solver or when not set)."""
        return self.settings.get("kappa")

    @property
    def order(self) -> int | None:
        """UCGM-S order (None for a peer solver or when not set)."""
        return self.settings.get("order")

    @property
    def correction(self) -> str | None:
        """Form of the order-2 correction ("noise" or "data"; None otherwise)."""
        return self.settings.get("correction") if self.order == 2 else None


def model_device(model: Model) -> torch.device:
    """The device of a module's parameters (CPU for other callables)."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def model_and_transport(entry: Any) -> tuple[Model, Transport]:
    """Accept a zoo model (with ``.model`` and ``.transport``) or a pair (model, transport).

    Args:
        entry: A :class:`~ucgm_lab.zoo.ZooModel`, or ``(model, transport)`` with the transport
            given by name or as a :class:`~ucgm_lab.transports.Transport`.

    Returns:
        The model and its transport.

    Raises:
        TypeError: For anything else.
    """
    if hasattr(entry, "model") and hasattr(entry, "transport"):
        return entry.model, get_transport(entry.transport)
    if isinstance(entry, tuple) and len(entry) == 2 and callable(entry[0]):
        return entry[0], get_transport(entry[1])
    raise TypeError(
        "Expected a zoo model (with .model and .transport) or a pair (model, transport); "
        f"got {type(entry).__name__}."
    )


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
    reference: Tensor | DigitsFrechet,
    steps_list: Sequence[int],
    *,
    label: str,
    metrics: Sequence[str] = ("w2",),
    metric: Callable[[Tensor, Tensor], float] | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    y: Tensor | None = None,
    time_points_for: Callable[[int], Sequence[float] | None] | None = None,
    **sampler_kwargs: Any,
) -> list[QualityPoint]:
    """Sample ``model`` with UCGM-S at each step count and score the samples.

    The reference chooses the metric:

    * data points (a tensor (n, d), e.g. 2D points): ``metrics`` of
      :func:`ucgm_lab.metrics.evaluate_2d` against them, ``num_samples`` samples (default n);
    * images of any shape (a tensor (n, C, H, W) or (n, H, W)): ``"image_fd"``, the Frechet
      distance in the features of a fixed random CNN
      (:class:`~ucgm_lab.metrics.image_frechet.ImageFrechet`, offline, no downloaded weights;
      compare with its ``floor`` of held-out images at the same ``num_samples``);
    * a :class:`~ucgm_lab.metrics.digits.DigitsFrechet` (digits): ``"digits_fd"`` (the digits
      metric, comparable with its ``floor()``) and ``"accuracy"`` (how often a sample shows its
      class), on ``metric.num_samples`` samples with the test split's labels as ``y``;
    * ``metric=callable(samples, reference) -> float`` for a tensor reference: that metric,
      under the key ``metric.name`` if it has one, else ``"metric"``.

    Args:
        model: The network.
        transport: Its transport.
        reference: Data points (n, d), images (n, C, H, W), or the digits metric.
        steps_list: Step counts to try.
        label: Curve name.
        metrics: Names accepted by :func:`ucgm_lab.metrics.evaluate_2d` (data points only).
        metric: Your own ``metric(samples, reference) -> float`` (lower is better), e.g. an
            :class:`~ucgm_lab.metrics.image_frechet.ImageFrechet` with another seed; replaces
            the default of the reference's kind (tensor references only).
        num_samples: Samples per point (tensor references; default: as many as ``reference``).
        seed: Seed of the initial noise (the same noise for every step count) and of rho's noise.
        y: Optional class ids, shape (num_samples,) (data points only).
        time_points_for: Optional function steps -> explicit time points (or None for the
            schedule), e.g. ``{2: [0.999, 0.5]}.get`` for a few-step model.
        **sampler_kwargs: Passed to :func:`ucgm_lab.sample` (kappa, rho, order, schedule, ...).

    Returns:
        One :class:`QualityPoint` per step count.
    """
    device = model_device(model)
    if isinstance(reference, DigitsFrechet):
        digits = reference
        y = digits.test_labels.to(device)
        shape = (digits.num_samples, *digits.test_images.shape[1:])

        def score(samples: Tensor) -> dict[str, float]:
            return {
                DIGITS_METRIC: digits.distance(samples),
                "accuracy": digits.accuracy(samples, y),
            }

    elif isinstance(reference, Tensor):
        ref = reference.cpu()
        if ref.ndim < 2:
            raise ValueError(
                f"reference must be data points (n, d), images (n, C, H, W) or (n, H, W), got "
                f"shape {tuple(ref.shape)}."
            )
        shape = (num_samples or ref.shape[0], *ref.shape[1:])
        if metric is None and ref.ndim >= 3:
            metric = ImageFrechet(ref)
        if metric is not None:
            if not callable(metric):
                raise TypeError(
                    f"metric must be callable(samples, reference) -> float, got {type(metric).__name__}."
                )
            key = getattr(metric, "name", None) or "metric"  # ImageFrechet.name: IMAGE_METRIC
            chosen = metric

            def score(samples: Tensor) -> dict[str, float]:
                return {key: float(chosen(samples.cpu(), ref))}

        else:

            def score(samples: Tensor) -> dict[str, float]:
                return evaluate_2d(samples.cpu(), ref, metrics=tuple(metrics))

    else:
        raise TypeError(
            f"reference must be data points (a tensor) or a DigitsFrechet, got {type(reference).__name__}."
        )
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
    return sweep_nfe(
        model,
        transport,
        noise,
        steps_list,
        score,
        label=label,
        seed=seed,
        y=y,
        time_points_for=time_points_for,
        **sampler_kwargs,
    )


def sample_at_nfe(
    model: Model,
    transport: str | Transport,
    noise: Tensor,
    labels: Tensor,
    nfe: int,
    guidance_scale: float,
    seed: int,
    schedule: KumaraswamySchedule | str = "even",
) -> SampleOutput:
    """Sample class-conditionally at a fixed NFE: nfe steps without guidance, nfe // 2 with it.

    Args:
        model: The network.
        transport: Its transport.
        noise: Initial states, shape (n, ...).
        labels: Class ids, shape (n,).
        nfe: Network evaluations.
        guidance_scale: CFG scale w (1 = none; otherwise two evaluations per step).
        seed: Seed of rho's fresh noise (``seed + 1``).
        schedule: Time grid (a name of :data:`~ucgm_lab.schedules.SCHEDULES` or a schedule).

    Raises:
        ValueError: An NFE below 2 with guidance.
    """
    steps = nfe // 2 if guidance_scale != 1.0 else nfe
    if steps < 1:
        raise ValueError(
            f"NFE {nfe} is too small for guidance (two evaluations per step); use NFE >= 2."
        )
    with single_thread():
        return sample(
            model,
            noise,
            transport,
            steps,
            y=labels,
            guidance_scale=guidance_scale,
            schedule=schedule,
            generator=torch.Generator().manual_seed(seed + 1),
        )


def guidance_sweep(
    model: Any,
    dataset: str,
    nfes: Sequence[int],
    *,
    label: str,
    guidance_scale: float = 1.0,
    num_samples: int = 800,
    seed: int = 0,
    schedule: KumaraswamySchedule | str = "even",
) -> list[QualityPoint]:
    """Class-conditional quality versus NFE (Fig. 3b), for :func:`ucgm_lab.viz.quality_figure`.

    With ``guidance_scale != 1`` each step costs two evaluations, so the sampler gets
    ``nfe // 2`` steps and the curves compare models at equal cost.

    Args:
        model: A zoo model (or (model, transport) pair), class-conditional.
        dataset: Its 2D data set.
        nfes: Network evaluations to try.
        label: Curve name.
        guidance_scale: CFG scale w (1 = none).
        num_samples: Samples per point (balanced over the classes).
        seed: Seed of the noise (the same for every NFE).
        schedule: Time grid: a name of :data:`~ucgm_lab.schedules.SCHEDULES` (default
            ``"even"``) or a :class:`~ucgm_lab.schedules.KumaraswamySchedule`.

    Returns:
        One :class:`QualityPoint` per NFE with the metrics of
        :func:`~ucgm_lab.metrics.classes.class_metrics` (``"class_w2"``, ``"class_accuracy"``,
        ``"class_spread"``).

    Raises:
        ValueError: An NFE below 2 with guidance.
    """
    from toy_data import num_classes

    net, transport = model_and_transport(model)
    grid = get_schedule(schedule) if isinstance(schedule, str) else schedule
    labels = balanced_labels(num_classes(dataset), num_samples)
    noise = torch.randn(num_samples, 2, generator=torch.Generator().manual_seed(seed))
    points = []
    for nfe in nfes:
        out = sample_at_nfe(net, transport, noise, labels, nfe, guidance_scale, seed, grid)
        values = class_metrics(out.sample, labels, dataset, seed=seed)
        settings = {"guidance_scale": guidance_scale, "steps": out.x_hat.shape[0], "schedule": grid}
        points.append(QualityPoint(label, out.x_hat.shape[0], out.nfe, values, settings))
    return points


def format_quality_table(
    points: Sequence[QualityPoint],
    metric: str | None = None,
    digits: int = 3,
    nfes: Sequence[int] | None = None,
    fill_below: bool = False,
) -> str:
    """A markdown table of quality points: one row per curve, one column per NFE.

    Args:
        points: Points of one or several curves (a curve: one ``(model, label)``; the row is
            named "model / label" when ``model`` is set).
        metric: Which metric to show (default: each point's first, :attr:`QualityPoint.score`).
        digits: Decimals.
        nfes: The columns (default: every NFE of the points).
        fill_below: Where a curve has no point at a column's NFE (adaptive solvers, order 2),
            show its point at the largest NFE below, marked with that NFE in brackets
            ("0.0123 [7]"); otherwise leave the cell blank.

    Returns:
        The table as text.
    """
    cols = sorted(set(nfes) if nfes is not None else {p.nfe for p in points})
    rows: dict[str, dict[int, float]] = {}
    for p in points:
        name = f"{p.model} / {p.label}" if p.model else p.label
        rows.setdefault(name, {})[p.nfe] = p.metrics[metric] if metric is not None else p.score
    lines = [
        "| curve | " + " | ".join(f"NFE {n}" for n in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, values in rows.items():
        cells = []
        for n in cols:
            below = [m for m in values if m <= n] if fill_below else [m for m in values if m == n]
            if not below:
                cells.append("")
            elif max(below) == n:
                cells.append(f"{values[n]:.{digits}f}")
            else:
                cells.append(f"{values[max(below)]:.{digits}f} [{max(below)}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
