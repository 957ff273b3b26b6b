"""Deprecated: the peer comparison moved to :mod:`ucgm_lab.peers` (the adapters stay pure wrappers).

``ucgm_lab.adapters.peers.X`` reads ``X`` from :mod:`ucgm_lab.peers` (the plot from
:mod:`ucgm_lab.viz.quality`, the point type and table from :mod:`ucgm_lab.evaluation`).
"""

from .._deprecated import forward_names, warn_moved

warn_moved("ucgm_lab.adapters.peers", "ucgm_lab.peers", stacklevel=2)

_NEW = {
    name: f"ucgm_lab.peers:{name}"
    for name in (
        "DEFAULT_NFES",
        "DEFAULT_TOLERANCES",
        "PEER_LIBRARIES",
        "PEER_METHODS",
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
    )
}
_NEW["QualityPoint"] = "ucgm_lab.evaluation:QualityPoint"
_NEW["format_quality_table"] = "ucgm_lab.evaluation:format_quality_table"
_NEW["plot_quality_vs_nfe"] = "ucgm_lab.viz.quality:plot_quality_vs_nfe"
__getattr__ = forward_names(__name__, _NEW, warn=False)
