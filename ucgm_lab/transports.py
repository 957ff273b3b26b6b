"""Transports: the coefficients alpha, gamma, alpha_hat, gamma_hat of UCGM (section 3.1, Tab. 1-2).

A transport defines the noisy input and the network's regression target,

    x_t = alpha(t) z + gamma(t) x              (section 3.1, below eq. 1)
    F   ~ alpha_hat(t) z + gamma_hat(t) x      (the target z_t of eq. 1)

with z ~ N(0, I) the noise and x the data. From a network output F and the input x_t the
prediction functions of eq. (2) recover estimates of x and z:

    f^x(F, x_t, t) = (alpha F - alpha_hat x_t) / D,   f^z(F, x_t, t) = (gamma_hat x_t - gamma F) / D,
    D(t) = alpha gamma_hat - alpha_hat gamma.

Time convention (one for the whole library): data at t = 0, noise at t = 1, as in the paper.
A transport whose data end is t = 1 (ReLinear, or models trained by libraries that put data
at t = 1) is handled once, here: :meth:`Transport.from_data_at_one` re-expresses it in the
library's time and records the mapping ``model_time(t) = 1 - t`` that the objective and
the sampler apply to every network call. Nothing else in the library knows about it.

All coefficient functions take a tensor ``t`` (any shape) and return a tensor of the same
shape. Methods that act on data broadcast ``t`` per sample: ``t`` of shape ``(B,)`` (or a
scalar) against data of shape ``(B, ...)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "Coefficients",
    "flow_time",
    "is_flow_linear",
    "Decomposition",
    "Transport",
    "TransportConstraintError",
    "TransportConstraintWarning",
    "broadcast_time",
    "REFERENCE_HALF_PI",
    "get_transport",
    "list_transports",
    "reference_transport",
]

CoefficientFn = Callable[[Tensor], Tensor]

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


@dataclass(frozen=True)
class Coefficients:
    """The transport coefficients at some times, already shaped to broadcast against data.

    Attributes:
        alpha: alpha(t), the weight of the noise in x_t.
        gamma: gamma(t), the weight of the data in x_t.
        alpha_hat: alpha_hat(t), the weight of the noise in the target.
        gamma_hat: gamma_hat(t), the weight of the data in the target.
    """

    alpha: Tensor
    gamma: Tensor
    alpha_hat: Tensor
    gamma_hat: Tensor

    @property
    def D(self) -> Tensor:
        """D(t) = alpha gamma_hat - alpha_hat gamma (constraint (c), denominator of eq. 2)."""
        return self.alpha * self.gamma_hat - self.alpha_hat * self.gamma


@dataclass(frozen=True)
class Decomposition:
    """Estimates of the data and the noise in x_t from one network output (eq. 2).

    Attributes:
        x_hat: f^x(F, x_t, t), shape of x_t.
        z_hat: f^z(F, x_t, t), shape of x_t.
    """

    x_hat: Tensor
    z_hat: Tensor


def broadcast_time(t: Tensor | float, like: Tensor) -> Tensor:
    """Shape per-sample times so that they broadcast against a batch of data.

    Args:
        t: A Python number, a 0-d tensor, or a tensor of shape (B,) with one time per sample
            (or already of shape (B, 1, ..., 1)).
        like: Data of shape (B, ...).

    Returns:
        A tensor of shape (B, 1, ..., 1) (or a 0-d tensor for a scalar ``t``) on ``like``'s device.

    Raises:
        ValueError: If ``t`` is not a scalar and not of shape (B,).
    """
    if not torch.is_tensor(t):
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    t = t.to(device=like.device)
    if t.ndim == 0:
        return t
    if like.ndim > 1 and t.ndim == like.ndim and t.shape[0] == like.shape[0] and t[0].numel() == 1:
        return t
    if t.ndim != 1 or like.ndim == 0 or t.shape[0] != like.shape[0]:
        raise ValueError(
            f"t must be a scalar or have shape (batch,) = ({like.shape[0] if like.ndim else '?'},) "
            f"to match data of shape {tuple(like.shape)}; got t of shape {tuple(t.shape)}."
        )
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))


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


# ---------------------------------------------------------------------- Tab. 2
def _edm_sigma(t: Tensor) -> Tensor:
    """EDM's noise level in the paper's parameterisation: sigma(t) = exp(4 (2.68 t - 1.59))."""
    return torch.exp(4 * (2.68 * t - 1.59))


def _edm_norm(t: Tensor) -> Tensor:
    s = _edm_sigma(t)
    return torch.sqrt(s * s + 0.25)


def _linear() -> Transport:
    return Transport(
        alpha=lambda t: t,
        gamma=lambda t: 1 - t,
        alpha_hat=torch.ones_like,
        gamma_hat=lambda t: -torch.ones_like(t),
        name="Linear",
    )


def _relinear() -> Transport:
    # Tab. 2 writes ReLinear with the data at s = 1: alpha = 1 - s, gamma = s, and the network
    # regresses -z + x (the velocity d x_s / ds). Re-expressed in the library's time t = 1 - s.
    return Transport.from_data_at_one(
        alpha=lambda s: 1 - s,
        gamma=lambda s: s,
        alpha_hat=lambda s: -torch.ones_like(s),
        gamma_hat=torch.ones_like,
        name="ReLinear",
    )


def _trigflow(half_pi: float = HALF_PI) -> Transport:
    return Transport(
        alpha=lambda t: torch.sin(half_pi * t),
        gamma=lambda t: torch.cos(half_pi * t),
        alpha_hat=lambda t: torch.cos(half_pi * t),
        gamma_hat=lambda t: -torch.sin(half_pi * t),
        name="TrigFlow" if half_pi == HALF_PI else f"TrigFlow(half_pi={half_pi:g})",
    )


def _edm() -> Transport:
    return Transport(
        alpha=lambda t: _edm_sigma(t) / _edm_norm(t),
        gamma=lambda t: 1 / _edm_norm(t),
        alpha_hat=lambda t: -0.5 / _edm_norm(t),
        gamma_hat=lambda t: 2 * _edm_sigma(t) / _edm_norm(t),
        name="EDM",
        # EDM scales the data by c_in = 1/sqrt(sigma^2 + sigma_data^2) with sigma_data = 1/2,
        # so gamma(0) ~ 2 and alpha(0), gamma(1) are small but not 0 (sigma in [0.0017, 78]).
        allowed_deviations=frozenset({"alpha(0)=0", "gamma(0)=1", "gamma(1)=0"}),
    )


def _triglinear(half_pi: float = HALF_PI) -> Transport:
    return Transport(
        alpha=lambda t: torch.sin(half_pi * t),
        gamma=lambda t: torch.cos(half_pi * t),
        alpha_hat=torch.ones_like,
        gamma_hat=lambda t: -torch.ones_like(t),
        name="TrigLinear" if half_pi == HALF_PI else f"TrigLinear(half_pi={half_pi:g})",
    )


def _random(half_pi: float = HALF_PI) -> Transport:
    return Transport(
        alpha=lambda t: torch.sin(half_pi * t),
        gamma=lambda t: 1 - t,
        alpha_hat=torch.ones_like,
        gamma_hat=lambda t: -1 - torch.exp(-5 * t),
        name="Random" if half_pi == HALF_PI else f"Random(half_pi={half_pi:g})",
    )


_BUILDERS: dict[str, Callable[[], Transport]] = {
    "linear": _linear,
    "relinear": _relinear,
    "trigflow": _trigflow,
    "edm": _edm,
    "triglinear": _triglinear,
    "random": _random,
}
_CACHE: dict[str, Transport] = {}


REFERENCE_HALF_PI = 1.57
"""The reference implementation's value of pi / 2 in the trigonometric transports."""


