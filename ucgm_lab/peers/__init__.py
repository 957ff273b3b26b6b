"""UCGM-S on models trained by other libraries, against those libraries' own solvers.

* :mod:`~ucgm_lab.peers.training`: ``train_peer`` (torchcfm, flow_matching), ``PeerModel``.
* :mod:`~ucgm_lab.peers.solvers`: ``peer_solve`` with the peers' ODE solvers.
* :mod:`~ucgm_lab.peers.comparison`: quality-versus-NFE curves of both, the data floor, the
  NFE each sampler needs to match a peer (``format_match_table``).

The plot is :func:`ucgm_lab.viz.quality.plot_quality_vs_nfe`; the table of the points
:func:`ucgm_lab.evaluation.format_quality_table`; the stored peer models ``ucgm_lab.zoo.peers``.
"""

from .comparison import (
    DEFAULT_NFES,
    DEFAULT_TOLERANCES,
    PEER_METRIC,
    UCGM_SCHEDULES,
    compare_samplers,
    data_floor,
    format_match_table,
    make_metric,
    nfe_to_reach,
    peer_curve,
    peer_targets,
    ucgm_curve,
    ucgm_schedule,
)
from .solvers import PEER_METHODS, SolveResult, peer_solve
from .training import PEER_LIBRARIES, PeerModel, TrainConfig, train_peer

__all__ = [
    "DEFAULT_NFES",
    "DEFAULT_TOLERANCES",
    "PEER_LIBRARIES",
    "PEER_METHODS",
    "PEER_METRIC",
    "UCGM_SCHEDULES",
    "PeerModel",
    "SolveResult",
    "TrainConfig",
    "compare_samplers",
    "data_floor",
    "format_match_table",
    "make_metric",
    "nfe_to_reach",
    "peer_curve",
    "peer_solve",
    "peer_targets",
    "train_peer",
    "ucgm_curve",
    "ucgm_schedule",
]
