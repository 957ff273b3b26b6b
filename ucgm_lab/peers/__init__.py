"""UCGM-S on models trained by other libraries, against those libraries' own solvers.

* :mod:`~ucgm_lab.peers.training`: ``train_peer`` (torchcfm, flow_matching), ``PeerModel``.
* :mod:`~ucgm_lab.peers.solvers`: ``peer_solve`` with the peers' ODE solvers.
* :mod:`~ucgm_lab.peers.diffusers_solvers`: ``diffusers_sample``: diffusers' DPM-Solver++ and
  UniPC in flow mode on any UCGM model (diffusers is imported on first use).
* :mod:`~ucgm_lab.peers.comparison`: quality-versus-NFE curves of both, the data floor, the
  NFE each sampler needs to match a peer (``format_match_table``).

The plot is :func:`ucgm_lab.viz.quality.plot_quality_vs_nfe`; the table of the points
:func:`ucgm_lab.evaluation.format_quality_table`; the stored peer models ``ucgm_lab.zoo.peers``.
"""

from . import comparison, diffusers_solvers, solvers, training
from .comparison import *  # noqa: F403  (the names of __all__)
from .diffusers_solvers import *  # noqa: F403
from .solvers import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [
    *comparison.__all__,
    *diffusers_solvers.__all__,
    *solvers.__all__,
    *training.__all__,
]
