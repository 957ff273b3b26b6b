"""Time distributions for training and time grids for sampling.

* Training times: t ~ Beta(theta1, theta2) (section 3.1, "Unified distribution transformation
  of time"; App. B.2.1), optionally scaled as in the reference implementation, then clamped
  away from the ends where the formulas divide by zero.
* Sampling times: the Kumaraswamy transform k(u; a, b, c) = (1 - (1 - u^a)^b)^c of evenly
  spaced u (App. A.1.3, B.2.2), flipped to run from noise (t near 1) to data, with t = 0
  appended; or an explicit list of time points.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "AUTO_KUMARASWAMY",
    "BetaTimeDistribution",
    "KumaraswamySchedule",
    "SCHEDULES",
    "SCHEDULE_ALIASES",
    "even_time_points",
    "explicit_time_points",
    "get_schedule",
    "kumaraswamy",
    "timeshift",
]

AUTO_KUMARASWAMY = (1.17, 0.8, 1.1)
"""The paper's "Auto" schedule parameters (a, b, c) (A.1.3; docs/paper-notes.md, R1)."""


def kumaraswamy(u: Tensor, a: float, b: float, c: float) -> Tensor:
    """Kumaraswamy transform k(u; a, b, c) = (1 - (1 - u^a)^b)^c (App. B.2.2).

    A monotone map of [0, 1] onto itself; (1, 1, 1) is the identity.

    Args:
        u: Values in [0, 1], any shape.
        a, b, c: Positive shape parameters.

    Returns:
        k(u), same shape as ``u``.
    """
    return (1 - (1 - u**a) ** b) ** c


def timeshift(t: Tensor, shift: float) -> Tensor:
    """The common "timeshift" map s t / (1 + (s - 1) t) that Kumaraswamy approximates (B.2.2)."""
    return shift * t / (1 + (shift - 1) * t)


def _check_unit_interval(values: Tensor, what: str) -> None:
    if not torch.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{what} must lie in [0, 1]; got {values.tolist()}.")


@dataclass(frozen=True)
class KumaraswamySchedule:
    """Sampling time grid of UCGM-S: flipped Kumaraswamy transform of a uniform grid.

    u_i = linspace(gap_noise, 1 - gap_data, N); t_i = 1 - k(u_i; a, b, c); then t_N = 0.
    With gap_data = 0 the uniform grid gets N + 1 points and the last (u = 1, t = 0) is
    dropped, so that t = 0 is not evaluated (as in the reference implementation).

    Attributes:
        a, b, c: Kumaraswamy parameters; (1, 1, 1) gives a uniform grid, ``AUTO_KUMARASWAMY``
            = (1.17, 0.8, 1.1) is the paper's "Auto".
        gap_noise: Gap g0 at the noise end (t_0 = 1 - k(g0)); must keep gamma(t_0) > 0 for
            second-order sampling with transports whose gamma(1) = 0.
        gap_data: Gap g1 at the data end; for 2-step models it sets the second time point
            (t_1 = 1 - k(1 - g1), = g1 for the identity transform).
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 1.0
    gap_noise: float = 0.001
    gap_data: float = 0.001

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(
                    f"Kumaraswamy parameter {name} must be a positive number, got {value!r}."
                )
        if not (0 <= self.gap_noise < 1 and 0 <= self.gap_data < 1):
            raise ValueError(
                f"gaps must lie in [0, 1); got gap_noise={self.gap_noise}, gap_data={self.gap_data}."
            )
        if self.gap_noise >= 1 - self.gap_data:
            raise ValueError(
                f"gap_noise ({self.gap_noise}) + gap_data ({self.gap_data}) must be < 1 so that "
                "the grid is not empty."
            )

    @classmethod
    def even(cls) -> KumaraswamySchedule:
        """Evenly spaced steps with no evaluation at the data end: t_i = 1 - u_i, u from 0.001.

        The identity transform with gap_data = 0: every step covers about 1/N of the time and
        2 steps give {0.999, 0.4995}; the "uniform" grid instead evaluates its last point at
        t = 0.001, on the data, so with few steps one evaluation is nearly wasted.
        """
        return cls(gap_data=0.0)

    @classmethod
    def auto(cls, gap_noise: float = 0.001, gap_data: float = 0.001) -> KumaraswamySchedule:
        """The paper's "Auto" schedule (a, b, c) = (1.17, 0.8, 1.1)."""
        return cls(*AUTO_KUMARASWAMY, gap_noise=gap_noise, gap_data=gap_data)

    def time_points(self, steps: int, dtype: torch.dtype = torch.float64) -> Tensor:
        """The N + 1 times t_0 > t_1 > ... > t_{N-1} > t_N = 0 for N model evaluations.

        Args:
            steps: N, the number of grid points that the model is evaluated at (>= 1).
            dtype: Floating dtype of the result.

        Returns:
            Tensor of shape (steps + 1,), strictly decreasing, ending at 0.
        """
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}.")
        if self.gap_data == 0:
            u = torch.linspace(self.gap_noise, 1.0, steps + 1, dtype=dtype)[:-1]
        else:
            u = torch.linspace(self.gap_noise, 1.0 - self.gap_data, steps, dtype=dtype)
        t = 1 - kumaraswamy(u, self.a, self.b, self.c)
        return torch.cat([t, torch.zeros(1, dtype=dtype)])


