"""Interactive explorers for the notebooks: ipywidgets controls driving plotly figures.

Each explorer is an object with ``controls`` (name -> ipywidgets control), ``figure`` (a
plotly ``Figure`` redrawn into an ``ipywidgets.Output``, or with ``backend="figurewidget"`` a
``FigureWidget``: see :class:`FigureView`), ``status`` (a text line with metrics or the error
of the last change) and ``update(**values)``, which sets controls exactly as a learner would
and redraws once. Show one in a notebook by making it the last expression of a cell.
Sampler outputs are cached per setting, so moving a slider back is instant; nothing trains
inside a callback.

* :class:`TransportExplorer`: coefficient curves of Tab. 2 and the cloud x_t as t moves.
* :class:`CustomTransportEditor`: type alpha, gamma, alpha_hat, gamma_hat; see the
  validation message of constraints (a)-(c).
* :class:`ConsistencyExplorer`: lambda in {0, 0.5, 1}: x^ along a trajectory (Fig. 2) and
  the samples, for a step count and rho.
* :class:`SamplerExplorer`: kappa, rho (constant or auto), order, steps, schedule or explicit
  time points (Fig. 3c); paths, samples and the time grid.
* :class:`GuidanceExplorer`: enhanced target (zeta > 0) against CFG on a zeta = 0 model at
  equal NFE (Fig. 3b).

* :class:`KappaRhoExplorer`: kappa and rho sliders over cached image trajectories
  (:mod:`~ucgm_lab.widgets.images`).

Static figures and helpers: :func:`coefficients_figure`, :func:`schedule_figure`,
:func:`coefficient_from_expression`, :func:`parse_time_points`. The class-conditional
scores and the guidance sweep moved out of the widgets (``ucgm_lab.metrics.classes``,
``ucgm_lab.evaluation.guidance_sweep``); their old names here are deprecated aliases.
"""

from .._deprecated import forward_names
from ..schedules import SCHEDULES
from ._base import Explorer, FigureView, SettingsCache, figure_widget_available, single_thread
from .consistency import ConsistencyExplorer, x_hat_columns
from .guidance import GuidanceExplorer
from .images import KappaRhoExplorer, TrajectoryCache, cache_trajectories
from .sampler import SamplerExplorer, parse_time_points, schedule_figure
from .transports import (
    COEFFICIENT_NAMES,
    CustomTransportEditor,
    TransportExplorer,
    coefficient_from_expression,
    coefficients_figure,
)

__all__ = [
    "COEFFICIENT_NAMES",
    "SCHEDULES",
    "ConsistencyExplorer",
    "CustomTransportEditor",
    "Explorer",
    "FigureView",
    "GuidanceExplorer",
    "KappaRhoExplorer",
    "SamplerExplorer",
    "SettingsCache",
    "TransportExplorer",
    "TrajectoryCache",
    "cache_trajectories",
    "coefficient_from_expression",
    "coefficients_figure",
    "figure_widget_available",
    "parse_time_points",
    "schedule_figure",
    "single_thread",
    "x_hat_columns",
]

_MOVED = {
    **{
        name: f"ucgm_lab.metrics.classes:{name}"
        for name in (
            "balanced_labels",
            "class_accuracy",
            "class_conditional_w2",
            "class_metrics",
            "class_spread",
        )
    },
    "guidance_sweep": "ucgm_lab.evaluation:guidance_sweep",
}
__getattr__ = forward_names(__name__, _MOVED, stacklevel=2)
