"""The six transports of Tab. 2 and the helpers that read a transport.

Linear, ReLinear, TrigFlow, EDM, TrigLinear and Random; the reference code's variants
(``REFERENCE_HALF_PI``); :func:`get_transport`, :func:`is_flow_linear`, :func:`flow_time`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .transport import HALF_PI, Transport

__all__ = [
    "REFERENCE_HALF_PI",
    "flow_time",
    "get_transport",
    "is_flow_linear",
    "list_transports",
    "reference_transport",
]


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
