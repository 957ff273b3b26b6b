"""Plotly figures for 2D UCGM experiments.

Point clouds, sampling trajectories, x_hat along a trajectory (Fig. 2 at toy scale) and
quality versus NFE with the metric's floor (Fig. 3).

Every function returns a ``plotly.graph_objects.Figure``; the notebooks show them (or wrap them
in ``FigureWidget``) and the demo writes them into its HTML report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from ..evaluation import QualityPoint
from ..metrics import FloorResult
from ..sampler import SampleOutput

__all__ = [
    "density_heatmap",
    "points_figure",
    "quality_figure",
    "trajectory_animation",
    "trajectory_figure",
    "x_hat_grid_figure",
]

_AXIS = dict(range=[-2.2, 2.2], showgrid=False, zeroline=False)
_DATA_STYLE = dict(color="rgba(120,120,120,0.25)", size=3)


def _np(x: Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy()


def _polylines(path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One NaN-separated float32 array per coordinate for the paths ``path`` of shape (T, P, 2).

    Particle p occupies entries p (T + 1) to p (T + 1) + T - 1, followed by a NaN that breaks
    the line (plotly does not connect across gaps). Numpy arrays reach the browser as compact
    typed arrays (base64) instead of long lists of decimals.
    """
    steps, particles = path.shape[:2]
    gap = np.full((1, particles, 2), np.nan, dtype=np.float32)
    stacked = np.concatenate([path.astype(np.float32), gap], axis=0)  # (T + 1, P, 2)
    flat = stacked.transpose(1, 0, 2).reshape(particles * (steps + 1), 2)
    return np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1])


def density_heatmap(
    points: Tensor | np.ndarray,
    extent: float = 2.2,
    bins: int = 88,
    rgb: str = "120,120,120",
    max_alpha: float = 0.55,
    name: str = "data",
) -> go.Heatmap:
    """A faint 2D histogram of ``points`` (n, 2) on [-extent, extent]^2: a data background.

    The explorers draw the data behind their samples with this instead of one marker per point:
    the browser draws a heatmap as one image, while every SVG marker is its own element (a
    1500-point cloud of markers costs several hundred milliseconds per redraw). Empty bins are
    transparent; the alpha of a bin grows with the square root of its count.

    Args:
        points: Data points of shape (n, 2).
        extent: Half-width of the square covered.
        bins: Bins per axis.
        rgb: The colour as "r,g,b".
        max_alpha: Opacity of the fullest bin.
        name: Trace name.
    """
    p = _np(points) if isinstance(points, Tensor) else np.asarray(points, dtype=np.float32)
    edges = np.linspace(-extent, extent, bins + 1)
    counts, _, _ = np.histogram2d(p[:, 0], p[:, 1], bins=[edges, edges])
    z = np.sqrt(counts.T / max(counts.max(), 1.0)).astype(np.float32)
    z[counts.T == 0] = np.nan
    centres = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    return go.Heatmap(
        x=centres,
        y=centres,
        z=z,
        zmin=0.0,
        zmax=1.0,
        colorscale=[[0.0, f"rgba({rgb},0.08)"], [1.0, f"rgba({rgb},{max_alpha})"]],
        showscale=False,
        hoverinfo="skip",
        name=name,
    )


def points_figure(clouds: Mapping[str, Tensor], title: str = "", size: int = 300) -> go.Figure:
    """Side-by-side scatter plots of 2D point clouds.

    Args:
        clouds: Title -> points of shape (n, 2).
        title: Figure title.
        size: Pixel size of each panel.
    """
    names = list(clouds)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    for i, name in enumerate(names, start=1):
        p = _np(clouds[name])
        fig.add_trace(
            go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=3), name=name), 1, i
        )
        fig.update_xaxes(_AXIS, row=1, col=i)
        fig.update_yaxes(_AXIS, row=1, col=i, scaleanchor=f"x{i if i > 1 else ''}")
    fig.update_layout(title=title, showlegend=False, width=size * len(names) + 80, height=size + 90)
    return fig


def trajectory_figure(
    out: SampleOutput,
    data: Tensor | None = None,
    num_paths: int = 150,
    show: str = "states",
    title: str = "Sampling trajectories",
) -> go.Figure:
    """Static particle paths from noise to data.

    The paths are one line trace: the particles' polylines one after the other in float32
    arrays, each followed by a NaN that separates it from the next.

    Args:
        out: A :func:`ucgm_lab.sample` result.
        data: Optional data points drawn faintly behind the paths.
        num_paths: Number of particles drawn.
        show: "states" (the sampler's states x~ at each time) or "x_hat" (the data estimates).
        title: Figure title.
    """
    if show not in ("states", "x_hat"):
        raise ValueError(f"show must be 'states' or 'x_hat', got {show!r}.")
    path = out.states if show == "states" else out.x_hat
    path = _np(path[:, :num_paths])  # (T, P, 2)
    fig = go.Figure()
    if data is not None:
        d = _np(data)
        fig.add_trace(
            go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker=_DATA_STYLE, name="data")
        )
    xs, ys = _polylines(path)
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", line=dict(width=1, color="rgba(31,119,180,0.5)"), name="paths"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=path[0, :, 0],
            y=path[0, :, 1],
            mode="markers",
            marker=dict(size=4, color="gray"),
            name="start",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=path[-1, :, 0],
            y=path[-1, :, 1],
            mode="markers",
            marker=dict(size=5, color="crimson"),
            name="end",
        )
    )
    fig.update_xaxes(_AXIS)
    fig.update_yaxes(_AXIS, scaleanchor="x")
    fig.update_layout(title=f"{title} (NFE {out.nfe})", width=520, height=500)
    return fig


