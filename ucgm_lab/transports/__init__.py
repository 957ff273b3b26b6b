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

The package: :mod:`.transport` (the :class:`Transport` class and its constraints),
:mod:`.coefficients` (:class:`Coefficients`, :class:`Decomposition`, :func:`broadcast_time`) and
:mod:`.named` (the transports of Tab. 2 and :func:`get_transport`); every name is importable
from ``ucgm_lab.transports`` as before.
"""

from .coefficients import CoefficientFn as CoefficientFn
from .coefficients import Coefficients, Decomposition, broadcast_time
from .named import (
    REFERENCE_HALF_PI,
    flow_time,
    get_transport,
    is_flow_linear,
    list_transports,
    reference_transport,
)
from .transport import CONSTRAINT_CHECKS as CONSTRAINT_CHECKS
from .transport import HALF_PI as HALF_PI
from .transport import (
    Transport,
    TransportConstraintError,
    TransportConstraintWarning,
)

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
