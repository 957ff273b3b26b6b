"""One setting of UCGM-S (Alg. 2) with its exact NFE, and the NFE of a grid without a run.

NFE accounting is exact and mirrors :class:`~ucgm_lab.sampler.SampleOutput.nfe`: a grid of P
points costs P evaluations at order 1 and 2P - 1 at order 2 (the last step takes x^ without a
correction), a guided evaluation counts 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor

from ..schedules import KumaraswamySchedule

__all__ = ["Rho", "SamplerSettings", "count_nfe"]

Rho = float | Literal["auto"]


@dataclass(frozen=True)
class SamplerSettings:
    """One setting of :func:`ucgm_lab.sample`, with its exact NFE.

    Attributes:
        nfe: Network evaluations this setting makes (as counted by ``SampleOutput.nfe``).
        order: 1 or 2.
        kappa: Extrapolation ratio in [0, 1].
        rho: Stochastic ratio in [0, 1] or "auto".
        correction: Order-2 correction form ("noise" or "data"; ignored for order 1).
        steps: ``steps`` of :func:`ucgm_lab.sample` (None with explicit time points).
        schedule: The Kumaraswamy grid (None with explicit time points).
        time_points: Explicit decreasing times (0 excluded), or None.
        guidance_scale: Classifier-free guidance scale (1 = none).
        guidance_interval: (lo, hi) of times where guidance applies.
        multistep: None (Alg. 2) or the Adams-Bashforth form ("velocity", "noise", "data";
            order 1 and kappa = 0 only).
        corrector: With a multistep form and rho = 0: the Adams-Moulton corrector of
            ``sample(corrector=True)`` (same NFE; default off).
        lower_order_final: With a multistep form or kappa > 0: no extrapolation at the last
            step (``sample(lower_order_final=True)``; default off).
    """

    nfe: int
    order: int = 1
    kappa: float = 0.0
    rho: Rho = 0.0
    correction: str = "noise"
    steps: int | None = None
    schedule: KumaraswamySchedule | None = None
    time_points: tuple[float, ...] | None = None
    guidance_scale: float = 1.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    multistep: str | None = None
    corrector: bool = False
    lower_order_final: bool = False

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ucgm_lab.sample(model, noise, transport, **kwargs)``.

        Class labels ``y`` (and ``null_class``) are not part of the settings: pass them too.
        """
        kwargs: dict[str, Any] = {"order": self.order, "kappa": self.kappa, "rho": self.rho}
        if self.time_points is not None:
            kwargs["time_points"] = list(self.time_points)
        else:
            kwargs["steps"] = self.steps
            kwargs["schedule"] = self.schedule
        if self.order == 2:
            kwargs["correction"] = self.correction
        if self.multistep is not None:
            kwargs["multistep"] = self.multistep
        if self.corrector:
            kwargs["corrector"] = True
        if self.lower_order_final:
            kwargs["lower_order_final"] = True
        if self.guidance_scale != 1.0:
            kwargs["guidance_scale"] = self.guidance_scale
            kwargs["guidance_interval"] = self.guidance_interval
        return kwargs

    def describe(self) -> str:
        """A short one-line description, e.g. ``o1 kappa=0.45 rho=0 K(1.2,0.8,1) even``."""
        parts = [
            f"o{self.order}" + ("-data" if self.order == 2 and self.correction == "data" else "")
        ]
        if self.multistep is not None:
            parts[0] = f"AB2-{self.multistep}" + ("+AM3" if self.corrector else "")
        if self.lower_order_final:
            parts[0] += "+final-o1"
        parts.append(f"kappa={self.kappa:.3g}")
        parts.append(f"rho={self.rho if isinstance(self.rho, str) else f'{self.rho:.3g}'}")
        if self.time_points is not None:
            parts.append("t=[" + ", ".join(f"{t:.3f}" for t in self.time_points) + "]")
        elif self.schedule is not None:
            s = self.schedule
            grid = "even" if s.gap_data == 0 else "gap 0.001"
            parts.append(f"K({s.a:.3g},{s.b:.3g},{s.c:.3g}) {grid}")
        if self.guidance_scale != 1.0:
            lo, hi = self.guidance_interval
            parts.append(f"w={self.guidance_scale:.3g} on [{lo:g},{hi:g}]")
        return " ".join(parts)


def count_nfe(
    times: Tensor,
    order: int,
    guidance_scale: float = 1.0,
    guidance_interval: tuple[float, float] = (0.0, 1.0),
) -> int:
    """The NFE :func:`ucgm_lab.sample` makes on a grid, without running it.

    Args:
        times: The grid t_0 > ... > t_{P-1} > t_P = 0, shape (P + 1,).
        order: 1 or 2 (order 2 corrects every step but the last: 2P - 1 evaluations).
        guidance_scale: A guided evaluation (scale != 1, t inside the interval) counts 2.
        guidance_interval: (lo, hi).

    Returns:
        The number of network evaluations.
    """
    lo, hi = guidance_interval
    points = [float(t) for t in times[:-1]]

    def cost(t: float) -> int:
        return 2 if guidance_scale != 1.0 and lo <= t <= hi else 1

    total = sum(cost(t) for t in points)
    if order == 2:
        total += sum(cost(t) for t in points[1:])
    return total
