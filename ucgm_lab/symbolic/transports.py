"""SymPy expressions of the UCGM transports of Tab. 2 (section 3.1), in the library's time.

A transport is four coefficient functions of the time t,

    x_t = alpha(t) z + gamma(t) x                 (section 3.1, below eq. 1)
    F   ~ alpha_hat(t) z + gamma_hat(t) x         (the regression target z_t of eq. 1)

and this module writes them as SymPy expressions in the symbol :data:`t`. The time convention
is the one of :mod:`ucgm_lab.transports`: data at t = 0, noise at t = 1. ReLinear, which Tab. 2
writes with the data at s = 1, is re-expressed with t = 1 - s (alpha = t, gamma = 1 - t,
alpha_hat = -1, gamma_hat = 1) and records that its network receives the time 1 - t
(``model_time``), exactly as :meth:`ucgm_lab.transports.Transport.from_data_at_one` does.

The numeric transports of the core library and these expressions are one source of truth:
:func:`ucgm_lab.symbolic.numeric.to_numeric` turns any :class:`SymbolicTransport` (a built-in
one or your own) into a :class:`ucgm_lab.transports.Transport` with ``sympy.lambdify``, and the
tests check that the built-in ones equal ``ucgm_lab.get_transport(name)`` on a fine grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

__all__ = [
    "EDM_SIGMA",
    "SymbolicTransport",
    "list_symbolic_transports",
    "symbolic_transport",
    "t",
]

t = sp.Symbol("t", real=True)
"""The library's time: data at t = 0, noise at t = 1."""

_HALF_PI_T = sp.pi * t / 2

EDM_SIGMA = sp.exp(4 * (sp.Rational(67, 25) * t - sp.Rational(159, 100)))
"""EDM's noise level as in Tab. 1-2: sigma(t) = exp(4 (2.68 t - 1.59))."""


