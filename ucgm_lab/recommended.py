"""Recommended UCGM-S settings at a given NFE, without a search.

:func:`ucgm_lab.sample`'s defaults are Alg. 2 as printed (order 1, kappa = rho = 0, the "even"
grid): on a flow-matching transport exactly Euler's method, which is what the notebooks teach
and what ``sample`` keeps computing. :func:`recommended_settings` gives instead the settings
that the sampler-settings searches (:func:`ucgm_lab.search_sampler`) kept finding, reduced to
one rule per kind of model, so that a user who has not run a search gets them:

* lambda = 0 (``consistency_ratio=0``: UCGM-T with lambda = 0, and flow-matching models such as
  the torchcfm and flow_matching peers): the two-step Adams-Bashforth form of order 1 on the
  velocity (``multistep="velocity"``, docs/paper-notes.md F7: second order at one evaluation
  per step), rho = 0, on the "even" grid (t_i = 0.999 (1 - i / N)), with the grid's
  Kumaraswamy exponent c = 1.2 at 5 NFE or fewer;
* 0 < lambda < 1: the same Adams-Bashforth form with rho = 1 (fresh noise replaces the noise
  estimate at every step) on the "even" grid;
* lambda = 1: order 1 with rho = 1 on the "even" grid (no extrapolation: a lambda = 1 model
  already jumps to the data estimate, and extrapolating its estimates hurt in every search).

The searches on the zoo's 2D models (``ucgm_lab/zoo/sampler_settings.json``) chose these
structures (Adams-Bashforth velocity with rho = 0 for lambda = 0; rho = 1 for lambda > 0) at
8 and 16 NFE; the grid exponent was chosen on the checkerboard models and the torchcfm peer.

For a transport whose alpha / (alpha + gamma) is not t (TrigFlow, ...) the grid is placed at
the same flow noise levels sigma as for the linear transport (``transport=``), as diffusers'
flow schedulers do: t_i solves alpha(t_i) / (alpha(t_i) + gamma(t_i)) = sigma_i.

How the rule was derived and validated (models it was derived on, models held out, and the
comparison with diffusers' DPM-Solver++ and UniPC at 4, 8 and 16 NFE) is in
``benchmarks/recommended_settings.py`` and docs/benchmarks.md ("recommended-settings").
"""

from __future__ import annotations

from .schedules import KumaraswamySchedule
from .search import SamplerSettings
from .transports import Transport, flow_time, get_transport, is_flow_linear

__all__ = ["recommended_settings"]

FEW_NFE = 5
"""At most this many NFE the multi-step rule uses the grid exponent c = 1.2."""


def _flow_grid(tr: Transport, schedule: KumaraswamySchedule, points: int) -> tuple[float, ...]:
    """The schedule's times read as flow noise levels sigma, mapped to ``tr``'s own times."""
    sigmas = [float(s) for s in schedule.time_points(points)[:-1]]
    return tuple(flow_time(tr, s) for s in sigmas)


def recommended_settings(
    nfe: int,
    consistency_ratio: float = 0.0,
    transport: str | Transport = "linear",
    *,
    enhanced_target: bool = False,
) -> SamplerSettings:
    """Settings of :func:`ucgm_lab.sample` recommended at ``nfe`` network evaluations.

    Use ``sample(model, noise, transport, **recommended_settings(8).as_kwargs())`` (with a
    ``generator`` for rho > 0); for class labels pass ``y`` as well (no guidance is
    recommended: search it with :func:`ucgm_lab.search_sampler`).

    Args:
        nfe: The budget of network evaluations (>= 1); the settings use exactly ``nfe``.
        consistency_ratio: lambda, the model's UCGM-T consistency ratio in [0, 1] (0 for
            flow-matching and diffusion models).
        transport: The model's transport (a name or a :class:`Transport`): only its
            alpha / (alpha + gamma) is used, to place the grid.
        enhanced_target: Whether the model was trained with the enhanced target (zeta > 0,
            UCGM-T's guidance-free training; the zoo's ``recipe["enhancement_ratio"] > 0``).
            At 5 NFE or fewer such a model gets no multistep (order 1, Euler on a flow
            transport); above, the same settings as without the flag.

    Returns:
        :class:`~ucgm_lab.search.SamplerSettings` with exactly ``nfe`` evaluations.

    Raises:
        ValueError: A bad ``nfe`` or ``consistency_ratio``, or a transport that does not
            reach the flow noise levels of the grid (EDM).
    """
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer (network evaluations), got {nfe!r}.")
    lam = consistency_ratio
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(
            f"consistency_ratio must be lambda in [0, 1] (0: flow matching), got {lam!r}."
        )
    if not isinstance(enhanced_target, bool):
        raise TypeError(
            f"enhanced_target must be True or False (trained with zeta > 0), got {enhanced_target!r}."
        )
    tr = get_transport(transport)
    c = 1.2 if lam == 0 and nfe <= FEW_NFE else 1.0
    schedule = KumaraswamySchedule(1.0, 1.0, c, 0.001, 0.0)
    if lam == 0:
        multistep = None if enhanced_target and nfe <= FEW_NFE else "velocity"
    else:
        multistep = None
    common = {
        "nfe": nfe,
        "order": 1,
        "kappa": 0.0,
        "rho": float(lam),
        "multistep": multistep,
    }
    if is_flow_linear(tr):
        return SamplerSettings(steps=nfe, schedule=schedule, **common)
    return SamplerSettings(time_points=_flow_grid(tr, schedule, nfe), **common)