def reference_transport(name: str) -> Transport:
    """A trigonometric transport with the reference implementation's constant 1.57 for pi / 2.

    ucgm-lab uses the exact pi / 2 (docs/architecture.md). A checkpoint trained by the
    reference implementation with TrigFlow, TrigLinear or Random was trained on
    sin(1.57 t), cos(1.57 t); sample it with this transport to reproduce the reference exactly
    (with the exact constant, samples of the same model differ by up to about 1e-3).

    Args:
        name: "trigflow", "triglinear" or "random"; the other transports have no such constant
            and are returned by :func:`get_transport` unchanged.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    builders = {"trigflow": _trigflow, "triglinear": _triglinear, "random": _random}
    if key in builders:
        return builders[key](REFERENCE_HALF_PI)
    return get_transport(name)


def list_transports() -> list[str]:
    """Names of the built-in transports of Tab. 2 (lower case)."""
    return list(_BUILDERS)


def get_transport(name: str | Transport) -> Transport:
    """Return a built-in transport of Tab. 2 by name (case-insensitive).

    Args:
        name: One of ``list_transports()`` (e.g. ``"linear"``, ``"TrigFlow"``), or a
            :class:`Transport`, which is returned unchanged.

    Returns:
        The transport.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
    """
    if isinstance(name, Transport):
        return name
    if not isinstance(name, str):
        raise TypeError(f"transport must be a name or a Transport, got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in _BUILDERS:
        raise ValueError(
            f"Unknown transport {name!r}. Known transports: "
            f"{', '.join(t.name for t in map(get_transport, _BUILDERS))}; or build your own "
            "with Transport(alpha=..., gamma=..., alpha_hat=..., gamma_hat=...)."
        )
    if key not in _CACHE:
        _CACHE[key] = _BUILDERS[key]()
    return _CACHE[key]


# ---------------------------------------------------------------------- flow noise levels
def is_flow_linear(tr: Transport) -> bool:
    """True if alpha(t) = t and gamma(t) = 1 - t (the flow-matching interpolant), checked at five times."""
    t = torch.tensor([0.1, 0.37, 0.5, 0.83, 0.999], dtype=torch.float64)
    return bool(torch.equal(tr.alpha(t), t)) and bool(torch.equal(tr.gamma(t), 1 - t))


def flow_time(tr: Transport, sigma: float) -> float:
    """The time t of ``tr`` whose alpha / (alpha + gamma) equals the flow noise level sigma.

    Exactly sigma for the linear transport; otherwise 80 bisection steps in float64 on
    [0, 1] (alpha / (alpha + gamma) must increase with t, as for every transport of Tab. 2
    whose data is at t = 0).

    Raises:
        ValueError: The transport never reaches sigma (EDM: alpha / (alpha + gamma) < 0.988).
    """
    if is_flow_linear(tr):
        return float(sigma)
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        t = torch.tensor(mid, dtype=torch.float64)
        a, g = float(tr.alpha(t)), float(tr.gamma(t))
        if a / (a + g) < sigma:
            lo = mid
        else:
            hi = mid
    t = torch.tensor(0.5 * (lo + hi), dtype=torch.float64)
    a, g = float(tr.alpha(t)), float(tr.gamma(t))
    if not abs(a / (a + g) - sigma) < 1e-9:
        raise ValueError(
            f"transport {tr.name!r} never reaches the flow noise level sigma = {sigma:g} "
            "(alpha / (alpha + gamma) over t in [0, 1] must cover [0, 0.999]); the diffusers "
            "flow schedulers need such a transport (e.g. 'linear', 'trigflow')."
        )
    return float(t)
