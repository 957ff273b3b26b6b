"""The consistency ratio lambda at toy scale (section 4.4, Fig. 2 and Fig. 3a).

Models trained with lambda in {0, 0.5, 1} are sampled with UCGM-S; the explorer shows the
data estimates x^_i along one trajectory at decreasing t (Fig. 2) and the final samples with
their distance to the data, for a chosen number of steps and stochastic ratio rho.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ..metrics import FloorResult, evaluate_2d
from ..sampler import SampleOutput, sample
from ..schedules import SCHEDULES, KumaraswamySchedule
from ..viz import density_heatmap
from ._base import Backend, Explorer, SettingsCache, model_and_transport, single_thread

__all__ = ["ConsistencyExplorer", "x_hat_columns"]

_AXIS = dict(range=[-2.2, 2.2], showgrid=False, zeroline=False, showticklabels=False)
DEFAULT_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def x_hat_columns(steps: int, columns: int) -> list[int]:
    """Indices of the steps shown along a trajectory: ``columns`` spread evenly, ends included.

    The same rule as :func:`ucgm_lab.viz.x_hat_grid_figure`; fewer indices when
    ``steps < columns``.
    """
    return sorted({round(i * (steps - 1) / max(columns - 1, 1)) for i in range(columns)})


class ConsistencyExplorer(Explorer):
    """Compare models trained with different consistency ratios lambda (Fig. 2, Fig. 3a).

    For the chosen model, step count and rho, the figure shows the data estimates x^_i
    = f^x(F, x~, t_i) at ``columns`` times along one sampling trajectory (Alg. 2 line 3), and
    the final samples over the data. A lambda = 1 model already has a sharp x^ at the first
    step; a lambda = 0 model's early x^ is a blurred average that sharpens as t decreases.
    The status line gives the sample's distance to the data.

    Args:
        models: lambda -> zoo model (or (model, transport) pair), e.g.
            ``{0.0: load("checkerboard-linear-lam0"), ...}``.
        reference: Data points (n, 2) to score against (at least ``metric_points``).
        num_points: Particles sampled (the same initial noise for every setting).
        seed: Seed of the initial noise and of rho's fresh noise.
        steps_options: Step counts offered by the slider.
        columns: Number of x^ panels.
        metric: Metric name for the status line (``ucgm_lab.metrics.evaluate_2d``).
        metric_points: Samples scored (fewer is faster; W2 costs ~n^3).
        floor: Optional floor of the metric at ``metric_points`` points
            (:func:`ucgm_lab.metrics.metric_floor`), shown for comparison.
        schedule: Time grid: a name of :data:`~ucgm_lab.widgets.SCHEDULES` (default
            ``"even"``: t_i = 1 - i / N) or a :class:`~ucgm_lab.schedules.KumaraswamySchedule`.
        backend: Figure backend (see :class:`~ucgm_lab.widgets.FigureView`).
        shown_points: Points drawn per panel (the first ones; metrics use all). Every SVG
            marker costs the browser time at each redraw.

    Controls:
        lam (menu of the given lambdas), steps (slider), rho (slider in [0, 1]).
    """

    def __init__(
        self,
        models: Mapping[float, Any],
        reference: Tensor,
        num_points: int = 1000,
        seed: int = 0,
        steps_options: Sequence[int] = DEFAULT_STEPS,
        columns: int = 5,
        metric: str = "w2",
        metric_points: int = 500,
        floor: FloorResult | None = None,
        schedule: KumaraswamySchedule | str = "even",
        backend: Backend = "output",
        shown_points: int = 250,
    ) -> None:
        if not models:
            raise ValueError("models must map at least one lambda to a model.")
        if reference.shape[0] < metric_points:
            raise ValueError(
                f"reference has {reference.shape[0]} points; "
                f"metric_points={metric_points} needs as many."
            )
        self.models = {float(lam): model_and_transport(m) for lam, m in models.items()}
        self.reference = reference
        self.noise = torch.randn(num_points, 2, generator=torch.Generator().manual_seed(seed))
        self.seed = seed
        self.shown_points = shown_points
        self.columns = columns
        self.metric = metric
        self.metric_points = metric_points
        self.floor = floor
        self.schedule = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
        self.cache: SettingsCache[tuple[SampleOutput, float]] = SettingsCache(self._compute)
        lams = sorted(self.models)
        fig = make_subplots(
            rows=1, cols=columns + 1, subplot_titles=[" "] * (columns + 1), horizontal_spacing=0.01
        )
        for c in range(1, columns + 1):
            fig.add_trace(
                go.Scatter(mode="markers", marker=dict(size=2, color="#1f77b4"), name=f"x_hat {c}"),
                1,
                c,
            )
        fig.add_trace(
            density_heatmap(reference),
            1,
            columns + 1,
        )
        fig.add_trace(
            go.Scatter(mode="markers", marker=dict(size=2, color="crimson"), name="sample"),
            1,
            columns + 1,
        )
        fig.update_xaxes(_AXIS)
        fig.update_yaxes(_AXIS)
        fig.update_annotations(font_size=11)
        fig.update_layout(
            showlegend=False, width=155 * (columns + 1) + 60, height=270, margin=dict(t=70)
        )
        steps_options = sorted(set(steps_options))
        controls = {
            "lam": w.ToggleButtons(
                options=[(f"lambda={lam:g}", lam) for lam in lams],
                value=lams[0],
                description="model",
            ),
            "steps": w.SelectionSlider(
                options=steps_options,
                value=min(steps_options, key=lambda s: abs(s - 8)),
                description="steps",
                continuous_update=False,
            ),
            "rho": w.FloatSlider(
                value=0.0, min=0.0, max=1.0, step=0.05, description="rho", continuous_update=False
            ),
        }
        self._finish(controls, fig, backend, rows=[["lam"], ["steps", "rho"]])

    def result(self, lam: float, steps: int, rho: float) -> tuple[SampleOutput, float]:
        """The (cached) sampler output and its metric value for these settings."""
        return self.cache(lam=float(lam), steps=int(steps), rho=float(rho))

    def _compute(self, lam: float, steps: int, rho: float) -> tuple[SampleOutput, float]:
        model, transport = self.models[lam]
        with single_thread():
            out = sample(
                model,
                self.noise,
                transport,
                steps,
                rho=rho,
                schedule=self.schedule,
                generator=torch.Generator().manual_seed(self.seed + 1),
            )
        n = self.metric_points
        value = evaluate_2d(out.sample[:n], self.reference[:n], metrics=(self.metric,))[self.metric]
        return out, value

    def _render(self, lam: float, steps: int, rho: float) -> str:
        out, value = self.result(lam, steps, rho)
        fig = self.figure
        picks = x_hat_columns(out.x_hat.shape[0], self.columns)
        n = self.shown_points
        x_hat = out.x_hat[:, :n].numpy()
        for c in range(self.columns):
            trace, note = fig.data[c], fig.layout.annotations[c]
            if c < len(picks):
                i = picks[c]
                trace.x, trace.y = x_hat[i, :, 0], x_hat[i, :, 1]
                note.text = f"x^ at t={float(out.times[i]):.2f}"
            else:
                trace.x, trace.y = [], []
                note.text = " "
        final = out.sample[:n].numpy()
        fig.data[self.columns + 1].x, fig.data[self.columns + 1].y = final[:, 0], final[:, 1]
        fig.layout.annotations[self.columns].text = f"sample, NFE {out.nfe}"
        fig.layout.title = (
            f"lambda = {lam:g}: data estimates x^ along one trajectory, "
            f"{steps} steps, rho = {rho:g}"
        )
        floor = f" (floor {self.floor.mean:.3f})" if self.floor is not None else ""
        setting = f"lambda = {lam:g}, {steps} steps, rho = {rho:g}"
        return f"{setting}: {self.metric} = <b>{value:.3f}</b>{floor}"
