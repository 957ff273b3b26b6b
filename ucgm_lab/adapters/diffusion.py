"""Variance-preserving diffusion models: epsilon, v and sample prediction (DDPM / diffusers).

Convention of the source: x_k = sqrt(abar_k) x + sqrt(1 - abar_k) z with abar decreasing in
the time (discrete timesteps k = 0 .. T - 1, or a continuous t in [0, 1]), data at the start.
That is already the library's orientation (data at t = 0), so the UCGM transport is

    alpha(t) = sqrt(1 - abar(t)),   gamma(t) = sqrt(abar(t))      (x_t is the DDPM state itself)

and the network output is the F of

* ``"epsilon"``: F = z: alpha_hat = 1, gamma_hat = 0, D = -gamma; f^x = (x_t - alpha F) / gamma,
  f^z = F (the DDPM formulas for x0 and eps);
* ``"v_prediction"``: F = v = sqrt(abar) z - sqrt(1 - abar) x: alpha_hat = gamma,
  gamma_hat = -alpha, D = -(alpha^2 + gamma^2) = -1; f^x = gamma x_t - alpha F,
  f^z = alpha x_t + gamma F (Salimans & Ho);
* ``"sample"``: F = x: alpha_hat = 0, gamma_hat = 1, D = alpha.

UCGM-S with kappa = rho = 0 and order 1 then reconstructs x' = alpha(t') z^ + gamma(t') x^:
the deterministic DDIM step (eta = 0), exactly.

Discrete time: timestep k is library time t_k = (k + 1) / T, and t = 0 is "abar = 1" (the
clean end that DDIM's last step jumps to, diffusers' ``set_alpha_to_one=True``). Between the
nodes log abar is interpolated linearly, so any t in [0, 1] is a valid time; on the
scheduler's grid (:meth:`DiscreteVPSchedule.time_points`) UCGM-S lands exactly on the
scheduler's timesteps. The network receives k = T t - 1 (a float; ``round_timesteps=True``
rounds it for networks that index a table).

The schedules break the boundary constraints of section 3.1 by design (abar(1) > 0 leaves
some data at t = 1: gamma(1) != 0, alpha(1) < 1); the transport declares that.

The schedules are in :mod:`ucgm_lab.adapters.vp_schedules`; every name is importable from here
as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from ucgm_lab.adapters.base import (
    AdaptedModel,
    AdaptedNetwork,
    InputConvention,
    check_choice,
)
from ucgm_lab.transports import Transport

from .vp_schedules import DDIM_SPACINGS, ContinuousVPSchedule, DiscreteVPSchedule, VPSchedule

__all__ = [
    "DDIM_SPACINGS",
    "VP_PREDICTIONS",
    "ContinuousVPSchedule",
    "DiscreteVPSchedule",
    "VPSchedule",
    "adapt_diffusers",
    "adapt_vp_diffusion",
    "vp_transport",
]

VPPrediction = Literal["epsilon", "v_prediction", "sample"]
VP_PREDICTIONS: tuple[str, ...] = ("epsilon", "v_prediction", "sample")
"""Prediction types of a VP diffusion network (diffusers' ``prediction_type`` names)."""

_VP_DEVIATIONS = ("alpha(0)=0", "alpha(1)=1", "gamma(1)=0")


# ---------------------------------------------------------------------- transport and adapters
def vp_transport(schedule: VPSchedule, prediction: VPPrediction = "epsilon") -> Transport:
    """The UCGM transport of a VP diffusion network (see the module docstring).

    Args:
        schedule: A :class:`DiscreteVPSchedule` or :class:`ContinuousVPSchedule`.
        prediction: One of :data:`VP_PREDICTIONS`.

    Returns:
        The transport (data at t = 0, ``model_time = schedule.network_time``).
    """
    check_choice(prediction, VP_PREDICTIONS, "prediction type")

    def alpha(t: Tensor) -> Tensor:
        return torch.sqrt((1 - schedule.alpha_bar(t)).clamp_min(0))

    def gamma(t: Tensor) -> Tensor:
        return torch.sqrt(schedule.alpha_bar(t).clamp_min(0))

    if prediction == "epsilon":
        alpha_hat, gamma_hat = torch.ones_like, torch.zeros_like
    elif prediction == "v_prediction":
        alpha_hat = gamma

        def gamma_hat(t: Tensor) -> Tensor:
            return -alpha(t)
    else:
        alpha_hat, gamma_hat = torch.zeros_like, torch.ones_like
    return Transport(
        alpha=alpha,
        gamma=gamma,
        alpha_hat=alpha_hat,
        gamma_hat=gamma_hat,
        name=f"VP {schedule.name}, {prediction}",
        model_time=schedule.network_time,
        allowed_deviations=frozenset(_VP_DEVIATIONS),
    )


def adapt_vp_diffusion(
    model: Callable[..., Any],
    schedule: VPSchedule,
    prediction: VPPrediction = "epsilon",
    *,
    inputs: InputConvention = "x_t",
    round_timesteps: bool = False,
) -> AdaptedModel:
    """Adapt a VP diffusion network (DDPM / diffusers / score_sde VP) to UCGM.

    Args:
        model: The network, called ``model(x_k, k[, y])`` with the DDPM state x_k and the
            timestep k (float, shape (B,)) for a :class:`DiscreteVPSchedule`, or the scaled
            continuous time for a :class:`ContinuousVPSchedule`. diffusers models returning
            an object with ``.sample`` are unwrapped.
        schedule: The training schedule.
        prediction: ``"epsilon"`` (default), ``"v_prediction"`` or ``"sample"``.
        inputs: Calling convention (:data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).
        round_timesteps: Round the timestep passed to the network to an integer (for networks
            that look timesteps up in a table). The transport still uses the exact time, so
            stay on the schedule's grid (:meth:`AdaptedModel.time_points`) for exactness.

    Returns:
        The :class:`AdaptedModel`. Its native grid is DDIM's (discrete) or uniform (continuous).
    """
    transport = vp_transport(schedule, prediction)
    output = {
        "epsilon": "F = eps unchanged (alpha_hat = 1, gamma_hat = 0)",
        "v_prediction": (
            "F = v = sqrt(abar) eps - sqrt(1 - abar) x unchanged "
            "(alpha_hat = gamma, gamma_hat = -alpha)"
        ),
        "sample": "F = x0 prediction unchanged (alpha_hat = 0, gamma_hat = 1)",
    }[prediction]
    if isinstance(schedule, DiscreteVPSchedule):
        T = schedule.num_train_timesteps
        time_text = f"library t = (k + 1) / {T}, network gets k = {T} t - 1" + (
            " (rounded)" if round_timesteps else ""
        )
        native = f"DDIM (eta = 0, {schedule.spacing!r} spacing, final abar = 1)"
    else:
        scale = float(schedule.network_time(torch.tensor(1.0)))
        time_text = f"library t = diffusion time, network gets {scale:g} t"
        native = "DDIM (eta = 0) on a uniform grid in t"
    mapping = (
        f"VP diffusion {prediction} model ({schedule.name}), x_t = sqrt(abar) x + sqrt(1 - abar) z "
        "(data at t = 0) -> Transport(alpha = sqrt(1 - abar), gamma = sqrt(abar)): "
        f"{time_text}, {output}"
    )
    return AdaptedModel(
        model=AdaptedNetwork(
            model, inputs=inputs, source_time=torch.round if round_timesteps else None
        ),
        transport=transport,
        mapping=mapping,
        native_grid=schedule.native_time_points,
        native_sampler=native,
    )


def adapt_diffusers(
    model: Callable[..., Any],
    scheduler: Any,
    *,
    prediction: VPPrediction | None = None,
    round_timesteps: bool = False,
) -> AdaptedModel:
    """Adapt a diffusers model together with its (discrete VP) scheduler.

    Reads ``alphas_cumprod``, ``timestep_spacing``, ``steps_offset`` and ``prediction_type``
    from the scheduler's config; UCGM-S ignores the scheduler's clipping/thresholding.

    Args:
        model: e.g. a ``UNet2DModel`` (called ``model(x, t)``; ``.sample`` is unwrapped).
        scheduler: e.g. ``DDIMScheduler``, ``DDPMScheduler``, ``EulerDiscreteScheduler``.
        prediction: Override the scheduler's ``prediction_type``.
        round_timesteps: See :func:`adapt_vp_diffusion`.

    Returns:
        The :class:`AdaptedModel`.
    """
    schedule = DiscreteVPSchedule.from_diffusers(scheduler)
    config = getattr(scheduler, "config", None)
    pred = prediction or getattr(config, "prediction_type", "epsilon")
    return adapt_vp_diffusion(model, schedule, pred, round_timesteps=round_timesteps)
