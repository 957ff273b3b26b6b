"""Is a network smooth enough in t for few-step training? A check run before the first step.

At lambda = 1 the objective regresses on the derivative of the data estimate f^x along the
transport, taken by a central difference of half-width epsilon (Alg. 1 line 13, eq. 6):

    D_h(t) = (f^x(x_{t+h}, t + h) - f^x(x_{t-h}, t - h)) / (2 h),  h = epsilon.

When the network's output varies on a time scale comparable to epsilon (a sinusoidal time
embedding fed ``1000 t`` has features that turn by 10 radians across t +- 0.005), D_epsilon is not
a derivative but noise, and the few-step model is poor (``benchmarks/time_scale.py``,
docs/architecture.md). For a smooth output
D_h converges like h^2, so D_epsilon and D_{epsilon/2} agree to a fraction of a percent; for a
fast one they differ by tens of percent. :func:`time_sensitivity` measures

    r = rms(D_epsilon - D_{epsilon/2}) / rms(D_{epsilon/2})

on a batch of training points, and :func:`warn_if_time_sensitive` (called by
:class:`~ucgm_lab.objective.UCGMObjective` once, before its first step at lambda > 0) warns
when r exceeds :data:`DEFAULT_THRESHOLD`, saying what to do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .model_api import Model, call_model, check_batch, check_labels, unwrap_model
from .schedules import BetaTimeDistribution
from .transports import Transport, broadcast_time, get_transport

__all__ = [
    "DEFAULT_THRESHOLD",
    "TimeSensitivity",
    "TimeSensitivityWarning",
    "time_sensitivity",
    "warn_if_time_sensitive",
]

DEFAULT_THRESHOLD = 0.05
"""Warn when D_epsilon and D_{epsilon/2} differ by more than 5% (rms). Measured: 0.12 to 0.99
for sinusoidal embeddings of 1000 t (untrained; 0.76 for a trained one, benchmarks/time_scale.py;
0.73 to 0.85 for the first digits zoo's U-Nets), at most 0.005 for scale 30 (the zoo's 2D
models: 0.0008 to 0.0045), for networks that take t in [0, 1] directly and for wrapped networks.
tests/ucgm_lab/zoo/test_zoo_checks.py runs the check on every zoo model."""


class TimeSensitivityWarning(UserWarning):
    """The network's output changes too fast in t for the few-step central difference."""


@dataclass(frozen=True)
class TimeSensitivity:
    """Result of :func:`time_sensitivity`.

    Attributes:
        epsilon: Half-width h of the objective's central difference.
        relative_change: r = rms(D_h - D_{h/2}) / rms(D_{h/2}) over the checked batch.
        derivative_rms: rms(D_{h/2}), the size of the derivative itself.
        threshold: The r above which the network counts as too fast.
        samples: Number of (x, t, z) points measured.
    """

    epsilon: float
    relative_change: float
    derivative_rms: float
    threshold: float
    samples: int

    @property
    def too_fast(self) -> bool:
        """Whether r exceeds the threshold (the few-step target would be mostly noise)."""
        return self.relative_change > self.threshold

    @property
    def message(self) -> str:
        """One paragraph: what was measured and, when too fast, what to do."""
        head = (
            f"The central differences of the data estimate at epsilon = {self.epsilon:g} and "
            f"epsilon / 2 differ by {100 * self.relative_change:.1f}% (rms over {self.samples} "
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
) -> TimeSensitivity:
    """Measure how far the objective's lambda = 1 central difference is from a derivative.

    Draws t from the training-time distribution (clamped to [epsilon, 1 - epsilon] as the
    objective does at lambda = 1) and z ~ N(0, I) from its own generator, so the caller's random
    state is untouched, and evaluates the data estimate f^x (eq. 2) at t +- epsilon and
    t +- epsilon / 2 along x_r = alpha(r) z + gamma(r) x, in one batched no-grad call outside
    autocast, in the model's parameter dtype.

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

    Returns:
        :class:`TimeSensitivity`.
    """
    check_batch(x, "x")
    check_labels(y, x.shape[0], "y")
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must lie in (0, 0.5), got {epsilon}.")
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
    offsets = (epsilon, -epsilon, epsilon / 2, -epsilon / 2)
    t_all = torch.cat([t + o for o in offsets])
    x_all, z_all = xs.repeat((4,) + (1,) * (xs.ndim - 1)), z.repeat((4,) + (1,) * (z.ndim - 1))
    t_b = broadcast_time(t_all, x_all)
    c = tr.coefficients(t_b)
    x_t = c.alpha * z_all + c.gamma * x_all
    y_all = None if ys is None else ys.repeat(4)
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
        F = call_model(net, x_t, tr.model_time(t_all).to(dtype), y_all)
        f = tr.predict_x(F.to(dtype), x_t, t_b).double()
    f_plus, f_minus, f_half_plus, f_half_minus = f.chunk(4)
    d_full = (f_plus - f_minus) / (2 * epsilon)
    d_half = (f_half_plus - f_half_minus) / epsilon
    rms_half = d_half.pow(2).mean().sqrt()
    rms_gap = (d_full - d_half).pow(2).mean().sqrt()
    rel = float(rms_gap / rms_half.clamp_min(1e-12))
    return TimeSensitivity(
        epsilon=float(epsilon),
        relative_change=rel,
        derivative_rms=float(rms_half),
        threshold=float(threshold),
        samples=n,
    )


def warn_if_time_sensitive(
    model: Model,
    x: Tensor,
    transport: str | Transport = "linear",
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
        warnings.warn(result.message, TimeSensitivityWarning, stacklevel=3)
    return result


def _param_dtype(net: Model, x: Tensor) -> torch.dtype:
    if isinstance(net, nn.Module):
        for p in net.parameters():
            if p.is_floating_point():
                return p.dtype
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
