"""The variance-preserving noise schedules abar(t) of the diffusion adapter.

:class:`DiscreteVPSchedule` (T timesteps: DDPM's linear, scaled-linear and cosine betas, or a
diffusers scheduler's own; timestep k is library time (k + 1) / T, log abar interpolated
linearly between the nodes, DDIM's timestep spacings) and :class:`ContinuousVPSchedule` (the
VP SDE's linear and cosine abar on t in [0, 1]); both follow :class:`VPSchedule`. See
:mod:`ucgm_lab.adapters.diffusion` for the transport built on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from ucgm_lab.adapters.base import (
    check_choice,
    uniform_grid,
)

__all__ = ["DDIM_SPACINGS", "ContinuousVPSchedule", "DiscreteVPSchedule", "VPSchedule"]

DDIM_SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
"""Timestep spacings of diffusers' DDIM scheduler (``timestep_spacing``)."""

# abar is floored here before taking its log (zero-terminal-SNR schedules end at abar = 0).
_MIN_ALPHA_BAR = 1e-20


class VPSchedule(Protocol):
    """What :func:`vp_transport` needs from a schedule."""

    name: str

    def alpha_bar(self, t: Tensor) -> Tensor:
        """abar(t) for library times t (any shape)."""

    def network_time(self, t: Tensor) -> Tensor:
        """The network's time input for library times t."""

    def native_time_points(self, steps: int) -> Tensor:
        """The library times of the source's own N-step sampler (float64, shape (N,))."""


