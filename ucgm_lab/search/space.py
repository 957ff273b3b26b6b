"""What the sampler-settings search may vary (:class:`SearchSpace`), with its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..sampler import MULTISTEP_FORMS
from ..schedules import AUTO_KUMARASWAMY
from .settings import Rho

__all__ = ["SearchSpace"]


@dataclass(frozen=True)
class SearchSpace:
    """What :func:`search_sampler` may vary, and the preset values it starts from.

    Attributes:
        orders: Orders to try (1 and/or 2; order 2 needs a budget of at least 3).
        corrections: Order-2 correction forms ("noise": the paper's; "data").
        multisteps: Adams-Bashforth forms of order 1 to try (``sample(multistep=...)``:
            "velocity", "noise", "data"; empty: none). Tried when 1 is in ``orders``.
        correctors: Whether each multistep form is tried without (False) and/or with (True)
            the Adams-Moulton corrector (``sample(corrector=True)``; with rho = 0 only, so
            tried when 0 is in ``rhos``).
        kappas: Preset extrapolation ratios (refined continuously in [0, 1] afterwards).
        rhos: Preset stochastic ratios: numbers in [0, 1] and/or "auto" (constants are refined).
        shapes: Preset Kumaraswamy (a, b, c) (refined multiplicatively afterwards).
        data_gaps: Data-end gaps of the Kumaraswamy grid: 0.001 (the sampler's "uniform") and
            0 (the sampler's "even": no evaluation at t = 0.001).
        explicit_max_points: Optimise explicit time points when the best grid has at most this
            many points (0: never).
        guidance_scales: Guidance scales to try (only with labels; 1 = no guidance).
        guidance_intervals: Guidance intervals to try (with scale != 1).
        refine: Run the pattern search on kappa, rho, a, b, c after the coordinate descent.
        finalists: How many of the best candidates are run on the validation streams besides
            the best of each structure and, per deterministic structure, its best on a preset
            grid and on the "even" grid; the streams choose among them
            (:func:`robust_choice`; 1: the selection's best, only scored on the streams).
    """

    orders: tuple[int, ...] = (1, 2)
    corrections: tuple[str, ...] = ("noise", "data")
    multisteps: tuple[str, ...] = ("velocity", "noise")
    correctors: tuple[bool, ...] = (False, True)
    kappas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    rhos: tuple[Rho, ...] = (0.0, "auto", 0.25, 1.0)
    shapes: tuple[tuple[float, float, float], ...] = (
        (1.0, 1.0, 1.0),
        AUTO_KUMARASWAMY,
        (1.0, 1.0, 0.7),
        (1.0, 1.0, 1.4),
    )
    data_gaps: tuple[float, ...] = (0.001, 0.0)
    explicit_max_points: int = 4
    guidance_scales: tuple[float, ...] = (1.0,)
    guidance_intervals: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    refine: bool = True
    finalists: int = 4

    @classmethod
    def fast(cls, consistency_ratio: float = 0.0) -> SearchSpace:
        """A small space around :func:`ucgm_lab.recommended_settings` for a model's lambda.

        Order 1, plain and with the Adams-Bashforth velocity and noise forms (without and, at
        rho = 0, with the Adams-Moulton corrector), kappa = 0, rho = 0 for
        lambda = 0 (rho = 1 and "auto" for lambda > 0), three grid exponents c (0.8, 1, 1.2) on
        the "even" grid, refined by the pattern search, explicit time points up to 4 points,
        two finalists. Use with ``search_sampler(..., consistency_ratio=lambda)`` so that the
        recommendation itself is a candidate.

        The noise form is there for models trained with the enhanced target (zeta > 0): on the
        zoo's zeta = 0.6 model at 4 NFE the search found an Adams-Bashforth noise-form setting
        that the velocity form alone did not reach (docs/benchmarks.md, "searched-settings").
        With the corrector it is also chosen on digits-linear-lam0 at 8 and 16 NFE (0.92 and
        0.97 of the best peer, against 0.96 and 1.01 before the noise form's first correction
        was dropped); on the other 2D models it changed nothing or little.
        """
        if not _is_unit(consistency_ratio):
            raise ValueError(
                f"consistency_ratio must be lambda in [0, 1], got {consistency_ratio!r}."
            )
        rhos: tuple[Rho, ...] = (0.0,) if consistency_ratio == 0 else (1.0, "auto")
        return cls(
            orders=(1,),
            multisteps=("velocity", "noise"),
            correctors=(False, True),
            kappas=(0.0,),
            rhos=rhos,
            shapes=((1.0, 1.0, 1.0), (1.0, 1.0, 1.2), (1.0, 1.0, 0.8)),
            data_gaps=(0.0,),
            finalists=2,
        )

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SearchSpace: {message}")

        need(
            bool(self.orders)
            and all(type(order) is int for order in self.orders)  # not True, which equals 1
            and set(self.orders) <= {1, 2},
            f"orders must be a non-empty subset of (1, 2), got {self.orders!r}.",
        )
        need(
            bool(self.corrections) and set(self.corrections) <= {"noise", "data"},
            f"corrections must be a non-empty subset of ('noise', 'data'), got {self.corrections!r}.",
        )
        need(
            isinstance(self.finalists, int)
            and not isinstance(self.finalists, bool)
            and self.finalists >= 1,
            f"finalists must be an integer >= 1, got {self.finalists!r}.",
        )
        need(
            set(self.multisteps) <= set(MULTISTEP_FORMS),
            f"multisteps must be a subset of {MULTISTEP_FORMS}, got {self.multisteps!r}.",
        )
        need(
            bool(self.correctors) and all(isinstance(c, bool) for c in self.correctors),
            f"correctors must be a non-empty tuple of True / False, got {self.correctors!r}.",
        )
        need(
            bool(self.kappas) and all(_is_unit(k) for k in self.kappas),
            f"kappas must be numbers in [0, 1], got {self.kappas!r}.",
        )
        need(
            bool(self.rhos) and all(r == "auto" or _is_unit(r) for r in self.rhos),
            f"rhos must be numbers in [0, 1] or 'auto', got {self.rhos!r}.",
        )
        need(
            bool(self.shapes)
            and all(len(s) == 3 and all(_is_number(v) and v > 0 for v in s) for s in self.shapes),
            f"shapes must be (a, b, c) triples of positive numbers, got {self.shapes!r}.",
        )
        need(
            bool(self.data_gaps) and all(_is_number(g) and 0 <= g < 0.5 for g in self.data_gaps),
            f"data_gaps must be numbers in [0, 0.5), got {self.data_gaps!r}.",
        )
        need(
            isinstance(self.explicit_max_points, int) and self.explicit_max_points >= 0,
            f"explicit_max_points must be an integer >= 0, got {self.explicit_max_points!r}.",
        )
        need(
            bool(self.guidance_scales)
            and all(_is_number(w) and w >= 0 for w in self.guidance_scales),
            f"guidance_scales must be numbers >= 0, got {self.guidance_scales!r}.",
        )
        need(
            bool(self.guidance_intervals)
            and all(len(iv) == 2 and 0 <= iv[0] <= iv[1] <= 1 for iv in self.guidance_intervals),
            f"guidance_intervals must be (lo, hi) with 0 <= lo <= hi <= 1, got {self.guidance_intervals!r}.",
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_unit(value: object) -> bool:
    return _is_number(value) and 0.0 <= float(value) <= 1.0  # type: ignore[arg-type]
