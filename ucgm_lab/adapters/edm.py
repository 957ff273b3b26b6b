"""EDM-style denoisers D(x; sigma) (Karras et al. 2022) as UCGM models.

Convention of the source: x_sigma = x + sigma z, a denoiser D(x_sigma; sigma) ~ x, and the
probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma, sampled from sigma_max down to
sigma_min and a last step to sigma = 0.

UCGM transport (library time t, data at t = 0): the state is the variance-normalised
x_t = x_sigma / sqrt(1 + sigma^2), so that x_t ~ N(0, I) at the noise end, and

    alpha(t) = sigma / sqrt(1 + sigma^2),  gamma(t) = 1 / sqrt(1 + sigma^2),
    F = D:  alpha_hat = 0, gamma_hat = 1,  D(t) = alpha > 0,

with sigma = sigma(t) from an :class:`EDMSigmaSchedule` (log sigma linear in t) and
``model_time(t) = sigma(t)``: the wrapper receives sigma itself and calls
``denoiser(x_t * sqrt(1 + sigma^2), sigma)``. Then f^x = D and f^z = (x_sigma - D) / sigma,
the ODE's slope, and the UCGM-S order-1 step is x'_sigma = D + sigma' (x_sigma - D) / sigma:
EDM's Euler step, exactly. The order-2 correction of Alg. 2 (averaging z^) is EDM's Heun step
(its Alg. 1), also exactly. The initial noise N(0, I) is x_sigma = sqrt(1 + sigma_max^2) z,
diffusers' ``EDMEulerScheduler.init_noise_sigma``; EDM's own code starts from sigma_max z
(pass ``noise * sigma_max / sqrt(1 + sigma_max^2)`` to match it bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ucgm_lab.adapters.base import AdaptedModel, AdaptedNetwork, InputConvention, call_source
from ucgm_lab.transports import Transport

__all__ = [
    "EDMPreconditioned",
    "EDMSigmaSchedule",
    "adapt_edm_denoiser",
    "edm_transport",
    "karras_sigmas",
]


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> Tensor:
    """EDM's noise levels (Karras et al. 2022, eq. 5), largest first.

    sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.

    Args:
        steps: N, the number of network evaluations of the Euler sampler (>= 1; N = 1 gives
            sigma_max only).
        sigma_min: Smallest noise level.
        sigma_max: Largest noise level.
        rho: Spacing exponent (7 in EDM).

    Returns:
        Float64 tensor of shape (N,), decreasing (without the final sigma = 0).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    if steps == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


@dataclass(frozen=True)
class EDMSigmaSchedule:
    """Library time <-> EDM noise level: log sigma(t) = log sigma_lo + t log(sigma_hi / sigma_lo).

    A uniform UCGM-S grid in t is then uniform in log sigma (as the paper's EDM transport of
    Tab. 2, sigma(t) = exp(4 (2.68 t - 1.59))). The sampler never evaluates the network at
    t = 0, so sigma_lo only has to lie below the smallest noise level used.

    Attributes:
        sigma_lo: sigma(0) (> 0).
        sigma_hi: sigma(1).
    """

    sigma_lo: float = 1e-3
    sigma_hi: float = 80.0

    def __post_init__(self) -> None:
        if not 0 < self.sigma_lo < self.sigma_hi:
            raise ValueError(f"need 0 < sigma_lo < sigma_hi, got {self.sigma_lo}, {self.sigma_hi}.")

    def sigma(self, t: Tensor) -> Tensor:
        """The noise level at library times ``t`` (any shape)."""
        lo = math.log(self.sigma_lo)
        return torch.exp(lo + t * (math.log(self.sigma_hi) - lo))

    def time_of_sigma(self, sigma: Tensor | Any) -> Tensor:
        """The library time of noise levels ``sigma`` (inverse of :meth:`sigma`), float64."""
        s = torch.as_tensor(sigma, dtype=torch.float64)
        if (s < self.sigma_lo * (1 - 1e-9)).any() or (s > self.sigma_hi * (1 + 1e-9)).any():
            raise ValueError(
                "noise levels must lie in [sigma_lo, sigma_hi] = "
                f"[{self.sigma_lo:g}, {self.sigma_hi:g}]; got min {float(s.min()):g}, "
                f"max {float(s.max()):g}. Widen the EDMSigmaSchedule."
            )
        lo = math.log(self.sigma_lo)
        t = (torch.log(s) - lo) / (math.log(self.sigma_hi) - lo)
        return t.clamp(0.0, 1.0)

    def karras_time_points(
        self, steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
    ) -> Tensor:
        """Library times of :func:`karras_sigmas` (pass as ``time_points=``).

        The sampler appends the final t = 0 (sigma = 0).

        Args:
            steps: Number of network evaluations.
            sigma_min: Smallest noise level.
            sigma_max: Largest noise level.
            rho: Spacing exponent.

        Returns:
            Float64 tensor of shape (steps,), decreasing.

        Raises:
            ValueError: If sigma_min <= sigma_lo (the last point would be t = 0).
        """
        if sigma_min <= self.sigma_lo:
            raise ValueError(
                f"sigma_min ({sigma_min:g}) must exceed the schedule's sigma_lo "
                f"({self.sigma_lo:g}), "
                "or the last evaluated point would coincide with the data end t = 0."
            )
        return self.time_of_sigma(karras_sigmas(steps, sigma_min, sigma_max, rho))


