"""The :class:`Transport` class: four coefficient functions of t and what follows from them.

Their constraints (section 3.1 (a)-(c)), x_t, the target and the prediction functions of
eq. (2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .coefficients import CoefficientFn, Coefficients, Decomposition, broadcast_time

__all__ = [
    "CONSTRAINT_CHECKS",
    "Transport",
    "TransportConstraintError",
    "TransportConstraintWarning",
]

HALF_PI = math.pi / 2

# Names of the checks of constraints (a) and (b) of section 3.1. A transport may declare
# some of them as deliberate deviations (``allowed_deviations``).
CONSTRAINT_CHECKS = (
    "alpha(0)=0",
    "alpha(1)=1",
    "alpha nondecreasing",
    "gamma(0)=1",
    "gamma(1)=0",
    "gamma nonincreasing",
)


class TransportConstraintError(ValueError):
    """A transport breaks constraint (c): D(t) vanishes inside (0, 1), or a value is not finite."""


class TransportConstraintWarning(UserWarning):
    """A transport breaks constraint (a) or (b) of section 3.1 without declaring it."""


def _identity_time(t: Tensor) -> Tensor:
    return t


def _flipped_time(t: Tensor) -> Tensor:
    return 1 - t


@dataclass(frozen=True)
class Transport:
    """A UCGM transport: four coefficient functions of t (section 3.1, Tab. 2).

    Construct a built-in one with :func:`get_transport` or your own from four functions of
    ``t`` (each maps a tensor to a tensor of the same shape). Construction validates the
    paper's constraints on a fine grid of t in [0, 1]:

    * (c) ``|D(t)| > 0`` on (0, 1): a violation raises :class:`TransportConstraintError`
      naming the offending t.
    * (a) alpha(0) = 0, alpha(1) = 1, alpha nondecreasing; (b) gamma(0) = 1, gamma(1) = 0,
      gamma nonincreasing: a violation warns with :class:`TransportConstraintWarning`
      unless the transport lists it in ``allowed_deviations`` (EDM does: its data scaling
      gives gamma(0) ~ 2).

    Args:
        alpha: alpha(t), weight of the noise z in x_t.
        gamma: gamma(t), weight of the data x in x_t.
        alpha_hat: alpha_hat(t), weight of z in the target.
        gamma_hat: gamma_hat(t), weight of x in the target.
        name: A label for messages and reprs.
        model_time: Maps the library's time (data at 0) to the time the network was trained
            with; identity by default, ``1 - t`` for transports made by
            :meth:`from_data_at_one`.
        allowed_deviations: Names from ``CONSTRAINT_CHECKS`` that this transport breaks on
            purpose; they are reported by :meth:`constraint_report` but do not warn.
        validate: Check the constraints at construction (default True).
        grid_size: Number of grid points for validation.
    """

    alpha: CoefficientFn
    gamma: CoefficientFn
    alpha_hat: CoefficientFn
    gamma_hat: CoefficientFn
    name: str = "custom"
    model_time: CoefficientFn = _identity_time
    allowed_deviations: frozenset[str] = field(default_factory=frozenset)
    validate: bool = field(default=True, repr=False, compare=False)
    grid_size: int = field(default=2049, repr=False, compare=False)

    def __post_init__(self) -> None:
        for fn_name in ("alpha", "gamma", "alpha_hat", "gamma_hat", "model_time"):
            if not callable(getattr(self, fn_name)):
                raise TypeError(
                    f"Transport {self.name!r}: {fn_name} must be a function of t (a tensor), "
                    f"got {type(getattr(self, fn_name)).__name__}."
                )
        deviations = frozenset(self.allowed_deviations)
        unknown = deviations - set(CONSTRAINT_CHECKS)
        if unknown:
            raise ValueError(
                f"Transport {self.name!r}: unknown allowed_deviations {sorted(unknown)}; "
                f"allowed names are {list(CONSTRAINT_CHECKS)}."
            )
        object.__setattr__(self, "allowed_deviations", deviations)
        if self.validate:
            self._validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data_at_one(
        cls,
        alpha: CoefficientFn,
        gamma: CoefficientFn,
        alpha_hat: CoefficientFn,
        gamma_hat: CoefficientFn,
        name: str = "custom (data at t=1)",
        allowed_deviations: Iterable[str] = (),
        validate: bool = True,
    ) -> Transport:
        """Build a transport from coefficients written in a time s where the data is at s = 1.

        The library's time is t = 1 - s. The coefficients become alpha(1 - t), ...; the
        network output F is unchanged (it is what the network was trained to output), and the
        network keeps receiving its own time s = 1 - t through ``model_time``.

        Args:
            alpha, gamma, alpha_hat, gamma_hat: Coefficient functions of s (data at s = 1).
            name: Label of the transport.
            allowed_deviations: As in :class:`Transport`, for the re-expressed coefficients.
            validate: Check the constraints.

        Returns:
            The same transport in the library's time convention (data at t = 0).
        """
        return cls(
            alpha=lambda t: alpha(1 - t),
            gamma=lambda t: gamma(1 - t),
            alpha_hat=lambda t: alpha_hat(1 - t),
            gamma_hat=lambda t: gamma_hat(1 - t),
            name=name,
            model_time=_flipped_time,
            allowed_deviations=frozenset(allowed_deviations),
            validate=validate,
        )

    # ------------------------------------------------------------------ validation
    def constraint_report(self) -> dict[str, str | None]:
        """Check constraints (a) and (b) of section 3.1 on a grid.

        Returns:
            A mapping from each name of ``CONSTRAINT_CHECKS`` to ``None`` when it holds or a
            message describing the violation.
        """
        t = torch.linspace(0.0, 1.0, self.grid_size, dtype=torch.float64)
        a, g = self.alpha(t), self.gamma(t)
        tol_value, tol_slope = 1e-3, 1e-9
        report: dict[str, str | None] = dict.fromkeys(CONSTRAINT_CHECKS)

        def boundary(key: str, value: Tensor, expected: float, label: str) -> None:
            if abs(float(value) - expected) > tol_value:
                report[key] = f"{label} = {float(value):.6g}, expected {expected:g}"

        boundary("alpha(0)=0", a[0], 0.0, "alpha(0)")
        boundary("alpha(1)=1", a[-1], 1.0, "alpha(1)")
        boundary("gamma(0)=1", g[0], 1.0, "gamma(0)")
        boundary("gamma(1)=0", g[-1], 0.0, "gamma(1)")
        da, dg = torch.diff(a), torch.diff(g)
        if (da < -tol_slope).any():
            i = int(torch.nonzero(da < -tol_slope)[0])
            report["alpha nondecreasing"] = f"alpha decreases near t = {float(t[i]):.4g}"
        if (dg > tol_slope).any():
            i = int(torch.nonzero(dg > tol_slope)[0])
            report["gamma nonincreasing"] = f"gamma increases near t = {float(t[i]):.4g}"
        return report

    def _validate(self) -> None:
        t = torch.linspace(0.0, 1.0, self.grid_size, dtype=torch.float64)
        c = self.coefficients(t)
        for label, value in (
            ("alpha", c.alpha),
            ("gamma", c.gamma),
            ("alpha_hat", c.alpha_hat),
            ("gamma_hat", c.gamma_hat),
        ):
            if not torch.is_tensor(value) or value.shape != t.shape:
                raise TransportConstraintError(
                    f"Transport {self.name!r}: {label}(t) must return a tensor shaped like t; "
                    f"got {type(value).__name__} "
                    f"{tuple(value.shape) if torch.is_tensor(value) else ''} for t of shape "
                    f"{tuple(t.shape)}. Write it with torch operations (e.g. torch.sin(t), "
                    "torch.ones_like(t))."
                )
            bad = ~torch.isfinite(value)
            if bad.any():
                i = int(torch.nonzero(bad)[0])
                raise TransportConstraintError(
                    f"Transport {self.name!r}: {label}(t) is not finite at t = {float(t[i]):.6g}; "
                    "all four coefficients must be finite on [0, 1]."
                )
        d = c.D[1:-1]
        inner = t[1:-1]
        scale = max(1.0, float(c.D.abs().max()))
        small = d.abs() <= 1e-8 * scale
        sign_change = torch.sign(d[1:]) * torch.sign(d[:-1]) < 0
        if small.any() or sign_change.any():
            if small.any():
                where = f"t = {float(inner[int(torch.nonzero(small)[0])]):.6g}"
            else:
                i = int(torch.nonzero(sign_change)[0])
                where = f"t in [{float(inner[i]):.6g}, {float(inner[i + 1]):.6g}]"
            raise TransportConstraintError(
                f"Transport {self.name!r} breaks constraint (c) of the UCGM paper: "
                f"D(t) = alpha*gamma_hat - alpha_hat*gamma vanishes at {where}. D must be "
                "non-zero on all of (0, 1), because eq. (2) divides by it."
            )
        problems = {
            key: msg
            for key, msg in self.constraint_report().items()
            if msg is not None and key not in self.allowed_deviations
        }
        if problems:
            details = "; ".join(f"{k}: {m}" for k, m in problems.items())
            warnings.warn(
                f"Transport {self.name!r} breaks constraints (a)/(b) of section 3.1 ({details}). "
                "Training and sampling still run, but the boundary values no longer mean "
                "'pure data at t=0, pure noise at t=1'. If this is deliberate, pass "
                f"allowed_deviations={sorted(problems)} to silence this warning.",
                TransportConstraintWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ coefficients
    def coefficients(self, t: Tensor | float, like: Tensor | None = None) -> Coefficients:
        """Evaluate alpha, gamma, alpha_hat and gamma_hat at t.

        Args:
            t: Times in the library's convention (data at 0); a scalar or a tensor. With
                ``like``, a scalar or shape (B,).
            like: Optional data of shape (B, ...): the coefficients are shaped
                (B, 1, ..., 1) to broadcast against it.

        Returns:
            The coefficients, each shaped like ``t`` (or broadcastable to ``like``).
        """
        if like is not None:
            t = broadcast_time(t, like)
        elif not torch.is_tensor(t):
            t = torch.as_tensor(t, dtype=torch.get_default_dtype())
        return Coefficients(self.alpha(t), self.gamma(t), self.alpha_hat(t), self.gamma_hat(t))

    def D(self, t: Tensor | float) -> Tensor:
        """D(t) = alpha(t) gamma_hat(t) - alpha_hat(t) gamma(t) (constraint (c))."""
        return self.coefficients(t).D

    def network_time(self, t: Tensor) -> Tensor:
        """Deprecated: call ``transport.model_time(t)``, the one name of the network's time."""
        import warnings

        warnings.warn(
            "Transport.network_time(t) is deprecated: use Transport.model_time(t) (the old name "
            "will be removed).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.model_time(t)

    # ------------------------------------------------------------------ data-space maps
    def interpolate(self, x: Tensor, z: Tensor, t: Tensor | float) -> Tensor:
        """x_t = alpha(t) z + gamma(t) x (section 3.1; Alg. 1 line 3).

        Args:
            x: Data, shape (B, ...).
            z: Noise, shape (B, ...).
            t: Scalar or shape (B,).

        Returns:
            x_t, shape (B, ...).
        """
        c = self.coefficients(t, like=x)
        return c.alpha * z + c.gamma * x

    def target(self, x: Tensor, z: Tensor, t: Tensor | float) -> Tensor:
        """The regression target alpha_hat(t) z + gamma_hat(t) x (z_t of eq. 1).

        Args:
            x: Data, shape (B, ...).
            z: Noise, shape (B, ...).
            t: Scalar or shape (B,).

        Returns:
            The target, shape (B, ...).
        """
        c = self.coefficients(t, like=x)
        return c.alpha_hat * z + c.gamma_hat * x

    def predict_x(self, F: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """f^x(F, x_t, t) = (alpha F - alpha_hat x_t) / D (eq. 2): the data estimate."""
        c = self.coefficients(t, like=x_t)
        return (c.alpha * F - c.alpha_hat * x_t) / c.D

    def predict_z(self, F: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """f^z(F, x_t, t) = (gamma_hat x_t - gamma F) / D (eq. 2): the noise estimate."""
        c = self.coefficients(t, like=x_t)
        return (c.gamma_hat * x_t - c.gamma * F) / c.D

    def decompose(self, F: Tensor, x_t: Tensor, t: Tensor | float) -> Decomposition:
        """Both prediction functions of eq. (2) with one evaluation of the coefficients.

        Args:
            F: Network output, shape (B, ...).
            x_t: Network input, shape (B, ...).
            t: Scalar or shape (B,).

        Returns:
            :class:`Decomposition` with ``x_hat`` and ``z_hat``; alpha z_hat + gamma x_hat = x_t.
        """
        c = self.coefficients(t, like=x_t)
        d = c.D
        return Decomposition(
            x_hat=(c.alpha * F - c.alpha_hat * x_t) / d,
            z_hat=(c.gamma_hat * x_t - c.gamma * F) / d,
        )

    def __repr__(self) -> str:
        return f"Transport(name={self.name!r})"
