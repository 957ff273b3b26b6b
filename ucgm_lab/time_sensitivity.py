"""Is a network smooth enough in t for few-step training? The check of the objective.

At lambda = 1 the objective regresses on the derivative of the data estimate f^x along the
transport, taken by a central difference of half-width epsilon (Alg. 1 line 13, eq. 6):

    D_h(t) = (f^x(x_{t+h}, t + h) - f^x(x_{t-h}, t - h)) / (2 h),  h = epsilon.

When the network's output varies on a time scale comparable to epsilon (a sinusoidal time
embedding fed ``1000 t`` has features that turn by 10 radians across t +- 0.005), D_epsilon is not
a derivative but noise, and the few-step model is poor (``benchmarks/time_scale.py``,
docs/architecture.md). :func:`time_sensitivity` measures how far D_epsilon is from the
derivative itself,

    r = rms(D_epsilon - d f^x / dt) / rms(d f^x / dt),

on a batch of training points. By default the derivative is estimated by central differences
at several smaller steps h = epsilon / k, k in :data:`DIVISORS`, and r is the largest gap to
any of them ("differences"); ``method="jvp"`` takes the exact derivative from one forward-mode
pass instead (``torch.autograd.forward_ad``; not the default: its first use in a process
imports torch's compiler, seconds of start-up, and not every network supports it). Comparing
only epsilon with epsilon / 2 has a blind spot: a feature sin(w t) turns D_h into w cos(w t) sinc(w h), and where
sinc(w epsilon) = sinc(w epsilon / 2) (w = 2513: both ~0; w = 5000: both -0.005) the two
agree while both are wrong. The sincs at epsilon / 2, / 3, / 5 and / 16 have no common zero
with the one at epsilon below w = 240 pi / epsilon (lcm(2, 3, 5, 16) = 240).

:func:`warn_if_time_sensitive` warns when r exceeds :data:`DEFAULT_THRESHOLD`, saying what to
do. :class:`TimeSensitivityMonitor` decides when to measure: once before the first step that
uses the difference, and once more after ``recheck_after`` calls when the first check did not
warn (a network whose output layer starts at zero is constant in t at first, so the first
check cannot see what training will make of it). :class:`~ucgm_lab.objective.UCGMObjective`
runs one for lambda > 0.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .model_api import Model, call_model, check_batch, check_labels, unwrap_model
from .schedules import BetaTimeDistribution
from .transports import Transport, broadcast_time, get_transport

__all__ = [
    "DEFAULT_RECHECK_AFTER",
    "DEFAULT_THRESHOLD",
    "DIVISORS",
    "TimeSensitivity",
    "TimeSensitivityMonitor",
    "TimeSensitivityWarning",
    "time_sensitivity",
    "warn_if_time_sensitive",
]

DEFAULT_THRESHOLD = 0.05
"""Warn when D_epsilon is more than 5% (rms) away from the derivative. A smooth network's
central difference is off by O(epsilon^2) (well below 1%: tests/ucgm_lab/test_time_sensitivity.py
checks the zoo's trained models and several smooth networks); sinusoidal embeddings of 1000 t are
off by tens of percent or more. Measured with the
first rule (D_epsilon against D_{epsilon/2}): 0.73 to 0.85 for the first digits zoo's U-Nets fed
1000 t, at most 0.005 for scale 30 (the zoo's 2D models: 0.0008 to 0.0045);
tests/ucgm_lab/zoo/test_zoo_checks.py runs the check on every zoo model."""

DEFAULT_RECHECK_AFTER = 100
"""Calls after which :class:`TimeSensitivityMonitor` measures a second time."""

DIVISORS = (2, 3, 5, 16)
"""D_epsilon is compared with D_{epsilon / k} for these k (without ``method="jvp"``)."""

Method = Literal["differences", "jvp", "auto"]


class TimeSensitivityWarning(UserWarning):
    """The network's output changes too fast in t for the few-step central difference."""


@dataclass(frozen=True)
class TimeSensitivity:
    """Result of :func:`time_sensitivity`.

    Attributes:
        epsilon: Half-width h of the objective's central difference.
        relative_change: r = rms(D_epsilon - D) / rms(D) over the checked batch, D the
            derivative of f^x along the transport (exact, or the finite-difference estimates).
        derivative_rms: rms(D), the size of the derivative itself.
        threshold: The r above which the network counts as too fast.
        samples: Number of (x, t, z) points measured.
        method: "differences" (steps epsilon / k) or "jvp" (exact derivative).
        network_derivative_rms: rms(dF / dt) of the network output along the path (the
            same estimate). Zero for a network whose output does not depend on t yet.
    """

    epsilon: float
    relative_change: float
    derivative_rms: float
    threshold: float
    samples: int
    method: str = "differences"
    network_derivative_rms: float | None = None

    @property
    def too_fast(self) -> bool:
        """Whether r exceeds the threshold (the few-step target would be mostly noise)."""
        return self.relative_change > self.threshold

    @property
    def message(self) -> str:
        """One paragraph: what was measured and, when too fast, what to do."""
        against = (
            "its exact derivative (JVP)"
            if self.method == "jvp"
            else "the differences at epsilon / " + ", ".join(map(str, DIVISORS))
        )
        head = (
            f"The central difference of the data estimate at epsilon = {self.epsilon:g} is "
            f"{100 * self.relative_change:.1f}% away from {against} (rms over {self.samples} "
            f"training points; {100 * self.threshold:g}% or less is smooth enough)."
        )
        if not self.too_fast:
            return head + " The network is smooth enough in t for few-step (lambda > 0) training."
        return (
            head + " The network's output changes too fast in t for few-step (lambda > 0) "
            "training: the derivative it is trained on will be mostly noise (typical of a "
            "sinusoidal time embedding fed 1000 t). "
            "Wrap the network so that it sees a smaller time, "
            "ucgm_lab.networks.TimeScaled(network, time_scale=30 / S) for a network that multiplies t by S "
            "(0.03 for S = 1000), and train the lambda = 0 model with the wrapper from the start "
            "(wrapping a trained network changes its function); or give the network t in [0, 1]."
        )


def time_sensitivity(
    model: Model,
    x: Tensor,
    transport: str | Transport = "linear",
    *,
    y: Tensor | None = None,
    epsilon: float = 0.005,
    time_distribution: BetaTimeDistribution | None = None,
    max_samples: int = 256,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    method: Method = "differences",
) -> TimeSensitivity:
    """Measure how far the objective's lambda = 1 central difference is from a derivative.

    Draws t from the training-time distribution (clamped to [epsilon, 1 - epsilon] as the
    objective does at lambda = 1) and z ~ N(0, I) from its own generator, so the caller's random
    state is untouched, and evaluates the data estimate f^x (eq. 2) along
    x_r = alpha(r) z + gamma(r) x: at t +- epsilon, and its derivative in t (one
    central differences at t +- epsilon / k, or one forward-mode pass), without gradients, outside
    autocast, eagerly (compiled parts of the network run uncompiled), in the model's parameter
    dtype, in batches of at most 2 ``max_samples`` rows.

    Args:
        model: ``model(x_t, t, y=None) -> F`` (wrappers such as DDP are stripped).
        x: Training data, shape (B, ...); at most ``max_samples`` rows are used.
        transport: The transport (a :class:`Transport` or a name of Tab. 2).
        y: Optional class ids, shape (B,).
        epsilon: Half-width of the objective's central difference (the paper's 0.005).
        time_distribution: Training times (default Beta(1, 1)).
        max_samples: Number of data rows to use.
        threshold: r above which :attr:`TimeSensitivity.too_fast` is true.
        seed: Seed of the check's own generator.
        method: "differences" (default), "jvp" (raises if the network does not support
            forward-mode differentiation) or "auto" (the JVP, else the differences).

    Returns:
        :class:`TimeSensitivity`.

    Raises:
        ValueError: For an epsilon outside (0, 0.5) or an unknown method.
    """
    check_batch(x, "x")
    check_labels(y, x.shape[0], "y")
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must lie in (0, 0.5), got {epsilon}.")
    if method not in ("differences", "jvp", "auto"):
        raise ValueError(f"method must be 'differences', 'jvp' or 'auto', got {method!r}.")
    tr = get_transport(transport)
    net = unwrap_model(model) if isinstance(model, nn.Module) else model
    n = min(int(max_samples), x.shape[0])
    device = x.device
    dtype = _param_dtype(net, x)
    xs = x[:n].to(dtype)
    ys = None if y is None else y[:n].to(device=device, dtype=torch.long)
    gen = torch.Generator(device=device).manual_seed(seed)
    dist = time_distribution or BetaTimeDistribution()
    t = dist.sample(n, device=device, dtype=dtype, generator=gen, t_min=epsilon, t_max=1 - epsilon)
    z = torch.randn(xs.shape, generator=gen, device=device, dtype=dtype)
    path = _Path(net, tr, xs, z, ys, dtype)
    # eager even inside torch.compile'd networks (compile_blocks): the check's batch sizes and
    # its forward-mode pass must not trigger compilations. Nothing is compiled unless dynamo
    # is loaded, and importing it only for this would cost seconds.
    compiled = "torch._dynamo" in sys.modules
    eager = torch.compiler.set_stance("force_eager") if compiled else contextlib.nullcontext()
    with eager, torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
        d_eps = path.central_difference(t, epsilon)[0]
        exact = None
        if method != "differences":
            try:
                exact = path.jvp(t)
            except Exception as exc:  # a network without forward-mode support
                if method == "jvp":
                    raise ValueError(
                        f"method='jvp' needs a network that supports forward-mode "
                        f"differentiation; this one raised {type(exc).__name__}: {exc}. Use "
                        "method='differences'."
                    ) from exc
        if exact is not None:
            references, d_net = [exact[0]], exact[1]
            used = "jvp"
        else:
            pairs = [path.central_difference(t, epsilon / k) for k in DIVISORS]
            references, d_net = [d for d, _ in pairs], pairs[-1][1]
            used = "differences"
    rel = max(float(_rms(d_eps - d) / _rms(d).clamp_min(1e-12)) for d in references)
    return TimeSensitivity(
        epsilon=float(epsilon),
        relative_change=rel,
        derivative_rms=float(_rms(references[-1])),
        threshold=float(threshold),
        samples=n,
        method=used,
        network_derivative_rms=float(_rms(d_net)),
    )


class _Path:
    """f^x along x_r = alpha(r) z + gamma(r) x for fixed (x, z, y): values and derivatives."""

    def __init__(
        self, net: Model, tr: Transport, x: Tensor, z: Tensor, y: Tensor | None, dtype: torch.dtype
    ) -> None:
        self.net, self.tr, self.x, self.z, self.y, self.dtype = net, tr, x, z, y, dtype

    def outputs(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(F, f^x) at times t (B,), each (B, ...)."""
        t_b = broadcast_time(t, self.x)
        c = self.tr.coefficients(t_b)
        x_t = c.alpha * self.z + c.gamma * self.x
        F = call_model(self.net, x_t, self.tr.model_time(t).to(self.dtype), self.y).to(self.dtype)
        return F, self.tr.predict_x(F, x_t, t_b)

    def central_difference(self, t: Tensor, h: float) -> tuple[Tensor, Tensor]:
        """The central differences of f^x and of F at half-width h, in float64, each (B, ...).

        One batched call of 2 B rows.
        """
        both = torch.cat([t + h, t - h])
        double = _Path(self.net, self.tr, _twice(self.x), _twice(self.z), self.y, self.dtype)
        if self.y is not None:
            double.y = self.y.repeat(2)
        F, f = double.outputs(both)
        F_plus, F_minus = F.double().chunk(2)
        f_plus, f_minus = f.double().chunk(2)
        return (f_plus - f_minus) / (2 * h), (F_plus - F_minus) / (2 * h)

    def jvp(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(d f^x / dt, dF / dt) by one forward-mode pass, in float64, each (B, ...)."""
        import torch.autograd.forward_ad as fwAD

        with warnings.catch_warnings(), fwAD.dual_level():
            # torch's first forward-mode use imports its JVP decompositions, which warn that
            # torch.jit.script is deprecated (torch 2.13): not the user's business
            warnings.filterwarnings("ignore", ".*torch.jit.script", DeprecationWarning)
            F, f = self.outputs(fwAD.make_dual(t, torch.ones_like(t)))
            d_F, d_f = fwAD.unpack_dual(F).tangent, fwAD.unpack_dual(f).tangent
        if d_F is None or d_f is None:  # the output does not depend on t at all
            d_F = torch.zeros_like(F) if d_F is None else d_F
            d_f = torch.zeros_like(f) if d_f is None else d_f
        if not (torch.isfinite(d_f).all() and torch.isfinite(d_F).all()):
            raise FloatingPointError("non-finite JVP")
        return d_f.double(), d_F.double()


def _twice(a: Tensor) -> Tensor:
    return a.repeat((2,) + (1,) * (a.ndim - 1))


def _rms(a: Tensor) -> Tensor:
    return a.pow(2).mean().sqrt()


def warn_if_time_sensitive(
    model: Model,
    x: Tensor,
    transport: str | Transport = "linear",
    *,
    stacklevel: int = 3,
    **kwargs: object,
) -> TimeSensitivity | None:
    """Run :func:`time_sensitivity` and emit a :class:`TimeSensitivityWarning` when too fast.

    Skipped (returns None) when the model computes in a 16-bit dtype, where the differences at
    epsilon / 2 are below the rounding error. The caller's random state is not touched (the
    forward runs inside ``torch.random.fork_rng``, so dropout draws are forgotten).

    Args:
        model: The network.
        x: A training batch, shape (B, ...).
        transport: The transport.
        stacklevel: Of the warning (3: the caller of the function that calls this one).
        **kwargs: Passed to :func:`time_sensitivity` (y, epsilon, time_distribution, ...).

    Returns:
        The measurement, or None when skipped.
    """
    net = unwrap_model(model) if isinstance(model, nn.Module) else model
    if _param_dtype(net, x) in (torch.float16, torch.bfloat16):
        return None
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        result = time_sensitivity(model, x, transport, **kwargs)  # type: ignore[arg-type]
    if result.too_fast:
        warnings.warn(result.message, TimeSensitivityWarning, stacklevel=stacklevel)
    return result


class TimeSensitivityMonitor:
    """When to run :func:`warn_if_time_sensitive` during training: at call 0 and once later.

    The first measurement sees the network as it starts; a network whose output layer starts
    at zero (or near it) is constant in t there and passes, whatever its time embedding. So
    when the first check does not warn, the monitor measures once more at call
    ``recheck_after``, on the network training has made by then. At most one warning.

    Args:
        recheck_after: Calls (training steps) before the second measurement; None: never.

    Attributes:
        results: The measurements made so far (None entries: skipped for a 16-bit model).
    """

    def __init__(self, recheck_after: int | None = DEFAULT_RECHECK_AFTER) -> None:
        if recheck_after is not None and (
            isinstance(recheck_after, bool)
            or not isinstance(recheck_after, int)
            or recheck_after < 1
        ):
            raise ValueError(
                f"recheck_after must be a positive integer (calls) or None, got {recheck_after!r}."
            )
        self.recheck_after = recheck_after
        self.calls = 0
        self.results: list[TimeSensitivity | None] = []
        self._warned = False

    @property
    def latest(self) -> TimeSensitivity | None:
        """The last measurement (None before the first)."""
        return self.results[-1] if self.results else None

    def due(self) -> bool:
        """Whether the next :meth:`step` measures (no model call when not)."""
        if self._warned:
            return False
        return self.calls == 0 or (
            self.recheck_after is not None and self.calls == self.recheck_after
        )

    def skip(self) -> None:
        """Count one call that :meth:`due` said needs no measurement."""
        self.calls += 1

    def step(
        self, model: Model, x: Tensor, transport: str | Transport, **kwargs: object
    ) -> TimeSensitivity | None:
        """Count one call; measure (and warn when too fast) if due. Returns the new result.

        ``kwargs`` go to :func:`time_sensitivity`; the warning points at the caller of the
        function that calls ``step`` (the training loop, for the objective).
        """
        result = None
        if self.due():
            result = warn_if_time_sensitive(model, x, transport, stacklevel=4, **kwargs)
            self.results.append(result)
            self._warned = result is not None and result.too_fast
        self.calls += 1
        return result


def _param_dtype(net: Model, x: Tensor) -> torch.dtype:
    if isinstance(net, nn.Module):
        for p in net.parameters():
            if p.is_floating_point():
                return p.dtype
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
