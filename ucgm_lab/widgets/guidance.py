"""The enhanced target against classifier-free guidance at equal NFE (section 3.1, Fig. 3b).

The enhanced target is section 3.1's "Learning enhanced score function"; the data are
class-conditional 2D points.

A model trained with zeta = 0 needs classifier-free guidance (CFG, two network evaluations
per step) to put its samples firmly inside their class; a model trained with the enhanced
target (zeta > 0) does it without guidance, at one evaluation per step.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ..evaluation import QualityPoint
from ..metrics import wasserstein2
from ..sampler import SampleOutput, sample
from ..schedules import KumaraswamySchedule
from ..viz import density_heatmap
from ._base import Backend, Explorer, SettingsCache, model_and_transport, single_thread
from .sampler import SCHEDULES

__all__ = [
    "GuidanceExplorer",
    "balanced_labels",
    "class_accuracy",
    "class_conditional_w2",
    "class_metrics",
    "class_spread",
    "guidance_sweep",
]

_AXIS = dict(range=[-1.8, 1.8], showgrid=False, zeroline=False)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# Class k (mod 8) is drawn in _PALETTE[k]: a stepwise colour scale over 0..7.
_CLASS_MARKER = dict(
    size=3,
    cmin=-0.5,
    cmax=len(_PALETTE) - 0.5,
    colorscale=[
        [edge, color]
        for k, color in enumerate(_PALETTE)
        for edge in (k / len(_PALETTE), (k + 1) / len(_PALETTE))
    ],
)


@functools.lru_cache(maxsize=256)
def _class_points(dataset: str, n: int, class_id: int, seed: int) -> Tensor:
    """Reference points of one class (cached: the explorers ask for the same ones again)."""
    from toy_data import sample_2d_class

    with single_thread():
        return sample_2d_class(dataset, n, class_id, seed=seed).points


@functools.lru_cache(maxsize=16)
def _labelled_points(dataset: str, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Labelled reference points (float64 points, labels), cached."""
    from toy_data import sample_2d

    with single_thread():
        ref = sample_2d(dataset, n, seed=seed)
    return ref.points.double(), ref.labels


def balanced_labels(num_classes: int, n: int) -> Tensor:
    """Class ids 0, 1, ..., K-1, 0, 1, ... of length n (int64): the same count per class (+-1)."""
    if num_classes < 1 or n < 1:
        raise ValueError(f"need num_classes >= 1 and n >= 1, got {num_classes} and {n}.")
    return torch.arange(n) % num_classes


def class_conditional_w2(samples: Tensor, labels: Tensor, dataset: str, seed: int = 123) -> float:
    """Mean over the classes present of W2(samples of class k, fresh data of class k).

    A conditional model is scored per class: a sample must not only look like the data, it
    must look like the data of the class it was asked for.

    Args:
        samples: Shape (n, 2).
        labels: Class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the reference points (as many per class as samples of that class).

    Returns:
        The mean W2.
    """
    values = []
    for k in sorted(set(labels.tolist())):
        mine = samples[labels == k]
        ref = _class_points(dataset, int(mine.shape[0]), int(k), seed + int(k))
        values.append(wasserstein2(mine, ref))
    return float(sum(values) / len(values))


def class_accuracy(
    samples: Tensor, labels: Tensor, dataset: str, seed: int = 321, reference_size: int = 4000
) -> float:
    """Fraction of samples that land in the class they were asked for.

    Each sample is given the class of its nearest neighbour among ``reference_size`` labelled
    data points (a 1-nearest-neighbour classifier of the data set); the score is the fraction
    whose class matches the requested one. Guidance exists to raise it.

    Args:
        samples: Shape (n, 2).
        labels: Requested class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the labelled reference points.
        reference_size: Number of labelled reference points.

    Returns:
        The fraction in [0, 1].
    """
    points, ref_labels = _labelled_points(dataset, reference_size, seed)
    nearest = torch.cdist(samples.double(), points).argmin(dim=1)
    return float((ref_labels[nearest] == labels).double().mean())


def class_spread(
    samples: Tensor, labels: Tensor, dataset: str, seed: int = 456, reference_size: int = 2000
) -> float:
    """How widely samples spread around their class, relative to the data: 1 = like the data.

    For each class k present: the root-mean-square distance of the samples of class k to the
    mean of the data of class k, divided by the same for ``reference_size`` data points of
    class k; the ratios are averaged over the classes. Guidance (CFG, or the enhanced target)
    sharpens the classes: it pulls the ratio below 1.

    Args:
        samples: Shape (n, 2).
        labels: Requested class ids, shape (n,).
        dataset: 2D data set name (``toy_data``).
        seed: Seed of the reference points.
        reference_size: Reference points per class.

    Returns:
        The mean ratio (> 0).
    """
    ratios = []
    for k in sorted(set(labels.tolist())):
        ref = _class_points(dataset, reference_size, int(k), seed + int(k)).double()
        centre = ref.mean(dim=0)
        mine = samples[labels == k].double()
        spread = (mine - centre).pow(2).sum(dim=1).mean().sqrt()
        ratios.append(float(spread / (ref - centre).pow(2).sum(dim=1).mean().sqrt()))
    return float(sum(ratios) / len(ratios))


