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
  Kumaraswamy exponent c = 1.2 at 5 NFE or fewer; above 5 NFE with the Adams-Moulton
  corrector (``corrector=True``, UniPC's idea in UCGM-S's variables, docs/paper-notes.md F7:
  third order at the same NFE). On the derived and seen lambda = 0 models without the
  enhanced target, the corrector was worse than Adams-Bashforth alone on most of them at
  4 NFE, so it is not used there; at 8 and 16 NFE it lowered the sum over those models of the
  ratios to the best diffusers solver (the "corrector toggled" ratios of docs/benchmarks.md,
  "recommended-settings");
* lambda = 0 with the enhanced target (``enhanced_target=True``: trained with zeta > 0, the
  paper's guidance-free target): at 5 NFE or fewer the velocity form with the corrector and
  a first-order last step (``lower_order_final=True``: the sample is the last evaluation's own
  data estimate, as diffusers' solvers do below 15 steps; on
  ``8gaussians-cond-lam0-zeta0.6`` the two-step extrapolation over the last long step to the
  data was several times worse than the best diffusers solver at 4 NFE, with or without the
  corrector, and Euler's method 1.3 times; without that extrapolation it scores below both
  diffusers solvers); above, the two-step Adams-Bashforth data form
  (``multistep="data"``: x^ extrapolated in s = gamma / alpha, the data-prediction variable
  of DPM-Solver++) without the corrector: in the runs that chose it, on that model the
  velocity form, with or without the corrector, stayed above the best diffusers solver at 8
  and 16 NFE, and the data form below. This rests on the project's one enhanced-target model;
* 0 < lambda < 1: order 1 with rho = lambda (Sec. 3.2 (b): the paper found it best; fresh
  noise for a fraction lambda of the noise estimate at every step), no multistep, the "even"
  grid. Adams-Bashforth with rho = 1 was better on the 2D lambda = 0.5 models but several
  times worse than the diffusers solvers on the digits one; rho = lambda beat them on all three
  at 8 and 16 NFE;
* lambda = 1: order 1 with rho = 1 on the "even" grid (no extrapolation: a lambda = 1 model
  already jumps to the data estimate, and extrapolating its estimates hurt in every search).

The lambda = 0 and lambda = 1 structures are those the searches on the zoo's 2D models
(``ucgm_lab/zoo/sampler_settings.json``) chose at 8 and 16 NFE; the grid exponent was chosen on
the checkerboard models and the torchcfm peer; the 0 < lambda < 1 and enhanced-target rules
were chosen on the checkerboard, moons and digits lambda = 0.5 models and on the zoo's
zeta = 0.6 model, against diffusers' DPM-Solver++ 2M and UniPC; the corrector (where it is
used and where not) on the derived and seen lambda = 0 models (``benchmarks/recommended_settings.py``:
three noise draws of 4000 samples). Known limits (measured in docs/benchmarks.md,
"recommended-settings"): at 4 NFE no order-1 setting of ``sample`` that was tried (rho from 0
to lambda, the three multistep forms with and without the corrector, a first-order last
step) matched DPM-Solver++ 2M /
UniPC on the digits lambda = 0.5 model; at 8 and 16 NFE
several lambda = 0 models are at their converged score (the benchmark prints it: the
recommendation at 64 NFE), and where a diffusers solver scores below that converged score
(digits lambda = 0 and the held-out pinwheel at 16 NFE) its win comes from its
discretization error, which no more accurate solver can match.

For a transport whose alpha / (alpha + gamma) is not t (TrigFlow, ...) the grid is placed at
the same flow noise levels sigma as for the linear transport (``transport=``), as diffusers'
flow schedulers do: t_i solves alpha(t_i) / (alpha(t_i) + gamma(t_i)) = sigma_i.

Which models the rule was derived on, which were held out (two 2D data sets and networks
the project does not ship, trained by ``benchmarks/heldout_models.py``), and the comparison with diffusers' DPM-Solver++ and UniPC at 4, 8 and 16 NFE) is in
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
    multistep, corrector, final = None, False, False
    if lam == 0 and nfe <= FEW_NFE:
        multistep, corrector, final = "velocity", enhanced_target, enhanced_target
    elif lam == 0:
        multistep, corrector = ("data", False) if enhanced_target else ("velocity", True)
    common = {
        "nfe": nfe,
        "order": 1,
        "kappa": 0.0,
        "rho": float(lam),
        "multistep": multistep,
        "corrector": corrector,
        "lower_order_final": final,
    }
    if is_flow_linear(tr):
        return SamplerSettings(steps=nfe, schedule=schedule, **common)
    return SamplerSettings(time_points=_flow_grid(tr, schedule, nfe), **common)
