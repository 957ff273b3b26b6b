"""Transports made visible (section 3.1, Tab. 2).

Coefficient curves, the cloud x_t as t moves, and a transport typed in by the learner with
the library's validation message.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..transports import (
    Transport,
    TransportConstraintError,
    TransportConstraintWarning,
    get_transport,
    list_transports,
)
from ..viz import density_heatmap
from ._base import Backend, Explorer, SettingsCache
from .formula import coefficient_from_expression

__all__ = [
    "COEFFICIENT_NAMES",
    "CustomTransportEditor",
    "TransportExplorer",
    "coefficient_from_expression",
    "coefficients_figure",
]

COEFFICIENT_NAMES = ("alpha", "gamma", "alpha_hat", "gamma_hat", "D")
"""The curves drawn for a transport: the four coefficients of Tab. 2 and D(t) of eq. (2)."""

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_CLOUD_AXIS = dict(range=[-3.2, 3.2], showgrid=False, zeroline=False)


Curves = tuple[np.ndarray, dict[str, np.ndarray]]


def _curves(transport: Transport, grid: int) -> Curves:
    """Times and coefficient values as float32 arrays (compact in plotly's JSON).

    Values that are not finite become NaN (a gap in the curve).
    """
    t = torch.linspace(0.0, 1.0, grid, dtype=torch.float64)
    c = transport.coefficients(t)
    values = {
        "alpha": c.alpha,
        "gamma": c.gamma,
        "alpha_hat": c.alpha_hat,
        "gamma_hat": c.gamma_hat,
        "D": c.D,
    }
    arrays = {k: v.to(torch.float32).numpy() for k, v in values.items()}
    return t.to(torch.float32).numpy(), {
        k: np.where(np.isfinite(v), v, np.nan) for k, v in arrays.items()
    }


def coefficients_figure(
    transports: Sequence[str | Transport] | None = None, grid: int = 201
) -> go.Figure:
    """Tab. 2 as curves: alpha, gamma, alpha_hat, gamma_hat and D(t), one line per transport.

    A sixth panel draws the path (gamma(t), alpha(t)) of the weights of x_t = alpha z + gamma x:
    Linear is a straight line from data (1, 0) to noise (0, 1), TrigFlow a quarter circle.

    Args:
        transports: Names or transports (default: all six of Tab. 2).
        grid: Number of times in [0, 1].

    Returns:
        A 2 x 3 plotly figure.
    """
    chosen = [get_transport(t) for t in (transports or list_transports())]
    titles = [
        *COEFFICIENT_NAMES[:4],
        "D(t) = alpha gamma_hat - alpha_hat gamma",
        "path (gamma, alpha)",
    ]
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.07)
    for k, tr in enumerate(chosen):
        t, values = _curves(tr, grid)
        color = _COLORS[k % len(_COLORS)]
        for j, name in enumerate(COEFFICIENT_NAMES):
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=values[name],
                    mode="lines",
                    line=dict(color=color),
                    name=tr.name,
                    legendgroup=tr.name,
                    showlegend=j == 0,
                ),
                row=j // 3 + 1,
                col=j % 3 + 1,
            )
        fig.add_trace(
            go.Scatter(
                x=values["gamma"],
                y=values["alpha"],
                mode="lines",
                line=dict(color=color),
                name=tr.name,
                legendgroup=tr.name,
                showlegend=False,
            ),
            row=2,
            col=3,
        )
    for j in range(5):
        fig.update_xaxes(title_text="t", row=j // 3 + 1, col=j % 3 + 1)
    fig.update_xaxes(title_text="gamma (data weight)", row=2, col=3)
    fig.update_yaxes(title_text="alpha (noise weight)", row=2, col=3)
    fig.update_layout(width=940, height=600, title="Transport coefficients (Tab. 2)")
    return fig


class TransportExplorer(Explorer):
    """Pick a transport and a time: its coefficient curves and the cloud x_t of a 2D data set.

    The same data points x and noise z are kept while t moves, so each point travels along
    x_t = alpha(t) z + gamma(t) x from the data (t = 0) to the noise (t = 1).

    Args:
        dataset: 2D data set (``toy_data.list_2d_datasets()``).
        num_points: Points in the cloud.
        seed: Seed of the data and the noise.
        transports: Names offered in the menu (default: the six of Tab. 2).
        backend: Figure backend, ``"output"``, ``"figurewidget"`` or ``"auto"``
            (see :class:`~ucgm_lab.widgets.FigureView`).
        shown_points: Points of the cloud x_t drawn (the first ones); the data are drawn as a
            density of all ``num_points``. Every SVG marker costs the browser time at each
            redraw.

    Controls:
        transport (menu), t (slider in [0, 1]).
    """

    def __init__(
        self,
        dataset: str = "checkerboard",
        num_points: int = 1000,
        seed: int = 0,
        transports: Sequence[str] | None = None,
        backend: Backend = "output",
        shown_points: int = 600,
    ) -> None:
        from toy_data import sample_2d

        self.shown_points = shown_points
        names = list(transports or list_transports())
        options = [(get_transport(n).name, n) for n in names]
        self.x = sample_2d(dataset, num_points, seed=seed).points.double()
        self.z = torch.randn(
            self.x.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64
        )
        self._curve_cache = SettingsCache(lambda transport: _curves(get_transport(transport), 201))
        fig = make_subplots(
            rows=1,
            cols=2,
            column_widths=[0.55, 0.45],
            subplot_titles=("coefficients", "x_t"),
            horizontal_spacing=0.1,
        )
        for j, name in enumerate(COEFFICIENT_NAMES):
            fig.add_trace(go.Scatter(mode="lines", name=name, line=_line_style(j)), 1, 1)
        fig.add_trace(
            go.Scatter(
                mode="lines", name="t", line=dict(color="black", dash="dot"), showlegend=False
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                mode="markers",
                name="values at t",
                marker=dict(color=_COLORS[:5], size=9),
                showlegend=False,
            ),
            1,
            1,
        )
        fig.add_trace(density_heatmap(self.x, name="data x"), 1, 2)
        fig.add_trace(
            go.Scatter(mode="markers", marker=dict(size=3, color="crimson"), name="x_t"), 1, 2
        )
        fig.update_xaxes(title_text="t", row=1, col=1)
        fig.update_xaxes(_CLOUD_AXIS, row=1, col=2)
        fig.update_yaxes(_CLOUD_AXIS, scaleanchor="x2", row=1, col=2)
        fig.update_layout(width=900, height=470, legend=dict(orientation="h", y=-0.15))
        controls = {
            "transport": w.Dropdown(options=options, value=names[0], description="transport"),
            "t": w.FloatSlider(
                value=0.5, min=0.0, max=1.0, step=0.01, description="t", continuous_update=True
            ),
        }
        self._finish(controls, fig, backend)

    def _render(self, transport: str, t: float) -> str:
        tr = get_transport(transport)
        grid, values = self._curve_cache(transport=transport)
        c = tr.coefficients(torch.tensor(t, dtype=torch.float64))
        now = [float(c.alpha), float(c.gamma), float(c.alpha_hat), float(c.gamma_hat), float(c.D)]
        n = self.shown_points
        x_t = (c.alpha * self.z[:n] + c.gamma * self.x[:n]).numpy()
        lo = float(min(np.nanmin(v) for v in values.values()))
        hi = float(max(np.nanmax(v) for v in values.values()))
        fig = self.figure
        for j, name in enumerate(COEFFICIENT_NAMES):
            fig.data[j].x, fig.data[j].y = grid, values[name]
        fig.data[5].x, fig.data[5].y = [t, t], [lo, hi]
        fig.data[6].x, fig.data[6].y = [t] * 5, now
        fig.data[8].x, fig.data[8].y = x_t[:, 0], x_t[:, 1]
        # Fixed ranges (per transport): moving t then only moves points, which a browser redraws
        # without relaying out the axes (the kernel-free twin, ucgm_lab.widgets.twin).
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        fig.layout.xaxis.range = [-0.02, 1.02]
        fig.layout.yaxis.range = [lo - pad, hi + pad]
        fig.layout.title = (
            f"{tr.name} at t = {t:.2f}: x_t = {_mix(now[0], now[1])}, "
            f"target {_mix(now[2], now[3])}, D = {now[4]:.2f}"
        )
        return f"<b>{tr.name}</b>, t = {t:.2f}"


# ---------------------------------------------------------------------- custom transports
class CustomTransportEditor(Explorer):
    """Type the four coefficients of a transport and see whether the paper's constraints hold.

    Each formula is parsed into an expression tree and checked against a whitelist
    (:mod:`ucgm_lab.widgets.formula`), never executed as Python. Each change rebuilds a
    :class:`~ucgm_lab.transports.Transport`; the status line shows
    the library's own message: an error when constraint (c) fails (D(t) vanishes inside
    (0, 1), so eq. (2) cannot divide by it), a warning when constraint (a) or (b) fails
    (boundary values or monotonicity), or that the transport is valid. The figure draws the
    curves and D(t), with the violations visible.

    Args:
        alpha, gamma, alpha_hat, gamma_hat: Initial formulas (default: Linear).
        backend: Figure backend (see :class:`~ucgm_lab.widgets.FigureView`).

    Controls:
        alpha, gamma, alpha_hat, gamma_hat (text boxes; a change applies on Enter or when
        the box loses focus).

    Attributes:
        transport: The last transport built, or None when the formulas do not make one.
        level: ``"ok"``, ``"warning"`` or ``"error"``.
        message: The validation message (empty when the transport is valid).
    """

    def __init__(
        self,
        alpha: str = "t",
        gamma: str = "1 - t",
        alpha_hat: str = "1",
        gamma_hat: str = "-1",
        backend: Backend = "output",
    ) -> None:
        self.transport: Transport | None = None
        self.level = "ok"
        self.message = ""
        fig = go.Figure()
        for j, name in enumerate(COEFFICIENT_NAMES):
            fig.add_trace(
                go.Scatter(
                    mode="lines",
                    name=name,
                    line=_line_style(j),
                )
            )
        fig.add_hline(y=0, line_color="gray", line_width=1)
        fig.update_xaxes(title_text="t", range=[0, 1])
        fig.update_layout(width=700, height=420, title="custom transport")
        layout = w.Layout(width="330px")
        controls = {
            name: w.Text(value=value, description=name, continuous_update=False, layout=layout)
            for name, value in zip(
                COEFFICIENT_NAMES[:4], (alpha, gamma, alpha_hat, gamma_hat), strict=True
            )
        }
        self._finish(controls, fig, backend, rows=[["alpha", "gamma"], ["alpha_hat", "gamma_hat"]])

    def _render(self, alpha: str, gamma: str, alpha_hat: str, gamma_hat: str) -> str:
        fig = self.figure
        formulas = dict(alpha=alpha, gamma=gamma, alpha_hat=alpha_hat, gamma_hat=gamma_hat)
        self.transport = None
        try:
            fns = {name: coefficient_from_expression(text, name) for name, text in formulas.items()}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TransportConstraintWarning)
                transport = Transport(**fns, name="custom")
        except (ValueError, TypeError, NameError, ArithmeticError, RuntimeError) as exc:
            # TransportConstraintError is a ValueError; formula errors surface here too.
            self.level, self.message = "error", str(exc)
            curves = self._raw_curves(formulas)
            kind = (
                "breaks constraint (c)"
                if isinstance(exc, TransportConstraintError)
                else "is not usable"
            )
            html = (
                f"<span style='color:#b00'><b>Error</b>: the transport {kind}. "
                f"{_html(self.message)}</span>"
            )
        else:
            self.transport = transport
            warned = [
                str(c.message) for c in caught if issubclass(c.category, TransportConstraintWarning)
            ]
            if warned:
                self.level, self.message = "warning", " ".join(warned)
                html = f"<span style='color:#b60'><b>Warning</b>: {_html(self.message)}</span>"
            else:
                self.level, self.message = "ok", ""
                html = (
                    "<span style='color:#070'><b>Valid</b>: "
                    "constraints (a), (b) and (c) hold.</span>"
                )
            curves = _curves(transport, 201)
        if curves is not None:
            grid, values = curves
            for j, name in enumerate(COEFFICIENT_NAMES):
                fig.data[j].x, fig.data[j].y = grid, values[name]
        else:
            for trace in fig.data:
                trace.x, trace.y = [], []
        fig.layout.title = f"custom transport: {self.level}"
        return html

    @staticmethod
    def _raw_curves(formulas: dict[str, str]) -> Curves | None:
        """The curves without validation, to show where a broken transport fails.

        None when a formula cannot be evaluated.
        """
        try:
            fns = {name: coefficient_from_expression(text, name) for name, text in formulas.items()}
            transport = Transport(**fns, name="custom", validate=False)
            return _curves(transport, 201)
        except Exception:  # noqa: BLE001 - a formula that cannot be evaluated has no curve
            return None


def _line_style(j: int) -> dict:
    """Line style of curve j of ``COEFFICIENT_NAMES``: hats dashed, D thick.

    The hats often coincide with alpha or gamma (TrigFlow: alpha_hat = gamma).
    """
    return dict(color=_COLORS[j], width=3 if j == 4 else 2, dash="dash" if j in (2, 3) else "solid")


def _mix(a: float, g: float) -> str:
    """'a z + g x' with the sign of g written as an operator."""
    return f"{a:.2f} z {'-' if g < 0 else '+'} {abs(g):.2f} x"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
