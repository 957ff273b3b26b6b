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

Static figures and helpers: :func:`coefficients_figure`, :func:`schedule_figure`,
:func:`guidance_sweep`, :func:`class_metrics`, :func:`coefficient_from_expression`,
:func:`parse_time_points`.
"""

from ._base import Explorer, FigureView, SettingsCache, figure_widget_available, single_thread
from .consistency import ConsistencyExplorer, x_hat_columns
from .guidance import (
    GuidanceExplorer,
    balanced_labels,
    class_accuracy,
    class_conditional_w2,
    class_metrics,
    class_spread,
    guidance_sweep,
)
from .sampler import SCHEDULES, SamplerExplorer, parse_time_points, schedule_figure
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
    "SamplerExplorer",
    "SettingsCache",
    "TransportExplorer",
    "balanced_labels",
    "class_accuracy",
    "class_conditional_w2",
    "class_metrics",
    "class_spread",
    "coefficient_from_expression",
    "coefficients_figure",
    "figure_widget_available",
    "guidance_sweep",
    "parse_time_points",
    "schedule_figure",
    "single_thread",
    "x_hat_columns",
]
