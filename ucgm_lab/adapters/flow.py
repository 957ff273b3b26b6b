"""Flow-matching models with the data at s = 1 (torchcfm, facebookresearch/flow_matching).

Convention of the source libraries: time s in [0, 1], noise z ~ N(0, I) at s = 0, data x at
s = 1, an affine probability path and a network trained to regress the path's velocity,

    x_s = a(s) x + b(s) z,        v(x_s, s) ~ a'(s) x + b'(s) z.

(flow_matching writes ``X_t = alpha_t X_1 + sigma_t X_0``: a = alpha_t, b = sigma_t; torchcfm's
``ConditionalFlowMatcher`` has a = s, b = 1 - s.) In UCGM terms, written in the source time s
(data at 1), the noise weight is alpha(s) = b(s), the data weight gamma(s) = a(s), and the
velocity is the F with alpha_hat = b'(s), gamma_hat = a'(s). :meth:`Transport.from_data_at_one`
re-expresses these coefficients in the library's time t = 1 - s and records
``model_time(t) = 1 - t``, so the network keeps receiving s and its output is used unchanged.
For the CondOT path (a = s, b = 1 - s) this is the paper's ReLinear transport, and UCGM-S with
kappa = rho = 0 and order 1 is exactly the Euler method in s (App. B.1.6).

Networks trained to predict the data (x_1) or the noise (x_0) on the same path are covered
too (``prediction="data"``: alpha_hat = 0, gamma_hat = 1; ``"noise"``: alpha_hat = 1,
gamma_hat = 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ucgm_lab.adapters.base import (
    AdaptedModel,
    AdaptedNetwork,
    InputConvention,
    check_choice,
    uniform_grid,
)
from ucgm_lab.transports import Transport

__all__ = [
    "FLOW_PREDICTIONS",
    "AffinePath",
    "adapt_flow_matching",
    "adapt_torchcfm",
    "flow_transport",
]

CoefficientFn = Callable[[Tensor], Tensor]
FlowPrediction = Literal["velocity", "data", "noise"]
FLOW_PREDICTIONS: tuple[str, ...] = ("velocity", "data", "noise")
"""What a flow-matching network outputs: velocity dx_s/ds, data x (x_1) or noise z (x_0)."""

_SUPPORTED_TORCHCFM = (
    "ConditionalFlowMatcher",
    "ExactOptimalTransportConditionalFlowMatcher",
    "TargetConditionalFlowMatcher",
    "VariancePreservingConditionalFlowMatcher",
)
# Coefficients of schedulers that are not finite at the ends (flow_matching's VPScheduler and
# LinearVPScheduler have d sigma / ds = inf at s = 1) are read this far inside [0, 1] instead.
_END_GAP = 1e-7
_BOUNDARY_CHECKS = ("alpha(0)=0", "alpha(1)=1", "gamma(0)=1", "gamma(1)=0")


def _ones(s: Tensor) -> Tensor:
    return torch.ones_like(s)


def _zeros(s: Tensor) -> Tensor:
    return torch.zeros_like(s)


@dataclass(frozen=True)
class AffinePath:
    """An affine path with the data at s = 1: x_s = data(s) x + noise(s) z, and its derivatives.

    All functions map a tensor of times s (any shape) to a tensor of the same shape.

    Attributes:
        data: a(s), the weight of the data (flow_matching's alpha_t).
        noise: b(s), the weight of the noise (flow_matching's sigma_t).
        d_data: a'(s).
        d_noise: b'(s).
        name: A label used in the transport's name and in ``describe()``.
    """

    data: CoefficientFn
    noise: CoefficientFn
    d_data: CoefficientFn
    d_noise: CoefficientFn
    name: str = "affine path"

    # ------------------------------------------------------------------ presets
    @classmethod
    def cond_ot(cls, sigma_min: float = 0.0) -> AffinePath:
        """CondOT path x_s = s x + (1 - (1 - sigma_min) s) z (torchcfm, flow_matching).

        ``sigma_min = 0`` is the straight path of ``ConditionalFlowMatcher(sigma=0)`` and of
        flow_matching's ``CondOTScheduler``; ``sigma_min > 0`` is Lipman et al.'s path of
        torchcfm's ``TargetConditionalFlowMatcher(sigma=sigma_min)``.

        Args:
            sigma_min: Noise weight left at s = 1, in [0, 1).

        Returns:
            The path.
        """
        if not 0.0 <= sigma_min < 1.0:
            raise ValueError(f"sigma_min must lie in [0, 1), got {sigma_min}.")
        c = 1.0 - sigma_min
        name = "CondOT" if sigma_min == 0 else f"CondOT(sigma_min={sigma_min:g})"
        return cls(
            data=lambda s: s,
            noise=lambda s: 1 - c * s,
            d_data=_ones,
            d_noise=lambda s: -c * torch.ones_like(s),
            name=name,
        )

    @classmethod
    def trigonometric(cls) -> AffinePath:
        """x_s = sin(pi s / 2) x + cos(pi s / 2) z.

        The path of torchcfm's ``VariancePreservingConditionalFlowMatcher`` and of
        flow_matching's ``CosineScheduler``.
        """
        h = math.pi / 2
        return cls(
            data=lambda s: torch.sin(h * s),
            noise=lambda s: torch.cos(h * s),
            d_data=lambda s: h * torch.cos(h * s),
            d_noise=lambda s: -h * torch.sin(h * s),
            name="trigonometric",
        )

    def with_extra_noise(self, sigma: float) -> AffinePath:
        """The path seen by a network trained with extra independent noise: x_s + sigma eps.

        torchcfm's ``ConditionalFlowMatcher(sigma)`` samples x_s = a x + b x_0 + sigma eps but
        regresses the velocity a' x + b' x_0 of the path without eps. With the combined noise
        z' = (b x_0 + sigma eps) / r, r = sqrt(b^2 + sigma^2), the regression's optimum
        E[a' x + b' x_0 | x_s] equals E[a' x + (b b' / r) z' | x_s] (the part of x_0 not
        explained by z' is independent of x_s), i.e. the velocity of the path a x + r z'.

        Args:
            sigma: The extra noise standard deviation (>= 0).

        Returns:
            The path with noise(s) = sqrt(b(s)^2 + sigma^2) and its derivative.
        """
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}.")
        if sigma == 0:
            return self
        base = self
        sigma2 = float(sigma) ** 2

        def noise(s: Tensor) -> Tensor:
            return torch.sqrt(base.noise(s) ** 2 + sigma2)

        def d_noise(s: Tensor) -> Tensor:
            return base.noise(s) * base.d_noise(s) / noise(s)

        return AffinePath(base.data, noise, base.d_data, d_noise, f"{base.name} + sigma={sigma:g}")

    @classmethod
    def from_scheduler(cls, scheduler: Any) -> AffinePath:
        """Wrap a flow_matching ``Scheduler`` (or an ``AffineProbPath``, using its scheduler).

        Any callable ``scheduler(s)`` returning an object with ``alpha_t, sigma_t, d_alpha_t,
        d_sigma_t`` works. Where a scheduler's value is not finite (``VPScheduler`` and
        ``LinearVPScheduler`` have d sigma / ds = inf at s = 1) the value 1e-7 inside [0, 1]
        is used; the sampler never evaluates the coefficients there.

        Args:
            scheduler: The scheduler or probability path.

        Returns:
            The path.
        """
        sched = getattr(scheduler, "scheduler", scheduler)
        if not callable(sched):
            raise TypeError(
                "Expected a flow_matching Scheduler (callable s -> SchedulerOutput) or an "
                f"AffineProbPath; got {type(scheduler).__name__}."
            )

        def field_fn(field: str) -> CoefficientFn:
            def fn(s: Tensor) -> Tensor:
                value = getattr(sched(s), field)
                bad = ~torch.isfinite(value)
                if bad.any():
                    inner = getattr(sched(s.clamp(_END_GAP, 1 - _END_GAP)), field)
                    value = torch.where(bad, inner, value)
                return value

            return fn

        return cls(
            data=field_fn("alpha_t"),
            noise=field_fn("sigma_t"),
            d_data=field_fn("d_alpha_t"),
            d_noise=field_fn("d_sigma_t"),
            name=type(sched).__name__,
        )

    @classmethod
    def from_torchcfm(cls, matcher: Any) -> AffinePath:
        """The path of a torchcfm conditional flow matcher.

        Supported: ``ConditionalFlowMatcher(sigma)`` and
        ``ExactOptimalTransportConditionalFlowMatcher(sigma)`` (x_s = s x + (1 - s) x_0 +
        sigma eps: the CondOT path with extra noise, see :meth:`with_extra_noise`; the OT
        coupling changes which pairs are trained on, not the path),
        ``TargetConditionalFlowMatcher(sigma)`` (:meth:`cond_ot` with sigma_min = sigma) and
        ``VariancePreservingConditionalFlowMatcher(sigma)`` (:meth:`trigonometric`, plus extra
        noise). The Schroedinger-bridge matcher's velocity carries a score term that no
        affine path describes; it raises.

        Args:
            matcher: A torchcfm matcher instance.

        Returns:
            The path.
        """
        kind = type(matcher).__name__
        if not type(matcher).__module__.startswith("torchcfm") or kind not in _SUPPORTED_TORCHCFM:
            raise ValueError(
                f"Unsupported torchcfm matcher {kind!r}; supported: "
                f"{', '.join(_SUPPORTED_TORCHCFM)}. (SchrodingerBridgeConditionalFlowMatcher's "
                "target adds a score term that is not "
                "the velocity of an affine path.)"
            )
        sigma = float(getattr(matcher, "sigma", 0.0))
        if kind == "TargetConditionalFlowMatcher":
            return cls.cond_ot(sigma_min=sigma)
        if kind == "VariancePreservingConditionalFlowMatcher":
            return cls.trigonometric().with_extra_noise(sigma)
        return cls.cond_ot().with_extra_noise(sigma)


def _resolve_path(path: Any) -> AffinePath:
    if isinstance(path, AffinePath):
        return path
    if isinstance(path, str):
        key = path.strip().lower().replace("-", "_")
        if key in ("cond_ot", "condot", "linear"):
            return AffinePath.cond_ot()
        if key in ("trigonometric", "cosine", "vp"):
            return AffinePath.trigonometric()
        raise ValueError(
            f"Unknown path {path!r}; allowed names: 'cond_ot', 'trigonometric' (or pass an "
            "AffinePath, a flow_matching Scheduler / AffineProbPath, or a torchcfm matcher)."
        )
    module = type(path).__module__
    if module.startswith("torchcfm"):
        return AffinePath.from_torchcfm(path)
    if module.startswith("flow_matching") or hasattr(path, "scheduler") or callable(path):
        return AffinePath.from_scheduler(path)
    raise TypeError(
        f"path must be a name, an AffinePath, a flow_matching Scheduler / AffineProbPath or a "
        f"torchcfm matcher; got {type(path).__name__}."
    )


def flow_transport(
    path: AffinePath | Any = "cond_ot", prediction: FlowPrediction = "velocity"
) -> Transport:
    """The UCGM transport of a data-at-one flow model (see the module docstring).

    Args:
        path: The path (a name, an :class:`AffinePath`, a flow_matching scheduler or path, or
            a torchcfm matcher).
        prediction: What the network outputs, one of :data:`FLOW_PREDICTIONS`.

    Returns:
        A transport in library time (data at t = 0) with ``model_time(t) = 1 - t``.
    """
    p = _resolve_path(path)
    check_choice(prediction, FLOW_PREDICTIONS, "flow prediction")
    if prediction == "velocity":
        alpha_hat, gamma_hat = p.d_noise, p.d_data
    elif prediction == "data":
        alpha_hat, gamma_hat = _zeros, _ones
    else:
        alpha_hat, gamma_hat = _ones, _zeros
    return Transport.from_data_at_one(
        alpha=p.noise,
        gamma=p.data,
        alpha_hat=alpha_hat,
        gamma_hat=gamma_hat,
        name=f"flow matching {p.name}, {prediction} (data at s=1)",
        # The source's path is what it is: sigma_min > 0 leaves noise at the data end, a
        # VP scheduler leaves data at the noise end, extra noise makes alpha(1) > 1. The
        # adapter declares the boundary values; monotonicity is still checked.
        allowed_deviations=_BOUNDARY_CHECKS,
    )


def _flow_mapping(source_label: str, path: AffinePath, prediction: str, inputs: str) -> str:
    output = {
        "velocity": "F = v = dx_s/ds unchanged (alpha_hat = b'(s), gamma_hat = a'(s))",
        "data": "F = x_1 prediction unchanged (alpha_hat = 0, gamma_hat = 1)",
        "noise": "F = x_0 prediction unchanged (alpha_hat = 1, gamma_hat = 0)",
    }[prediction]
    call = {"x_t": "source(x, s)", "t_x": "source(s, x)", "concat": "source(cat[x, s])"}[inputs]
    return (
        f"{source_label} {prediction} model on the {path.name} path x_s = a(s) x + b(s) z "
        f"(data at s = 1) -> Transport.from_data_at_one(alpha = b, gamma = a): library t = 1 - s, "
        f"{output}, called as {call}"
    )


def adapt_flow_matching(
    model: Callable[..., Any],
    path: AffinePath | Any = "cond_ot",
    *,
    prediction: FlowPrediction = "velocity",
    inputs: InputConvention = "x_t",
) -> AdaptedModel:
    """Adapt a model trained with facebookresearch's ``flow_matching`` (data at s = 1).

    The native sampler is ``ODESolver(model).sample(x_0, step_size=None, method="euler",
    time_grid=linspace(0, 1, N + 1))``; on the CondOT path UCGM-S with kappa = rho = 0,
    order 1 and :meth:`AdaptedModel.time_points` reproduces it exactly. On curved paths UCGM-S
    order 1 is the "DDIM" step x' = b(s') z^ + a(s') x^ rather than the Euler step in s; both
    converge to the same ODE solution.

    Args:
        model: The velocity network, called ``model(x, s)`` (``inputs="x_t"``, as
            flow_matching's ``ModelWrapper.forward(x, t)``) with s of shape (B,).
        path: ``"cond_ot"`` (default), ``"trigonometric"``, an :class:`AffinePath`, a
            flow_matching ``Scheduler`` (e.g. ``CondOTScheduler()``, ``CosineScheduler()``)
            or ``AffineProbPath``.
        prediction: ``"velocity"`` (default), ``"data"`` or ``"noise"``.
        inputs: Calling convention (:data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).

    Returns:
        The :class:`AdaptedModel`.
    """
    p = _resolve_path(path)
    transport = flow_transport(p, prediction)
    return AdaptedModel(
        model=AdaptedNetwork(model, inputs=inputs),
        transport=transport,
        mapping=_flow_mapping("flow_matching", p, prediction, inputs),
        native_grid=uniform_grid,
        native_sampler="flow_matching ODESolver(method='euler', time_grid=linspace(0, 1, N + 1))",
    )


def adapt_torchcfm(
    model: Callable[..., Any],
    matcher: Any = None,
    *,
    inputs: InputConvention = "x_t",
) -> AdaptedModel:
    """Adapt a velocity model trained with ``torchcfm`` (data x_1 at s = 1, noise x_0 at s = 0).

    torchcfm has no solver of its own (its examples integrate ``dx/ds = model(s, x)`` with
    torchdyn or torchdiffeq); its Euler method is x_{k+1} = x_k + (s_{k+1} - s_k) v(x_k, s_k)
    on linspace(0, 1, N + 1), which UCGM-S with kappa = rho = 0, order 1 and
    :meth:`AdaptedModel.time_points` reproduces exactly for the CondOT matchers.

    Args:
        model: The velocity network. torchcfm's ``MLP(dim, time_varying=True)`` takes
            ``cat([x, s])``: use ``inputs="concat"``; its ``UNetModelWrapper`` takes
            ``(s, x, y)``: use ``inputs="t_x"``.
        matcher: The torchcfm matcher it was trained with (default:
            ``ConditionalFlowMatcher(sigma=0)``, the CondOT path).
        inputs: Calling convention (:data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).

    Returns:
        The :class:`AdaptedModel`.
    """
    p = AffinePath.cond_ot() if matcher is None else AffinePath.from_torchcfm(matcher)
    label = "torchcfm" if matcher is None else f"torchcfm {type(matcher).__name__}"
    return AdaptedModel(
        model=AdaptedNetwork(model, inputs=inputs),
        transport=flow_transport(p, "velocity"),
        mapping=_flow_mapping(label, p, "velocity", inputs),
        native_grid=uniform_grid,
        native_sampler="Euler in s on linspace(0, 1, N + 1) (torchdiffeq.odeint(method='euler'))",
    )
