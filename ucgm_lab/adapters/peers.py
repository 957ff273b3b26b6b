"""Deprecated: the peer comparison moved to :mod:`ucgm_lab.peers` (the adapters stay pure wrappers).

``ucgm_lab.adapters.peers.X`` reads ``X`` from :mod:`ucgm_lab.peers` (the plot from
:mod:`ucgm_lab.viz.quality`, the point type and table from :mod:`ucgm_lab.evaluation`).
"""

import importlib

from .._deprecated import warn_moved

warn_moved("ucgm_lab.adapters.peers", "ucgm_lab.peers", stacklevel=2)

_ELSEWHERE = {
    "QualityPoint": "ucgm_lab.evaluation",
    "format_quality_table": "ucgm_lab.evaluation",
    "plot_quality_vs_nfe": "ucgm_lab.viz.quality",
}


def __getattr__(name: str) -> object:
    """Forward ``name`` to its new module (warned once, at import)."""
    return getattr(importlib.import_module(_ELSEWHERE.get(name, "ucgm_lab.peers")), name)
