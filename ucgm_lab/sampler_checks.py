"""The argument checks of :func:`ucgm_lab.sample`, before any work starts.

Every bad argument gets a one-line error that says what was wrong and what is allowed.

Split out of :mod:`ucgm_lab.sampler`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .model_api import (
    Model,
    check_batch,
    check_labels,
    check_model_takes_labels,
    resolve_null_class,
)
from .sampler_corrector import check_corrector
from .sampler_grid import _unit_number
from .sampler_steps import MULTISTEP_FORMS
from .transports import Transport, get_transport

__all__ = ["CheckedSettings", "check_settings"]


@dataclass(frozen=True)
class CheckedSettings:
    """The settings of a :func:`ucgm_lab.sample` call after their checks.

    Attributes:
        transport: The transport (a name resolved).
        kappa: The extrapolation ratio as a float in [0, 1].
        rho_mode: The constant stochastic ratio in [0, 1], or None for "auto".
        null_class: The null class id of guidance (resolved from the model), or as given.
    """

    transport: Transport
    kappa: float
    rho_mode: float | None
    null_class: int | None


def check_settings(
    model: Model,
    noise: Tensor,
    transport: str | Transport,
    *,
    order: int,
    kappa: float,
    rho: float | str,
    y: Tensor | None,
    guidance_scale: float,
    guidance_interval: tuple[float, float],
    guidance_interval_time: str,
    null_class: int | None,
    extrapolation_start: int,
    correction: str,
    multistep: str | None,
    corrector: bool,
    lower_order_final: bool,
    generator: torch.Generator | None,
) -> CheckedSettings:
    """Check the arguments of :func:`ucgm_lab.sample` (see there) that need no time grid.

    Raises:
        TypeError, ValueError: The first bad argument, in one line.
    """
    check_batch(noise, "noise")
    batch = noise.shape[0]
    check_labels(y, batch, "y")
    check_model_takes_labels(model, y)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__} "
            "(e.g. torch.Generator().manual_seed(123), not 123)."
        )
    if null_class is not None and (
        isinstance(null_class, bool) or not isinstance(null_class, int) or null_class < 0
    ):
        raise TypeError(
            f"null_class must be a class id (an integer >= 0) or None, got {null_class!r}."
        )
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)):
        raise TypeError(
            f"guidance_scale must be a finite number (1 = no guidance), got {guidance_scale!r}."
        )
    if not math.isfinite(guidance_scale):
        raise ValueError(
            f"guidance_scale must be a finite number (1 = no guidance), got {guidance_scale}."
        )
    if guidance_interval_time not in ("library", "network"):
        raise ValueError(
            f"guidance_interval_time must be 'library' or 'network', got {guidance_interval_time!r}."
        )
    tr = get_transport(transport)
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    if correction not in ("noise", "data"):
        raise ValueError(f"correction must be 'noise' (the paper's) or 'data', got {correction!r}.")
    if multistep is not None and multistep not in MULTISTEP_FORMS:
        raise ValueError(
            "multistep must be None (Alg. 2), 'velocity', 'noise' or 'data' (two-step "
            f"Adams-Bashforth), got {multistep!r}."
        )
    kappa = _unit_number(kappa, "kappa (extrapolation ratio)")
    if isinstance(rho, str):
        if rho.lower() != "auto":
            raise ValueError(f"rho must be a number in [0, 1] or 'auto', got {rho!r}.")
        rho_mode: float | None = None
    else:
        rho_mode = _unit_number(rho, "rho (stochastic ratio)")
    if multistep is not None and (order != 1 or kappa != 0.0):
        raise ValueError(
            f"multistep={multistep!r} replaces kappa and the order-2 correction: use it with "
            f"order=1 and kappa=0 (got order={order}, kappa={kappa})."
        )
    check_corrector(corrector, multistep, rho_mode)
    if not isinstance(lower_order_final, bool):
        raise TypeError(f"lower_order_final must be True or False, got {lower_order_final!r}.")
    if lower_order_final and multistep is None and kappa == 0.0:
        raise ValueError(
            "lower_order_final=True removes the extrapolation of the last step: use it with "
            "multistep='velocity', 'noise' or 'data', or kappa > 0 (got neither)."
        )
    if (
        isinstance(extrapolation_start, bool)
        or not isinstance(extrapolation_start, int)
        or extrapolation_start < 1
    ):
        raise ValueError(
            f"extrapolation_start must be an integer >= 1, got {extrapolation_start!r}."
        )
    if guidance_scale != 1.0:
        if y is None:
            raise ValueError("guidance_scale != 1 needs class labels y.")
        null_class = resolve_null_class(model, null_class)
        if null_class is None:
            raise ValueError(
                "Guidance needs the null class id: pass null_class=... or give the model `null_class`."
            )
    if (
        not isinstance(guidance_interval, (tuple, list))
        or len(guidance_interval) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in guidance_interval)
    ):
        raise TypeError(
            f"guidance_interval must be a pair of numbers (lo, hi), got {guidance_interval!r}."
        )
    g_lo, g_hi = guidance_interval
    if not 0 <= g_lo <= g_hi <= 1:
        raise ValueError(
            f"guidance_interval must satisfy 0 <= lo <= hi <= 1, got {guidance_interval}."
        )
    return CheckedSettings(tr, kappa, rho_mode, null_class)