def explicit_time_points(
    points: Sequence[float] | Tensor, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Validate user time points (noise to data) and append t = 0 if missing.

    Args:
        points: Strictly decreasing times in [0, 1], e.g. ``[1.0, 0.3]`` for a 2-step model.
        dtype: Floating dtype of the result.

    Returns:
        Tensor of shape (N + 1,) ending at 0, where N is the number of model evaluations.
    """
    if isinstance(points, (str, bytes)):
        raise TypeError(f"time_points must be a sequence of numbers, got {points!r}.")
    if not torch.is_tensor(points):
        items = list(points) if isinstance(points, Sequence) else None
        if items is None or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in items
        ):
            raise TypeError(
                f"time_points must be a 1-D sequence of numbers (e.g. [0.999, 0.5]), got {points!r}."
            )
    elif points.is_complex() or points.dtype == torch.bool:
        raise TypeError(f"time_points must be a real tensor, got dtype {points.dtype}.")
    t = torch.as_tensor(points, dtype=dtype)
    if t.ndim != 1:
        raise ValueError(
            f"time_points must be one-dimensional (a list of times), got shape {tuple(t.shape)}; "
            "flatten it yourself if that is what you mean."
        )
    if t.numel() == 0:
        raise ValueError("time_points must not be empty.")
    _check_unit_interval(t, "time_points")
    if t.numel() > 1 and not (torch.diff(t) < 0).all():
        raise ValueError(
            f"time_points must be strictly decreasing (from noise at 1 towards data at 0); got {t.tolist()}."
        )
    if float(t[-1]) != 0.0:
        t = torch.cat([t, torch.zeros(1, dtype=dtype)])
    if t.numel() < 2:
        raise ValueError("time_points must contain at least one time above 0.")
    return t


@dataclass(frozen=True)
class BetaTimeDistribution:
    """Training-time distribution t ~ clamp(scale * Beta(theta1, theta2), t_min, t_max).

    Section 3.1 and App. B.2.1: Beta(1, 1) is uniform; theta1 = theta2 > 1 peaks at 0.5 like
    the logit-normal; the mode is (theta1 - 1) / (theta1 + theta2 - 2). ``scale`` is the
    third entry of the reference implementation's ``time_dist_ctrl``. The clamp keeps t away
    from 0, where the 1 / sin(pi t / 2) factor and the finite differences divide by zero.

    Attributes:
        theta1, theta2: Beta shape parameters (> 0).
        scale: Multiplier applied before clamping (reference implementation; default 1).
        t_min, t_max: Clamp range, 0 <= t_min < t_max <= 1.
    """

    theta1: float = 1.0
    theta2: float = 1.0
    scale: float = 1.0
    t_min: float = 1e-4
    t_max: float = 1.0

    def __post_init__(self) -> None:
        if not (self.theta1 > 0 and self.theta2 > 0):
            raise ValueError(f"Beta parameters must be > 0; got ({self.theta1}, {self.theta2}).")
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0; got {self.scale}.")
        if not (0 <= self.t_min < self.t_max <= 1):
            raise ValueError(
                f"need 0 <= t_min < t_max <= 1; got t_min={self.t_min}, t_max={self.t_max}."
            )

    @functools.cached_property
    def _beta(self) -> torch.distributions.Beta:
        """The Beta distribution, built once (the dataclass is frozen)."""
        return torch.distributions.Beta(
            torch.tensor(float(self.theta1)), torch.tensor(float(self.theta2))
        )

    def sample(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
        t_min: float | None = None,
        t_max: float | None = None,
    ) -> Tensor:
        """Draw n training times.

        Randomness: from ``generator`` if given (a seed is drawn from it and the Beta draw runs
        on a forked CPU RNG, so the global RNG is untouched), else from the global CPU RNG.

        Args:
            n: Number of times.
            device: Device of the result.
            dtype: Floating dtype of the result.
            generator: Optional torch generator (any device).
            t_min, t_max: Optional tighter clamp (the objective narrows it for lambda = 1).

        Returns:
            Tensor of shape (n,).
        """
        lo = self.t_min if t_min is None else max(self.t_min, t_min)
        hi = self.t_max if t_max is None else min(self.t_max, t_max)
        dist = self._beta
        if generator is None:
            t = dist.sample((n,))
        else:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            # Fork only the CPU generator the Beta draw uses (torch.manual_seed would also
            # reseed every accelerator's global generator, at some cost per call).
            cpu = torch.default_generator
            saved = cpu.get_state()
            try:
                cpu.manual_seed(seed)
                t = dist.sample((n,))
            finally:
                cpu.set_state(saved)
        if self.scale == 1.0 and t.dtype == dtype:
            # the same numbers with one operation instead of four: a float32 draw clamped in
            # float32 (the bounds rounded to float32) equals the draw clamped in float64, then
            # rounded, because no float32 lies strictly between a bound and its rounding
            return t.clamp(lo, hi).to(device=device)
        t = (t.double() * self.scale).clamp(lo, hi)
        return t.to(device=device, dtype=dtype)


SCHEDULES: dict[str, KumaraswamySchedule] = {
    "even": KumaraswamySchedule.even(),
    "uniform": KumaraswamySchedule(),
    "auto": KumaraswamySchedule.auto(),
}
"""The named sampling grids, in the one place the sampler, the widgets and the peer comparison
read them:

* ``"even"``: t_i = 1 - u_i with u evenly spaced from 0.001 and no gap at the data end
  (:meth:`KumaraswamySchedule.even`): every evaluation does work; N = 2 gives {0.999, 0.4995}
  (docs/paper-notes.md, E1 and F1). The sampler's default.
* ``"uniform"``: the reference implementation's grid (gaps 0.001 at both ends; the last
  evaluation sits at t = 0.001, where it barely changes the sample: costly at small N).
