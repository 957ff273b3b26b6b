"""The UCGM-S sampler made visible (section 3.2, Alg. 2, Fig. 3c).

Extrapolation kappa, stochasticity rho, order, step count and time schedule, with particle
trajectories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ..metrics import FloorResult, evaluate_2d
from ..sampler import SampleOutput, sample
from ..schedules import SCHEDULES, KumaraswamySchedule, explicit_time_points, kumaraswamy, timeshift
from ..viz import density_heatmap, trajectory_animation, trajectory_figure
from ._base import Backend, Explorer, SettingsCache, model_and_transport, single_thread

__all__ = ["SCHEDULES", "SamplerExplorer", "parse_time_points", "schedule_figure"]

_AXIS = dict(range=[-2.2, 2.2], showgrid=False, zeroline=False)


def parse_time_points(text: str) -> list[float]:
    """Read explicit time points such as ``"0.999, 0.5"`` (noise to data; the sampler appends 0).

    Args:
        text: Comma- or space-separated numbers, strictly decreasing, in [0, 1].

    Returns:
        The numbers.

    Raises:
        ValueError: If a number cannot be read or the points are not strictly decreasing in
            [0, 1] (the sampler's own check, :func:`ucgm_lab.schedules.explicit_time_points`).
    """
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        points = [float(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"time points must be numbers such as '0.999, 0.5'; got {text!r}."
        ) from None
    explicit_time_points(points)
    return points


def schedule_figure(
    steps: int = 8,
    schedules: Mapping[str, KumaraswamySchedule] | None = None,
    shifts: Sequence[float] = (1.5, 3.0),
) -> go.Figure:
    """The Kumaraswamy time schedule (App. A.1.3, B.2.2) next to the timeshift maps it imitates.

    Left: the maps u -> k(u; a, b, c) of each schedule and the "timeshift" maps
    s u / (1 + (s - 1) u). Right: the sampling times t_0 > ... > t_N = 0 each schedule gives
    for ``steps`` steps.

    Args:
        steps: N, the number of model evaluations.
        schedules: Name -> schedule (default: :data:`SCHEDULES`).
        shifts: Timeshift factors s drawn for comparison.
    """
    schedules = dict(schedules or SCHEDULES)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("k(u; a, b, c) and timeshift", f"time points, {steps} steps"),
    )
    u = torch.linspace(0, 1, 201, dtype=torch.float64)
    for name, sch in schedules.items():
        fig.add_trace(
            go.Scatter(
                x=u.tolist(),
                y=kumaraswamy(u, sch.a, sch.b, sch.c).tolist(),
                mode="lines",
                name=f"{name} {(sch.a, sch.b, sch.c)}",
            ),
            1,
            1,
        )
        times = sch.time_points(steps).tolist()
        fig.add_trace(
            go.Scatter(
                x=list(range(len(times))),
                y=times,
                mode="lines+markers",
                name=f"{name} t_i",
                showlegend=False,
            ),
            1,
            2,
        )
    for s in shifts:
        fig.add_trace(
            go.Scatter(
                x=u.tolist(),
                y=timeshift(u, s).tolist(),
                mode="lines",
                line=dict(dash="dot"),
                name=f"timeshift s={s:g}",
            ),
            1,
            1,
        )
    fig.update_xaxes(title_text="u", row=1, col=1)
    fig.update_xaxes(title_text="i", row=1, col=2)
    fig.update_yaxes(title_text="t_i", row=1, col=2)
    fig.update_layout(width=900, height=400, title="Sampling time schedules")
    return fig


class SamplerExplorer(Explorer):
    """Move the knobs of UCGM-S (Alg. 2) and watch particles travel from noise to data.

    Panels: the paths of some particles (the sampler's states x~), all final samples over
    the data, and the time grid t_i. The status line gives the NFE and the distance of the
    samples to the data. Every setting is sampled once and cached.

    Args:
        model: A zoo model (or (model, transport) pair).
        reference: Data points (n, 2) (at least ``metric_points``).
        num_points: Particles sampled (the same initial noise for every setting).
        num_paths: Particles whose paths are drawn.
        seed: Seed of the initial noise and of rho's fresh noise.
        max_steps: Largest step count on the slider.
        metric: Metric name for the status line.
        metric_points: Samples scored.
        floor: Optional floor of the metric, shown for comparison.
        backend: Figure backend (see :class:`~ucgm_lab.widgets.FigureView`).
        shown_points: Samples drawn in the samples panel (the first ones; the metric uses
            ``metric_points``). Every SVG marker costs the browser time at each redraw.

    Controls:
        kappa (slider), rho (slider), rho_auto (check box: the SDE-like ratio of App. B.1.6),
        order (1 or 2), correction (the order-2 correction: "noise", the paper's, or "data";
        see :func:`ucgm_lab.sampler.second_order_correction`; ignored for order 1), steps
        (slider), schedule (a name of :data:`SCHEDULES` or "explicit"), time_points (text,
        used when schedule is "explicit", e.g. "0.999, 0.5").
    """

    def __init__(
        self,
        model: Any,
        reference: Tensor,
        num_points: int = 1000,
        num_paths: int = 150,
        seed: int = 0,
        max_steps: int = 64,
        metric: str = "w2",
        metric_points: int = 500,
        floor: FloorResult | None = None,
        backend: Backend = "output",
        shown_points: int = 400,
    ) -> None:
        if reference.shape[0] < metric_points:
            raise ValueError(
                f"reference has {reference.shape[0]} points; "
                f"metric_points={metric_points} needs as many."
            )
        self.model, self.transport = model_and_transport(model)
        self.reference = reference
        self.noise = torch.randn(num_points, 2, generator=torch.Generator().manual_seed(seed))
        self.seed = seed
        self.num_paths = num_paths
        self.shown_points = shown_points
        self.metric = metric
        self.metric_points = metric_points
        self.floor = floor
        self.cache: SettingsCache[tuple[SampleOutput, float]] = SettingsCache(self._compute)
        fig = make_subplots(
            rows=1,
            cols=3,
            column_widths=[0.38, 0.38, 0.24],
            subplot_titles=("paths of the states x~", "samples over the data", "time grid t_i"),
            horizontal_spacing=0.06,
        )
        # Trace 0: the data as a faint density (one image, cheap to redraw); traces 1-3: the
        # paths, start and end traces of ucgm_lab.viz.trajectory_figure.
        fig.add_trace(density_heatmap(reference), 1, 1)
        template = trajectory_figure(self._compute_raw(steps=4), num_paths=num_paths)
        for trace in template.data:
            fig.add_trace(trace, 1, 1)
        fig.add_trace(density_heatmap(reference), 1, 2)
        fig.add_trace(
            go.Scatter(mode="markers", marker=dict(size=3, color="crimson"), name="samples"), 1, 2
        )
        fig.add_trace(go.Scatter(mode="lines+markers", marker=dict(size=6), name="t_i"), 1, 3)
        for col in (1, 2):
            fig.update_xaxes(_AXIS, row=1, col=col)
            fig.update_yaxes(_AXIS, row=1, col=col, scaleanchor=f"x{col if col > 1 else ''}")
        fig.update_xaxes(title_text="step i", row=1, col=3)
        fig.update_yaxes(range=[-0.02, 1.02], row=1, col=3)
        fig.update_layout(width=980, height=400, showlegend=False)
        controls = {
            "kappa": w.FloatSlider(
                value=0.0, min=0.0, max=1.0, step=0.05, description="kappa", continuous_update=False
            ),
            "rho": w.FloatSlider(
                value=0.0, min=0.0, max=1.0, step=0.05, description="rho", continuous_update=False
            ),
            "rho_auto": w.Checkbox(value=False, description="rho = auto (SDE-like)"),
            "order": w.ToggleButtons(options=[1, 2], value=1, description="order"),
            "correction": w.Dropdown(
                options=[("noise (paper)", "noise"), ("data", "data")],
                value="noise",
                description="correction",
            ),
            "steps": w.IntSlider(
                value=8, min=1, max=max_steps, description="steps", continuous_update=False
            ),
            "schedule": w.Dropdown(
                options=[*SCHEDULES, "explicit"], value="even", description="schedule"
            ),
            "time_points": w.Text(
                value="0.999, 0.5", description="time points", continuous_update=False
            ),
        }
        rows = [
            ["kappa", "rho", "rho_auto"],
            ["order", "correction", "steps"],
            ["schedule", "time_points"],
        ]
        self._finish(controls, fig, backend, rows=rows)

    # ------------------------------------------------------------------ sampling
    def sampler_kwargs(
        self,
        kappa: float,
        rho: float,
        rho_auto: bool,
        order: int,
        steps: int,
        schedule: str,
        time_points: str,
        correction: str = "noise",
    ) -> dict[str, Any]:
        """The :func:`ucgm_lab.sample` keyword arguments for these control values.

        ``correction`` is passed for order 2 only (order 1 has no correction), so that order-1
        settings share their cache entry whatever the menu shows.
        """
        kwargs: dict[str, Any] = {
            "kappa": float(kappa),
            "rho": "auto" if rho_auto else float(rho),
            "order": int(order),
        }
        if int(order) == 2:
            kwargs["correction"] = str(correction)
        if schedule == "explicit":
            kwargs["time_points"] = tuple(parse_time_points(time_points))
        elif schedule in SCHEDULES:
            kwargs["steps"] = int(steps)
            kwargs["schedule"] = SCHEDULES[schedule]
        else:
            raise ValueError(
                f"schedule must be one of {[*SCHEDULES, 'explicit']}, got {schedule!r}."
            )
        return kwargs

    def result(self, **values: Any) -> tuple[SampleOutput, float]:
        """The (cached) sampler output and its metric value for these control values.

        Controls not given keep their current values.
        """
        settings = {**self.values, **values}
        return self.cache(**self.sampler_kwargs(**settings))

    def animation(self, **values: Any) -> go.Figure:
        """An animation of the states for these control values (default: the current ones).

        Made by :func:`ucgm_lab.viz.trajectory_animation`.
        """
        out, _ = self.result(**values)
        return trajectory_animation(out, data=self.reference)

    def _compute_raw(self, **kwargs: Any) -> SampleOutput:
        steps = kwargs.pop("steps", None)
        with single_thread():
            return sample(
                self.model,
                self.noise,
                self.transport,
                steps,
                generator=torch.Generator().manual_seed(self.seed + 1),
                **kwargs,
            )

    def _compute(self, **kwargs: Any) -> tuple[SampleOutput, float]:
        out = self._compute_raw(**kwargs)
        n = self.metric_points
        value = evaluate_2d(out.sample[:n], self.reference[:n], metrics=(self.metric,))[self.metric]
        return out, value

    # ------------------------------------------------------------------ drawing
    def _render(self, **values: Any) -> str:
        kwargs = self.sampler_kwargs(**values)
        out, value = self.cache(**kwargs)
        paths = trajectory_figure(out, num_paths=self.num_paths)  # traces: paths, start, end
        fig = self.figure
        for target, source in zip(fig.data[1:4], paths.data, strict=True):
            # float32 arrays (viz draws the polylines NaN-separated) travel to the browser as
            # compact typed arrays instead of long lists of decimals.
            target.x = np.asarray(source.x, dtype=np.float32)
            target.y = np.asarray(source.y, dtype=np.float32)
        final = out.sample[: self.shown_points].numpy()
        fig.data[5].x, fig.data[5].y = final[:, 0], final[:, 1]
        times = out.times.tolist()
        fig.data[6].x, fig.data[6].y = list(range(len(times))), times
        rho = "auto" if values["rho_auto"] else f"{values['rho']:g}"
        grid = (
            values["schedule"]
            if values["schedule"] != "explicit"
            else f"t = {values['time_points']}"
        )
        order = f"order {values['order']}"
        if values["order"] == 2:
            order += f" ({values['correction']} correction)"
        fig.layout.title = (
            f"UCGM-S: kappa = {values['kappa']:g}, rho = {rho}, {order}, {grid}, NFE {out.nfe}"
        )
        floor = f" (floor {self.floor.mean:.3f})" if self.floor is not None else ""
        return f"NFE <b>{out.nfe}</b>, {self.metric} = <b>{value:.3f}</b>{floor}"