# ---------------------------------------------------------------------- discrete time
@dataclass(frozen=True, eq=False)
class DiscreteVPSchedule:
    """A DDPM schedule on T timesteps, made continuous in library time.

    Timestep k (0-based) sits at library time t_k = (k + 1) / T; abar(0) = 1; log abar is
    linear between the nodes.

    Attributes:
        alphas_cumprod: abar_k for k = 0 .. T - 1, shape (T,), float64, decreasing.
        name: Label for messages.
        spacing: Default timestep spacing of :meth:`native_time_points`
            (one of :data:`DDIM_SPACINGS`).
        steps_offset: diffusers' ``steps_offset`` (added to "leading" timesteps).
    """

    alphas_cumprod: Tensor
    name: str = "discrete VP"
    spacing: str = "leading"
    steps_offset: int = 0
    _log_table: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ac = torch.as_tensor(self.alphas_cumprod).detach().to(torch.float64).flatten().cpu()
        if ac.numel() < 2:
            raise ValueError("alphas_cumprod needs at least 2 timesteps.")
        if not torch.isfinite(ac).all() or (ac < 0).any() or (ac > 1).any():
            raise ValueError("alphas_cumprod must be finite values in [0, 1].")
        if (torch.diff(ac) > 0).any():
            raise ValueError("alphas_cumprod must be non-increasing over the timesteps.")
        check_choice(self.spacing, DDIM_SPACINGS, "timestep spacing")
        object.__setattr__(self, "alphas_cumprod", ac)
        log_nodes = torch.cat(
            [torch.zeros(1, dtype=torch.float64), ac.clamp_min(_MIN_ALPHA_BAR).log()]
        )
        object.__setattr__(self, "_log_table", log_nodes)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_betas(
        cls, betas: Tensor | Any, name: str = "discrete VP", **kwargs: Any
    ) -> DiscreteVPSchedule:
        """From the noise variances beta_k: abar_k = prod_{j <= k} (1 - beta_j).

        Args:
            betas: Shape (T,), values in [0, 1).
            name: Label.
            **kwargs: ``spacing``, ``steps_offset``.

        Returns:
            The schedule.
        """
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if (b < 0).any() or (b >= 1).any():
            raise ValueError("betas must lie in [0, 1).")
        return cls(torch.cumprod(1.0 - b, dim=0), name=name, **kwargs)

    @classmethod
    def linear(
        cls,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        **kwargs: Any,
    ) -> DiscreteVPSchedule:
        """DDPM's linear betas (diffusers ``beta_schedule="linear"``)."""
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        return cls.from_betas(betas, name=f"DDPM linear T={num_train_timesteps}", **kwargs)

    @classmethod
    def scaled_linear(
        cls,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        **kwargs: Any,
    ) -> DiscreteVPSchedule:
        """Stable Diffusion's betas: linear in sqrt(beta) (diffusers ``"scaled_linear"``)."""
        betas = (
            torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64)
            ** 2
        )
        return cls.from_betas(betas, name=f"scaled linear T={num_train_timesteps}", **kwargs)

    @classmethod
    def cosine(
        cls,
        num_train_timesteps: int = 1000,
        s: float = 0.008,
        max_beta: float = 0.999,
        **kwargs: Any,
    ) -> DiscreteVPSchedule:
        """Nichol & Dhariwal's cosine schedule (diffusers ``"squaredcos_cap_v2"``).

        beta_k = min(1 - f((k + 1) / T) / f(k / T), max_beta) with
        f(u) = cos((u + s) / (1 + s) pi / 2)^2.
        """
        k = torch.arange(num_train_timesteps, dtype=torch.float64)

        def f(u: Tensor) -> Tensor:
            return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2

        betas = (1 - f((k + 1) / num_train_timesteps) / f(k / num_train_timesteps)).clamp(
            max=max_beta
        )
        return cls.from_betas(betas, name=f"cosine T={num_train_timesteps}", **kwargs)

    @classmethod
    def from_diffusers(cls, scheduler: Any) -> DiscreteVPSchedule:
        """Read ``alphas_cumprod`` and the timestep spacing from a diffusers scheduler.

        Args:
            scheduler: e.g. ``DDIMScheduler``, ``DDPMScheduler``, ``EulerDiscreteScheduler``.

        Returns:
            The schedule (the scheduler's own float32 abar, converted to float64).
        """
        ac = getattr(scheduler, "alphas_cumprod", None)
        if ac is None:
            raise TypeError(
                f"{type(scheduler).__name__} has no alphas_cumprod; not a discrete VP scheduler."
            )
        config = getattr(scheduler, "config", None)
        spacing = getattr(config, "timestep_spacing", "leading")
        if spacing not in DDIM_SPACINGS:
            spacing = "leading"
        return cls(
            torch.as_tensor(ac),
            name=f"{type(scheduler).__name__} T={len(ac)}",
            spacing=spacing,
            steps_offset=int(getattr(config, "steps_offset", 0) or 0),
        )

    # ------------------------------------------------------------------ time maps
    @property
    def num_train_timesteps(self) -> int:
        """T, the number of training timesteps."""
        return int(self.alphas_cumprod.numel())

    def alpha_bar(self, t: Tensor) -> Tensor:
        """abar(t): log-linear interpolation of (0 -> 1, (k + 1) / T -> abar_k).

        Args:
            t: Library times in [0, 1], any shape.

        Returns:
            abar(t), shape and dtype of ``t``.
        """
        T = self.num_train_timesteps
        table = self._log_table.to(
            device=t.device, dtype=t.dtype if t.is_floating_point() else torch.float64
        )
        u = t.clamp(0.0, 1.0) * T
        j = u.floor().clamp(max=T - 1)
        w = u - j
        j = j.long()
        return torch.exp(table[j] * (1 - w) + table[j + 1] * w)

    def network_time(self, t: Tensor) -> Tensor:
        """The timestep k = T t - 1 for library time t (a float; -1 at t = 0)."""
        return t * self.num_train_timesteps - 1

    def library_time(self, timesteps: Tensor | Any) -> Tensor:
        """Library times (k + 1) / T of timesteps k, float64."""
        k = torch.as_tensor(timesteps, dtype=torch.float64)
        return (k + 1) / self.num_train_timesteps

    def ddim_timesteps(
        self, steps: int, spacing: str | None = None, steps_offset: int | None = None
    ) -> Tensor:
        """The N timesteps of diffusers' DDIM scheduler (decreasing), for ``steps`` = N.

        Args:
            steps: Number of network evaluations.
            spacing: "leading", "trailing" or "linspace" (default: the schedule's).
            steps_offset: Added to "leading" timesteps (default: the schedule's).

        Returns:
            Int64 tensor of shape (N,).
        """
        if (
            isinstance(steps, bool)
            or not isinstance(steps, int)
            or not 1 <= steps <= self.num_train_timesteps
        ):
            raise ValueError(
                f"steps must be an integer in [1, {self.num_train_timesteps}], got {steps!r}."
            )
        spacing = check_choice(spacing or self.spacing, DDIM_SPACINGS, "timestep spacing")
        offset = self.steps_offset if steps_offset is None else steps_offset
        T = self.num_train_timesteps
        if spacing == "linspace":
            k = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().flip(0)
        elif spacing == "leading":
            k = (torch.arange(steps, dtype=torch.float64) * (T // steps)).round().flip(0) + offset
        else:
            k = torch.round(torch.arange(T, 0, -T / steps, dtype=torch.float64)) - 1
        return k.to(torch.int64)

    def time_points(
        self, steps: int, spacing: str | None = None, steps_offset: int | None = None
    ) -> Tensor:
        """Library times of :meth:`ddim_timesteps` (pass as ``time_points=``).

        The sampler appends the final t = 0 (abar = 1). With "leading" and "trailing"
        spacing, UCGM-S on these points equals diffusers'
        ``DDIMScheduler(set_alpha_to_one=True, clip_sample=False)`` with eta = 0. (With
        "linspace", diffusers steps to k - T // N rather than to the next listed timestep.)
        """
        return self.library_time(self.ddim_timesteps(steps, spacing, steps_offset))

    def native_time_points(self, steps: int) -> Tensor:
        """:meth:`time_points` with the schedule's default spacing."""
        return self.time_points(steps)


# ---------------------------------------------------------------------- continuous time
def _linear_sde_alpha_bar(beta_min: float, beta_max: float) -> Callable[[Tensor], Tensor]:
    def alpha_bar(t: Tensor) -> Tensor:
        return torch.exp(-(beta_min * t + 0.5 * (beta_max - beta_min) * t * t))

    return alpha_bar


def _cosine_alpha_bar(s: float) -> Callable[[Tensor], Tensor]:
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2

    def alpha_bar(t: Tensor) -> Tensor:
        return torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / f0

    return alpha_bar


@dataclass(frozen=True, eq=False)
class ContinuousVPSchedule:
    """A continuous-time VP schedule abar(t), t in [0, 1] with the data at t = 0.

    Attributes:
        alpha_bar_fn: abar as a function of a tensor of times (decreasing, abar(0) = 1).
        network_time_scale: The network receives ``network_time_scale * t`` (e.g. 999 for
            score_sde's "DDPM continuous" models, 1 for models trained on t in [0, 1]).
        t_start: First time of the native grid (``linspace(t_start, 0, N + 1)[:-1]``).
        name: Label.
    """

    alpha_bar_fn: Callable[[Tensor], Tensor]
    network_time_scale: float = 1.0
    t_start: float = 1.0
    name: str = "continuous VP"

    @classmethod
    def linear(
        cls, beta_min: float = 0.1, beta_max: float = 20.0, network_time_scale: float = 1.0
    ) -> ContinuousVPSchedule:
        """score_sde's VP SDE: abar(t) = exp(-(beta_min t + (beta_max - beta_min) t^2 / 2))."""
        return cls(
            _linear_sde_alpha_bar(beta_min, beta_max),
            network_time_scale=network_time_scale,
            name=f"VP-SDE linear beta in [{beta_min:g}, {beta_max:g}]",
        )

    @classmethod
    def cosine(
        cls, s: float = 0.008, network_time_scale: float = 1.0, t_start: float = 0.999
    ) -> ContinuousVPSchedule:
        """abar(t) = f(t) / f(0), f(t) = cos((t + s) / (1 + s) pi / 2)^2.

        abar(1) = 0, so an epsilon network cannot be decoded at t = 1 (f^x divides by
        sqrt(abar)); the native grid starts at ``t_start``.
        """
        return cls(
            _cosine_alpha_bar(s),
            network_time_scale=network_time_scale,
            t_start=t_start,
            name=f"continuous cosine s={s:g}",
        )

    def alpha_bar(self, t: Tensor) -> Tensor:
        """abar(t), shape of ``t``."""
        return self.alpha_bar_fn(t)

    def network_time(self, t: Tensor) -> Tensor:
        """``network_time_scale * t``."""
        return self.network_time_scale * t

    def native_time_points(self, steps: int) -> Tensor:
        """Uniform grid ``linspace(t_start, 0, steps + 1)[:-1]``, float64."""
        return uniform_grid(steps, self.t_start)