* ``"auto"``: the paper's Kumaraswamy "Auto" schedule (1.17, 0.8, 1.1) (A.1.3).
"""

SCHEDULE_ALIASES: dict[str, str] = {"open": "even"}
"""Other names of the grids: "open" (the peers' Euler grid started at t = 0.999) is "even"."""


def get_schedule(name: str) -> KumaraswamySchedule:
    """A named sampling grid (:data:`SCHEDULES`, beside :func:`ucgm_lab.get_transport`).

    Args:
        name: "even" (alias "open"), "uniform" or "auto" (case-insensitive).

    Returns:
        The schedule (a frozen dataclass, safe to share).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: Unknown name (the message lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"A schedule name must be a string, got {type(name).__name__}.")
    key = name.lower()
    key = SCHEDULE_ALIASES.get(key, key)
    if key not in SCHEDULES:
        known = ", ".join(repr(k) for k in [*SCHEDULES, *SCHEDULE_ALIASES])
        raise ValueError(f"Unknown schedule {name!r}; known: {known}.")
    return SCHEDULES[key]


def even_time_points(nfe: int) -> list[float]:
    """The "even" grid's sampling times for ``nfe`` evaluations, as a list (the sampler appends 0).

    The form stored in zoo metadata and passed as ``time_points=``: t = 0.999, about 1 - 1/N,
    ..., about 1/N, rounded to 6 decimals; N = 2 gives the paper's few-step grid {1, 0.5}
    (Tab. 6 uses 0.3 to 0.6 for the second point) with the first point kept below 1
    (docs/paper-notes.md, E1 and F1). ``sample(..., steps=N)`` on the default grid uses the
    same times.

    Args:
        nfe: Number of network evaluations N >= 1.

    Returns:
        N decreasing times, e.g. ``[0.999, 0.4995]`` for N = 2 and ``[0.999, 0.666, 0.333]``
        for N = 3.
    """
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer, got {nfe!r}.")
    return [round(v, 6) for v in SCHEDULES["even"].time_points(nfe)[:-1].tolist()]