def edm_transport(sigma_schedule: EDMSigmaSchedule | None = None) -> Transport:
    """The UCGM transport of an EDM denoiser (see the module docstring).

    Args:
        sigma_schedule: Library time <-> sigma (default ``EDMSigmaSchedule()``).

    Returns:
        The transport; its ``model_time`` is sigma(t).
    """
    sched = sigma_schedule or EDMSigmaSchedule()

    def alpha(t: Tensor) -> Tensor:
        s = sched.sigma(t)
        return s / torch.sqrt(1 + s * s)

    def gamma(t: Tensor) -> Tensor:
        s = sched.sigma(t)
        return 1 / torch.sqrt(1 + s * s)

    return Transport(
        alpha=alpha,
        gamma=gamma,
        alpha_hat=torch.zeros_like,
        gamma_hat=torch.ones_like,
        name=f"EDM denoiser, sigma in [{sched.sigma_lo:g}, {sched.sigma_hi:g}]",
        model_time=sched.sigma,
        # sigma_hi < inf leaves data at t = 1 (gamma(1) = 1 / sqrt(1 + sigma_hi^2));
        # sigma_lo > 0 leaves noise at t = 0.
        allowed_deviations=frozenset({"alpha(0)=0", "gamma(1)=0", "alpha(1)=1"}),
    )


def _edm_input_scale(sigma: Tensor) -> Tensor:
    return torch.sqrt(1 + sigma * sigma)


def adapt_edm_denoiser(
    denoiser: Callable[..., Any],
    sigma_schedule: EDMSigmaSchedule | None = None,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    inputs: InputConvention = "x_t",
) -> AdaptedModel:
    """Adapt an EDM denoiser ``D(x_sigma, sigma[, y]) -> x`` to UCGM.

    Args:
        denoiser: The denoiser, called with x_sigma of shape (B, ...) and sigma of shape (B,)
            (EDM's ``EDMPrecond.forward(x, sigma, class_labels)``; or an
            :class:`EDMPreconditioned` around a raw network).
        sigma_schedule: Library time <-> sigma (default ``EDMSigmaSchedule()``: sigma in
            [0.001, 80]).
        sigma_min: Smallest noise level of EDM's sampling grid (the native grid,
            :meth:`AdaptedModel.time_points`).
        sigma_max: Largest noise level of that grid.
        rho: Spacing exponent of that grid.
        inputs: Calling convention (:data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).

    Returns:
        The :class:`AdaptedModel`.
    """
    sched = sigma_schedule or EDMSigmaSchedule()
    if sigma_max > sched.sigma_hi * (1 + 1e-9) or sigma_min <= sched.sigma_lo:
        raise ValueError(
            f"EDM's sampling range [sigma_min, sigma_max] = [{sigma_min:g}, {sigma_max:g}] must "
            f"lie inside (sigma_lo, sigma_hi] = ({sched.sigma_lo:g}, {sched.sigma_hi:g}] of the "
            "sigma schedule."
        )

    def native(steps: int) -> Tensor:
        return sched.karras_time_points(steps, sigma_min, sigma_max, rho)

    mapping = (
        "EDM denoiser D(x_sigma; sigma), x_sigma = x + sigma z -> Transport(alpha = sigma / "
        "sqrt(1 + sigma^2), gamma = 1 / sqrt(1 + sigma^2)), log sigma linear in library t from "
        f"{sched.sigma_lo:g} to {sched.sigma_hi:g}: network gets sigma(t) and x_sigma = x_t "
        "sqrt(1 + sigma^2), F = D unchanged (alpha_hat = 0, gamma_hat = 1)"
    )
    return AdaptedModel(
        model=AdaptedNetwork(denoiser, inputs=inputs, input_scale=_edm_input_scale),
        transport=edm_transport(sched),
        mapping=mapping,
        native_grid=native,
        native_sampler=(
            f"EDM Euler on Karras sigmas (sigma_min={sigma_min:g}, sigma_max={sigma_max:g}, "
            f"rho={rho:g})"
        ),
    )


class EDMPreconditioned(nn.Module):
    """EDM's preconditioning: D(x; sigma) = c_skip x + c_out F(c_in x, c_noise).

    c_skip = s_d^2 / (sigma^2 + s_d^2), c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
    c_in = 1 / sqrt(sigma^2 + s_d^2), c_noise = log(sigma) / 4 (Karras et al. 2022, Tab. 1),
    with s_d = sigma_data. ``prediction="v_prediction"`` flips the sign of c_out (diffusers'
    ``EDMEulerScheduler``).

    Args:
        network: The raw network, called ``network(c_in x, c_noise[, y])`` with c_noise of
            shape (B,).
        sigma_data: Standard deviation of the data (EDM: 0.5).
        prediction: "epsilon" (EDM) or "v_prediction".
    """

    def __init__(
        self, network: Callable[..., Any], sigma_data: float = 0.5, prediction: str = "epsilon"
    ) -> None:
        super().__init__()
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"Unknown prediction {prediction!r}; allowed: 'epsilon', 'v_prediction'."
            )
        self.network = network
        self.sigma_data = float(sigma_data)
        self.sign = 1.0 if prediction == "epsilon" else -1.0

    def forward(self, x: Tensor, sigma: Tensor, y: Tensor | None = None) -> Tensor:
        """D(x; sigma) for x of shape (B, ...) and sigma of shape (B,)."""
        s = sigma.to(x.dtype).reshape(sigma.shape[0], *([1] * (x.ndim - 1)))
        sd2 = self.sigma_data**2
        c_skip = sd2 / (s * s + sd2)
        c_out = self.sign * s * self.sigma_data / torch.sqrt(s * s + sd2)
        c_in = 1 / torch.sqrt(s * s + sd2)
        c_noise = torch.log(sigma) / 4
        return c_skip * x + c_out * call_source(self.network, c_in * x, c_noise, y)