def class_metrics(samples: Tensor, labels: Tensor, dataset: str, seed: int = 0) -> dict[str, float]:
    """The class-conditional scores of a labelled sample.

    Returns:
        ``class_w2`` (:func:`class_conditional_w2`, lower is better), ``class_accuracy``
        (:func:`class_accuracy`, higher is better) and ``class_spread``
        (:func:`class_spread`, 1 is like the data, below 1 is sharpened).
    """
    return {
        "class_w2": class_conditional_w2(samples, labels, dataset, seed=seed + 1000),
        "class_accuracy": class_accuracy(samples, labels, dataset, seed=seed + 2000),
        "class_spread": class_spread(samples, labels, dataset, seed=seed + 3000),
    }


def _run(
    model: Any,
    transport: Any,
    noise: Tensor,
    labels: Tensor,
    nfe: int,
    guidance_scale: float,
    seed: int,
    schedule: KumaraswamySchedule,
) -> SampleOutput:
    """Sample at a fixed NFE: nfe steps without guidance, nfe // 2 guided steps with it."""
    guided = guidance_scale != 1.0
    steps = nfe // 2 if guided else nfe
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
    """Class-conditional quality versus NFE, for :func:`ucgm_lab.viz.quality_figure`.

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
        schedule: Time grid: a name of :data:`~ucgm_lab.widgets.SCHEDULES` (default
            ``"even"``) or a :class:`~ucgm_lab.schedules.KumaraswamySchedule`.

    Returns:
        One :class:`~ucgm_lab.evaluation.QualityPoint` per NFE with the metrics of
        :func:`class_metrics` (``"class_w2"``, ``"class_accuracy"``, ``"class_spread"``).
    """
    from toy_data import num_classes

    net, transport = model_and_transport(model)
    grid = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    labels = balanced_labels(num_classes(dataset), num_samples)
    noise = torch.randn(num_samples, 2, generator=torch.Generator().manual_seed(seed))
    points = []
    for nfe in nfes:
        out = _run(net, transport, noise, labels, nfe, guidance_scale, seed, grid)
        values = class_metrics(out.sample, labels, dataset, seed=seed)
        settings = {"guidance_scale": guidance_scale, "steps": out.x_hat.shape[0], "schedule": grid}
        points.append(QualityPoint(label, out.x_hat.shape[0], out.nfe, values, settings))
    return points


