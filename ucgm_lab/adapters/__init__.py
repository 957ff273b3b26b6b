"""UCGM-S as a plug-and-play sampler for models trained elsewhere (paper section 4, Tab. 3).

Each adapter returns an :class:`AdaptedModel`: a wrapper ``model(x_t, t, y=None) -> F`` around
the source network and the :class:`~ucgm_lab.transports.Transport` it was trained with. The
sampler is used unchanged, ``sample(adapted.model, noise, adapted.transport, steps, ...)``,
and with ``kappa = rho = 0``, ``order = 1`` and the source's own grid
(``adapted.time_points(steps)``) it reproduces the source library's Euler/DDIM sampler.

=================================  ===========================================================
adapter                            source convention -> UCGM transport
=================================  ===========================================================
:func:`adapt_flow_matching`        flow_matching: x_s = a(s) x + b(s) z, data at s = 1,
                                   velocity -> ``from_data_at_one(alpha=b, gamma=a,
                                   alpha_hat=b', gamma_hat=a')``; CondOT = ReLinear (Tab. 2)
:func:`adapt_torchcfm`             torchcfm matchers (CondOT, target, VP, with sigma)
:func:`adapt_vp_diffusion`         VP epsilon / v / sample prediction, discrete (DDPM,
                                   :class:`DiscreteVPSchedule`) or continuous time:
                                   alpha = sqrt(1 - abar), gamma = sqrt(abar)
:func:`adapt_diffusers`            a diffusers model + its scheduler's config
:func:`adapt_edm_denoiser`         EDM D(x; sigma): alpha = sigma / sqrt(1 + sigma^2),
                                   gamma = 1 / sqrt(1 + sigma^2), F = D
=================================  ===========================================================

The adapters are pure wrappers: training models with the peer libraries and comparing UCGM-S
with their solvers is :mod:`ucgm_lab.peers` (``ucgm_lab.adapters.peers`` is its deprecated alias).
"""

from ucgm_lab.adapters.base import INPUT_CONVENTIONS, AdaptedModel, AdaptedNetwork, call_source
from ucgm_lab.adapters.diffusion import (
    DDIM_SPACINGS,
    VP_PREDICTIONS,
    ContinuousVPSchedule,
    DiscreteVPSchedule,
    adapt_diffusers,
    adapt_vp_diffusion,
    vp_transport,
)
from ucgm_lab.adapters.edm import (
    EDMPreconditioned,
    EDMSigmaSchedule,
    adapt_edm_denoiser,
    edm_transport,
    karras_sigmas,
)
from ucgm_lab.adapters.flow import (
    FLOW_PREDICTIONS,
    AffinePath,
    adapt_flow_matching,
    adapt_torchcfm,
    flow_transport,
)

__all__ = [
    "DDIM_SPACINGS",
    "FLOW_PREDICTIONS",
    "INPUT_CONVENTIONS",
    "VP_PREDICTIONS",
    "AdaptedModel",
    "AdaptedNetwork",
    "AffinePath",
    "ContinuousVPSchedule",
    "DiscreteVPSchedule",
    "EDMPreconditioned",
    "EDMSigmaSchedule",
    "adapt_diffusers",
    "adapt_edm_denoiser",
    "adapt_flow_matching",
    "adapt_torchcfm",
    "adapt_vp_diffusion",
    "call_source",
    "edm_transport",
    "flow_transport",
    "karras_sigmas",
    "vp_transport",
]