def trajectory_animation(
    out: SampleOutput, data: Tensor | None = None, num_points: int = 1000
) -> go.Figure:
    """An animation of the states x~ over the sampling steps (play button and slider).

    The data (if given) are one static trace drawn once; each frame replaces only the states
    trace (``Frame.traces``), so the data are not repeated in every frame.

    The figure as first drawn (and its stored PNG, what a viewer without JavaScript sees)
    shows the last frame, the samples, with the slider at its end; Play runs from the noise.
    """
    states = _np(out.states[:, :num_points])
    times = out.times.tolist()
    labels = [f"t={t:.3f}" for t in times[: len(states) - 1]] + ["sample"]
    fig = go.Figure()
    if data is not None:
        d = _np(data)
        fig.add_trace(
            go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", marker=_DATA_STYLE, name="data")
        )
    moving = len(fig.data)  # index of the states trace
    marker = dict(size=4, color="crimson")
    fig.add_trace(
        go.Scatter(
            x=states[-1, :, 0], y=states[-1, :, 1], mode="markers", marker=marker, name="states"
        )
    )
    fig.frames = [
        go.Frame(
            data=[go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", marker=marker, name="states")],
            traces=[moving],
            name=lab,
        )
        for s, lab in zip(states, labels, strict=True)
    ]
    fig.update_xaxes(_AXIS)
    fig.update_yaxes(_AXIS, scaleanchor="x")
    fig.update_layout(
        width=520,
        height=560,
        title=f"UCGM-S, NFE {out.nfe}",
        showlegend=False,
        updatemenus=[
            dict(
                type="buttons",
                buttons=[
                    dict(
                        label="Play",
                        method="animate",
                        args=[None, dict(frame=dict(duration=400), fromcurrent=False)],
                    )
                ],
            )
        ],
        sliders=[
            dict(
                active=len(labels) - 1,
                steps=[
                    dict(method="animate", args=[[lab], dict(mode="immediate")], label=lab)
                    for lab in labels
                ],
            )
        ],
    )
    return fig


def x_hat_grid_figure(
    rows: Mapping[str, SampleOutput],
    columns: int = 5,
    num_points: int = 1000,
    size: int = 170,
) -> go.Figure:
    """Fig. 2 at toy scale: the estimates x^_i along one trajectory at decreasing t, one row per model.

    Args:
        rows: Row label (e.g. "lambda=0") -> sample output (all with the same number of steps).
        columns: Number of steps shown (evenly chosen along the trajectory).
        num_points: Points per panel.
        size: Pixel size of a panel.
    """
    labels = list(rows)
    first = rows[labels[0]]
    steps = first.x_hat.shape[0]
    picks = sorted({round(i * (steps - 1) / max(columns - 1, 1)) for i in range(columns)})
    fig = make_subplots(
        rows=len(labels),
        cols=len(picks),
        subplot_titles=[f"{lab}, t={first.times[i].item():.2f}" for lab in labels for i in picks],
        horizontal_spacing=0.01,
        vertical_spacing=0.06,
    )
    for r, lab in enumerate(labels, start=1):
        for c, i in enumerate(picks, start=1):
            p = _np(rows[lab].x_hat[i, :num_points])
            fig.add_trace(
                go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=2)), r, c
            )
    fig.update_xaxes(_AXIS, showticklabels=False)
    fig.update_yaxes(_AXIS, showticklabels=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(
        showlegend=False, width=size * len(picks) + 60, height=size * len(labels) + 80
    )
    return fig


def quality_figure(
    curves: Sequence[QualityPoint],
    metric: str = "w2",
    floor: FloorResult | None = None,
    title: str = "Sample quality versus NFE",
    log_y: bool = True,
    lower_is_better: bool | None = True,
) -> go.Figure:
    """A metric versus NFE, one line per label, with the metric's floor.

    Args:
        curves: Points from :func:`ucgm_lab.evaluation.quality_vs_nfe` (any labels).
        metric: Which metric to plot.
        floor: The metric between two independent data samples of the same size.
        title: Figure title.
        log_y: Logarithmic y axis (the x axis, NFE, is always logarithmic).
        lower_is_better: Says so on the y axis title: "(lower is better)" for True,
            "(higher is better)" for False (e.g. an accuracy), nothing for None (a metric with
            a target value, such as a spread of 1).
    """
    fig = go.Figure()
    by_label: dict[str, list[QualityPoint]] = {}
    for p in curves:
        by_label.setdefault(p.label, []).append(p)
    for label, pts in by_label.items():
        pts = sorted(pts, key=lambda q: q.nfe)
        fig.add_trace(
            go.Scatter(
                x=[p.nfe for p in pts],
                y=[p.metrics[metric] for p in pts],
                mode="lines+markers",
                name=label,
            )
        )
    if floor is not None:
        fig.add_hline(
            y=floor.mean,
            line_dash="dash",
            line_color="gray",
            annotation_text=f"floor (data vs data) {floor.mean:.3f}",
            annotation_position="bottom right",
        )
    direction = {True: " (lower is better)", False: " (higher is better)", None: ""}
    fig.update_xaxes(type="log", title="NFE")
    fig.update_yaxes(type="log" if log_y else "linear", title=metric + direction[lower_is_better])
    fig.update_layout(title=title, width=700, height=450)
    return fig