class GuidanceExplorer(Explorer):
    """Enhanced target (zeta > 0, no guidance) against CFG on a zeta = 0 model, at equal NFE.

    Three panels with the same initial noise and class labels: the zeta = 0 model without
    guidance, the same model with classifier-free guidance of scale w (half the steps, two
    evaluations each), and the zeta > 0 model without guidance. Colours are the requested
    classes; the titles and the status line give each panel's class-conditional W2 (lower is
    better), class accuracy and class spread (:func:`class_metrics`).

    Args:
        plain: The class-conditional model trained with zeta = 0 (zoo model or pair).
        enhanced: The class-conditional model trained with zeta > 0.
        dataset: Their 2D data set.
        num_samples: Samples per panel (balanced over the classes when all are shown).
        seed: Seed of the noise.
        nfe_options: NFE values offered (even numbers, so that CFG gets whole steps).
        zeta: The enhanced model's zeta, for the titles (default: read from a zoo model's
            metadata when available).
        schedule: Time grid (default ``"even"``, see :data:`~ucgm_lab.widgets.SCHEDULES`).
        backend: Figure backend (see :class:`~ucgm_lab.widgets.FigureView`).
        shown_points: Points drawn per panel (the first ones; metrics use all). Every SVG
            marker costs the browser time at each redraw.

    Controls:
        nfe (slider), guidance (CFG scale w for the middle panel; starts at 1 + zeta, the scale
        the enhanced target imitates), class_id (-1 = all classes).
    """

    def __init__(
        self,
        plain: Any,
        enhanced: Any,
        dataset: str = "8gaussians",
        num_samples: int = 800,
        seed: int = 0,
        nfe_options: Sequence[int] = (2, 4, 8, 16, 32),
        zeta: float | None = None,
        schedule: KumaraswamySchedule | str = "even",
        backend: Backend = "output",
        shown_points: int = 400,
    ) -> None:
        from toy_data import num_classes, sample_2d

        self.shown_points = shown_points
        self.schedule = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
        self.plain = model_and_transport(plain)
        self.enhanced = model_and_transport(enhanced)
        if zeta is None:
            zeta = float(
                getattr(enhanced, "metadata", {})
                .get("recipe", {})
                .get("enhancement_ratio", float("nan"))
            )
        self.zeta = zeta
        self.dataset = dataset
        self.num_classes = num_classes(dataset)
        self.num_samples = num_samples
        self.seed = seed
        self.noise = torch.randn(num_samples, 2, generator=torch.Generator().manual_seed(seed))
        self.cache: SettingsCache[tuple[SampleOutput, float]] = SettingsCache(self._compute)
        data = sample_2d(dataset, 2000, seed=seed + 7).points.numpy()
        fig = make_subplots(rows=1, cols=3, subplot_titles=[" "] * 3, horizontal_spacing=0.03)
        for c in range(1, 4):
            fig.add_trace(density_heatmap(data), 1, c)
            fig.add_trace(go.Scatter(mode="markers", marker=_CLASS_MARKER, name="samples"), 1, c)
            fig.update_xaxes(_AXIS, row=1, col=c)
            fig.update_yaxes(_AXIS, row=1, col=c, scaleanchor=f"x{c if c > 1 else ''}")
        fig.update_annotations(font_size=12)
        fig.update_layout(width=960, height=380, showlegend=False)
        nfe_options = sorted(set(nfe_options))
        if any(n < 2 for n in nfe_options):
            raise ValueError(
                f"nfe_options must be >= 2 (CFG needs two evaluations per step), got {nfe_options}."
            )
        # The enhanced target with ratio zeta imitates CFG of scale 1 + zeta: start there.
        default_w = round(1.0 + zeta, 1) if zeta == zeta and 0 <= zeta <= 4 else 2.0
        classes = [("all", -1)] + [(str(k), k) for k in range(self.num_classes)]
        controls = {
            "nfe": w.SelectionSlider(
                options=nfe_options,
                value=nfe_options[len(nfe_options) // 2],
                description="NFE",
                continuous_update=False,
            ),
            "guidance": w.FloatSlider(
                value=default_w,
                min=1.0,
                max=5.0,
                step=0.1,
                description="CFG w",
                continuous_update=False,
            ),
            "class_id": w.Dropdown(options=classes, value=-1, description="class"),
        }
        self._finish(controls, fig, backend)

    def labels(self, class_id: int) -> Tensor:
        """The requested class of each sample: balanced over all classes for -1."""
        if class_id == -1:
            return balanced_labels(self.num_classes, self.num_samples)
        return torch.full((self.num_samples,), int(class_id), dtype=torch.int64)

    def result(
        self, which: str, nfe: int, guidance: float, class_id: int
    ) -> tuple[SampleOutput, dict[str, float]]:
        """The (cached) output and :func:`class_metrics` of one panel.

        Args:
            which: ``"plain"`` (zeta = 0, no guidance), ``"cfg"`` (zeta = 0 with CFG scale
                ``guidance``) or ``"enhanced"`` (zeta > 0, no guidance).
            nfe: Network evaluations.
            guidance: CFG scale (used by ``"cfg"`` only).
            class_id: Class, or -1 for all.
        """
        if which not in ("plain", "cfg", "enhanced"):
            raise ValueError(f"which must be 'plain', 'cfg' or 'enhanced', got {which!r}.")
        scale = float(guidance) if which == "cfg" else 1.0
        return self.cache(which=which, nfe=int(nfe), scale=scale, class_id=int(class_id))

    def _compute(
        self, which: str, nfe: int, scale: float, class_id: int
    ) -> tuple[SampleOutput, dict[str, float]]:
        model, transport = self.enhanced if which == "enhanced" else self.plain
        labels = self.labels(class_id)
        out = _run(model, transport, self.noise, labels, nfe, scale, self.seed, self.schedule)
        with single_thread():
            return out, class_metrics(out.sample, labels, self.dataset, seed=self.seed)

    def _render(self, nfe: int, guidance: float, class_id: int) -> str:
        fig = self.figure
        labels = self.labels(class_id)
        colors = (labels % len(_PALETTE)).numpy().astype(np.int8)
        names = {
            "plain": "zeta = 0, no guidance",
            "cfg": f"zeta = 0, CFG w = {guidance:g}",
            "enhanced": f"zeta = {self.zeta:g}, no guidance",
        }
        parts = []
        for c, which in enumerate(("plain", "cfg", "enhanced")):
            out, scores = self.result(which, nfe, guidance, class_id)
            w2, acc, spread = (scores[k] for k in ("class_w2", "class_accuracy", "class_spread"))
            # The first samples only (balanced labels cycle through the classes).
            s = out.sample[: self.shown_points].numpy()
            trace = fig.data[2 * c + 1]
            trace.x, trace.y = s[:, 0], s[:, 1]
            trace.marker.color = colors[: self.shown_points]
            steps = out.x_hat.shape[0]
            note = (
                f"{names[which]}<br>{steps} steps, NFE {out.nfe}: "
                f"W2 {w2:.3f}, acc {acc:.0%}, spread {spread:.2f}"
            )
            fig.layout.annotations[c].text = note
            parts.append(f"{names[which]}: <b>{w2:.3f}</b>, <b>{acc:.0%}</b>, <b>{spread:.2f}</b>")
        target = "all classes" if class_id == -1 else f"class {class_id}"
        fig.layout.title = f"Equal cost: NFE {nfe}, {target}"
        head = "class W2 (lower is better), accuracy, spread (1 = like the data)"
        return f"{head} - " + "; ".join(parts)
