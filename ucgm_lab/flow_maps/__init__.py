"""Flow maps beyond UCGM: MeanFlow's average-velocity objective and its few-step sampler.

UCGM's objective trains a network of one time, F(x_t, t). A flow map u(z_t, r, t) takes a
second time and moves a sample from t to any earlier r in one step (MeanFlow, Geng et al.
2025). This package trains such maps on the library's transports and samples with them:

* :class:`MeanFlowObjective`: the MeanFlow loss (identity, JVP target, adaptive weighting).
* :class:`FlowMapTimeDistribution`: MeanFlow's (r, t) draws.
* :func:`flow_map_sample`: z_r = z_t - (t - r) u(z_t, r, t), one or a few steps.

The library's networks take the second time with ``flow_map=True`` (e.g. ``MLP2D``).
"""

from .objective import (
    MeanFlowObjective,
    MeanFlowOutput,
    adaptive_weight,
    call_flow_map,
    check_flow_map_model,
    check_velocity_transport,
    meanflow_target,
)
from .sampler import flow_map_sample, flow_map_times
from .times import FlowMapTimeDistribution, check_time_pair

__all__ = [
    "FlowMapTimeDistribution",
    "MeanFlowObjective",
    "MeanFlowOutput",
    "adaptive_weight",
    "call_flow_map",
    "check_flow_map_model",
    "check_time_pair",
    "check_velocity_transport",
    "flow_map_sample",
    "flow_map_times",
    "meanflow_target",
]