@dataclass(frozen=True)
class SymbolicTransport:
    """A UCGM transport as four SymPy expressions of the time (section 3.1, Tab. 2).

    Args:
        alpha: alpha(t), the weight of the noise z in x_t.
        gamma: gamma(t), the weight of the data x in x_t.
        alpha_hat: alpha_hat(t), the weight of z in the network's target.
        gamma_hat: gamma_hat(t), the weight of x in the network's target.
        name: A label.
        model_time: The time the network receives, as an expression of ``time``; ``None``
            means ``time`` itself (``1 - t`` for transports written with the data at 1).
        allowed_deviations: Names of constraints (a)/(b) of section 3.1 that the transport
            breaks on purpose (see ``ucgm_lab.transports.CONSTRAINT_CHECKS``); passed on to the
            numeric transport.
        time: The time symbol the expressions are written in (default :data:`t`).

    Raises:
        ValueError: If an expression depends on a symbol other than ``time``.
    """

    alpha: sp.Expr
    gamma: sp.Expr
    alpha_hat: sp.Expr
    gamma_hat: sp.Expr
    name: str = "custom"
    model_time: sp.Expr | None = None
    allowed_deviations: frozenset[str] = field(default_factory=frozenset)
    time: sp.Symbol = t

    def __post_init__(self) -> None:
        for key in ("alpha", "gamma", "alpha_hat", "gamma_hat"):
            object.__setattr__(self, key, sp.sympify(getattr(self, key)))
        mt = self.time if self.model_time is None else sp.sympify(self.model_time)
        object.__setattr__(self, "model_time", mt)
        object.__setattr__(self, "allowed_deviations", frozenset(self.allowed_deviations))
        for key, expr in (*self.coefficients().items(), ("model_time", mt)):
            extra = expr.free_symbols - {self.time}
            if extra:
                raise ValueError(
                    f"SymbolicTransport {self.name!r}: {key} = {expr} depends on "
                    f"{sorted(map(str, extra))}; coefficients may depend on the time "
                    f"{self.time} only."
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def flow_matching(
        cls, alpha: sp.Expr, gamma: sp.Expr, name: str = "custom flow matching", time: sp.Symbol = t
    ) -> SymbolicTransport:
        """A flow-matching transport: alpha_hat = d alpha / dt, gamma_hat = d gamma / dt.

        Section 3.1 (b): objective (1) trains a flow-matching model exactly when the target
        coefficients are the time derivatives of the path coefficients (App. B.1.3).

        Args:
            alpha: alpha(t).
            gamma: gamma(t).
            name: A label.
            time: The time symbol.

        Returns:
            The transport with the derivative targets.
        """
        alpha, gamma = sp.sympify(alpha), sp.sympify(gamma)
        return cls(alpha, gamma, sp.diff(alpha, time), sp.diff(gamma, time), name=name, time=time)

    @classmethod
    def from_data_at_one(
        cls,
        alpha: sp.Expr,
        gamma: sp.Expr,
        alpha_hat: sp.Expr,
        gamma_hat: sp.Expr,
        s: sp.Symbol,
        name: str = "custom (data at s=1)",
        allowed_deviations: frozenset[str] = frozenset(),
    ) -> SymbolicTransport:
        """Re-express a transport written in a time s with the data at s = 1 (like ReLinear).

        The library's time is t = 1 - s: the coefficients become alpha(1 - t), ..., and the
        network keeps receiving its own time s = 1 - t (``model_time``), as in
        :meth:`ucgm_lab.transports.Transport.from_data_at_one`.

        Args:
            alpha: alpha(s).
            gamma: gamma(s).
            alpha_hat: alpha_hat(s).
            gamma_hat: gamma_hat(s).
            s: The symbol of the original time.
            name: A label.
            allowed_deviations: As in :class:`SymbolicTransport`.

        Returns:
            The transport in the library's time (data at t = 0).
        """
        flip = {s: 1 - t}
        return cls(
            sp.sympify(alpha).subs(flip),
            sp.sympify(gamma).subs(flip),
            sp.sympify(alpha_hat).subs(flip),
            sp.sympify(gamma_hat).subs(flip),
            name=name,
            model_time=1 - t,
            allowed_deviations=allowed_deviations,
        )

    # ------------------------------------------------------------------ quantities
    def coefficients(self) -> dict[str, sp.Expr]:
        """The four coefficients by name: alpha, gamma, alpha_hat, gamma_hat."""
        return {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "alpha_hat": self.alpha_hat,
            "gamma_hat": self.gamma_hat,
        }

    @cached_property
    def D(self) -> sp.Expr:  # noqa: N802  (the paper's name)
        """The denominator of eq. (2), alpha gamma_hat - alpha_hat gamma, simplified (c)."""
        return sp.simplify(self.alpha * self.gamma_hat - self.alpha_hat * self.gamma)

    def interpolate(self, z: sp.Expr, x: sp.Expr) -> sp.Expr:
        """x_t = alpha z + gamma x (section 3.1)."""
        return self.alpha * z + self.gamma * x

    def target(self, z: sp.Expr, x: sp.Expr) -> sp.Expr:
        """The regression target z_t = alpha_hat z + gamma_hat x (eq. 1)."""
        return self.alpha_hat * z + self.gamma_hat * x

    def f_x(self, F: sp.Expr, x_t: sp.Expr) -> sp.Expr:
        """The data prediction f^x(F, x_t, t) = (alpha F - alpha_hat x_t) / D (eq. 2)."""
        return (self.alpha * F - self.alpha_hat * x_t) / self.D

    def f_z(self, F: sp.Expr, x_t: sp.Expr) -> sp.Expr:
        """The noise prediction f^z(F, x_t, t) = (gamma_hat x_t - gamma F) / D (eq. 2)."""
        return (self.gamma_hat * x_t - self.gamma * F) / self.D

    def path_velocity(self) -> tuple[sp.Expr, sp.Expr]:
        """(d alpha / dt, d gamma / dt): the coefficients of d x_t / dt = alpha' z + gamma' x."""
        return sp.diff(self.alpha, self.time), sp.diff(self.gamma, self.time)

    def at(self, expr: sp.Expr, value: float | sp.Expr) -> sp.Expr:
        """Substitute a time value into an expression built from this transport."""
        return sp.sympify(expr).subs(self.time, value)

    def __repr__(self) -> str:
        return (
            f"SymbolicTransport(name={self.name!r}, alpha={self.alpha}, gamma={self.gamma}, "
            f"alpha_hat={self.alpha_hat}, gamma_hat={self.gamma_hat}, model_time={self.model_time})"
        )


# ---------------------------------------------------------------------- Tab. 2
def _linear() -> SymbolicTransport:
    return SymbolicTransport(t, 1 - t, sp.Integer(1), sp.Integer(-1), name="Linear")


def _relinear() -> SymbolicTransport:
    s = sp.Symbol("s", real=True)
    # Tab. 2 with the data at s = 1: alpha = 1 - s, gamma = s, target -z + x (= d x_s / ds).
    return SymbolicTransport.from_data_at_one(
        1 - s, s, sp.Integer(-1), sp.Integer(1), s=s, name="ReLinear"
    )


def _trigflow() -> SymbolicTransport:
    sin, cos = sp.sin(_HALF_PI_T), sp.cos(_HALF_PI_T)
    return SymbolicTransport(sin, cos, cos, -sin, name="TrigFlow")


def _edm() -> SymbolicTransport:
    norm = sp.sqrt(EDM_SIGMA**2 + sp.Rational(1, 4))
    return SymbolicTransport(
        EDM_SIGMA / norm,
        1 / norm,
        -sp.Rational(1, 2) / norm,
        2 * EDM_SIGMA / norm,
        name="EDM",
        allowed_deviations=frozenset({"alpha(0)=0", "gamma(0)=1", "gamma(1)=0"}),
    )


def _triglinear() -> SymbolicTransport:
    return SymbolicTransport(
        sp.sin(_HALF_PI_T), sp.cos(_HALF_PI_T), sp.Integer(1), sp.Integer(-1), name="TrigLinear"
    )


def _random() -> SymbolicTransport:
    return SymbolicTransport(
        sp.sin(_HALF_PI_T), 1 - t, sp.Integer(1), -1 - sp.exp(-5 * t), name="Random"
    )


_BUILDERS: dict[str, Callable[[], SymbolicTransport]] = {
    "linear": _linear,
    "relinear": _relinear,
    "trigflow": _trigflow,
    "edm": _edm,
    "triglinear": _triglinear,
    "random": _random,
}


def list_symbolic_transports() -> list[str]:
    """Names of the built-in symbolic transports (those of ``ucgm_lab.list_transports()``)."""
    return list(_BUILDERS)


def symbolic_transport(name: str | SymbolicTransport) -> SymbolicTransport:
    """A transport of Tab. 2 as SymPy expressions, by name (case-insensitive).

    Args:
        name: One of :func:`list_symbolic_transports` (e.g. ``"TrigFlow"``), or a
            :class:`SymbolicTransport`, returned unchanged.

    Returns:
        The symbolic transport in the library's time (data at t = 0).

    Raises:
        ValueError: For an unknown name.
    """
    if isinstance(name, SymbolicTransport):
        return name
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in _BUILDERS:
        raise ValueError(
            f"Unknown transport {name!r}; known: {', '.join(_BUILDERS)}. Build your own with "
            "SymbolicTransport(alpha, gamma, alpha_hat, gamma_hat)."
        )
    return _BUILDERS[key]()
