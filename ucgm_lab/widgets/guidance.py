"""The enhanced target against classifier-free guidance at equal NFE (section 3.1, Fig. 3b).

The enhanced target is section 3.1's "Learning enhanced score function"; the data are
class-conditional 2D points.

A model trained with zeta = 0 needs classifier-free guidance (CFG, two network evaluations
per step) to put its samples firmly inside their class; a model trained with the enhanced
target (zeta > 0) does it without guidance, at one evaluation per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ..evaluation import guidance_sweep, sample_at_nfe
from ..metrics.classes import (
    balanced_labels,
    class_accuracy,
    class_conditional_w2,
    class_metrics,
    class_spread,
)
from ..sampler import SampleOutput
from ..schedules import SCHEDULES, KumaraswamySchedule
from ..viz import density_heatmap
from ._base import Backend, Explorer, SettingsCache, model_and_transport, single_thread

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
        out = sample_at_nfe(
            model, transport, self.noise, labels, nfe, scale, self.seed, self.schedule
        )
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
