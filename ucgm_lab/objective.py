"""UCGM-T: the unified training objective (eqs. 1-6, Alg. 1, App. B.1.1-B.1.4).

For a batch (x, y) the objective draws t ~ Beta(theta1, theta2) and z ~ N(0, I), builds
x_t = alpha z + gamma x, evaluates F_t = F_theta(x_t, t) and regresses it on

    F_target = sg(F_t) - 4 alpha(t) / (D(t) sin(pi t / 2)) * clip(Delta f^x_t, -1, 1)   (Alg. 1 l. 15)

with the weight cos(pi t / 2) (Alg. 1 l. 16; docs/paper-notes.md, E2: the printed sin(t)/cos(t)
mean sin(pi t / 2)/cos(pi t / 2)). Delta f^x_t is the finite difference of the data estimate
f^x along the transport (eq. 6):

* lambda = 0:      (f^x(sg F_t, x*_t, t) - x*) / t                          (Alg. 1 l. 10)
* 0 < lambda < 1:  (f^x(sg F_t, x*_t, t) - f^x(F_theta-(x_{lt}), x*_{lt}, lt)) / (t - lt)
* lambda = 1:      (f^x(F_theta-(x_{t+e}), x*_{t+e}, t+e) - f^x(F_theta-(x_{t-e}), ...)) / 2e   (l. 13)

where x*, z* are the (optionally enhanced) data and noise (Alg. 1 l. 4-7, section 3.1
"Learning enhanced score function") and x*_r = alpha(r) z* + gamma(r) x*.

Departures from the paper and the reference implementation are listed in docs/architecture.md.

This module assembles the loss (:class:`UCGMObjective`: settings, Alg. 1 lines 2-16); the
pieces live in ``objective_terms`` (equation-level functions), ``objective_targets`` (x*, z*,
Delta f^x), ``objective_teachers`` (teachers, no-grad forwards) and ``objective_checks``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .ema import ExponentialMovingAverage
from .model_api import (
    Model,
    call_model,
    check_batch,
    check_labels,
    check_model_takes_labels,
    unwrap_model,
)
from .objective_checks import NonFiniteError as NonFiniteError
from .objective_checks import ObjectiveChecks, _check_number
from .objective_targets import ObjectiveTargets
from .objective_terms import HALF_PI as HALF_PI
from .objective_terms import _target as _target
from .objective_terms import enhance as enhance
from .objective_terms import pseudo_huber_distance as pseudo_huber_distance
from .objective_terms import squared_l2_distance as squared_l2_distance
from .objective_terms import target_from_difference as target_from_difference
from .schedules import BetaTimeDistribution
from .time_sensitivity import DEFAULT_RECHECK_AFTER, TimeSensitivity, TimeSensitivityMonitor
from .transports import Transport, broadcast_time, get_transport

__all__ = [
    "ENHANCEMENT_RATIO_MAX",
    "LAMBDA0_RECHECK_CALL",
    "NonFiniteError",
    "ObjectiveOutput",
    "UCGMObjective",
    "enhance",
    "pseudo_huber_distance",
    "squared_l2_distance",
    "target_from_difference",
]

LAMBDA0_RECHECK_CALL = DEFAULT_RECHECK_AFTER
"""At lambda = 0 the time check runs at the first call and, if that passed, at this call."""

ENHANCEMENT_RATIO_MAX = 4.0
"""Largest enhancement ratio zeta accepted for lambda > 0 (Tab. 6 uses 1.3 to 2.0)."""


@dataclass(frozen=True)
class ObjectiveOutput:
    """Result of one evaluation of the UCGM-T objective.

    Attributes:
        loss: Scalar mean of ``per_sample_loss`` (differentiable).
        per_sample_loss: Shape (B,), weight(t) * distance(F_t, F_target) (differentiable).
        t: Shape (B,), the training times used (library time, data at 0).
        target: Shape (B, ...), F_target (detached).
        clipped_fraction: Scalar tensor, the fraction of Delta f^x entries that the clip changed.
        labels: Shape (B,) class ids after label dropout, or None.
    """

    loss: Tensor
    per_sample_loss: Tensor
    t: Tensor
    target: Tensor
    clipped_fraction: Tensor
    labels: Tensor | None


# ---------------------------------------------------------------------- the objective
class UCGMObjective(ObjectiveTargets, ObjectiveChecks):
    """The UCGM-T objective (Alg. 1) as a callable: ``objective(model, x, y=None) -> ObjectiveOutput``.

    Args:
        transport: A :class:`Transport` or the name of one of Tab. 2.
        consistency_ratio: lambda in [0, 1]: 0 gives multi-step (diffusion / flow matching)
            models, 1 consistency (few-step) models.
        time_distribution: Training times; default Beta(1, 1) clamped to [1e-4, 1].
        epsilon: Half-width of the central difference for lambda = 1 (paper: 0.005). For
            lambda = 1 the training times are also clamped to [epsilon, 1 - epsilon] so that
            t +- epsilon stays in [0, 1].
        clip: Clip Delta f^x to [-clip, clip]; None disables the clip. "auto" (default) is 1
            (the paper's value) for lambda > 0 and None for lambda = 0, as in the reference
            implementation, which regresses on the flow-matching target without a clip at
            lambda = 0: clipping the residual biases the regression away from E[target | x_t]
            (measured on checkerboard: W2 0.139 with the clip against 0.097 without at 100 NFE,
            floor 0.102; docs/architecture.md).
        time_weighting: "cosine" for cos(pi t / 2) (Alg. 1 line 16) or "none".
        loss: "squared_l2" (the paper's, default: it is the loss the paper's gradient analysis
            and our equivalence tests are about) or "pseudo_huber" (the reference's).
        huber_c: Constant c of the pseudo-Huber loss.
        cosine_term: Add the reference's (1 - cosine similarity) term to the pseudo-Huber loss.
        enhancement_ratio: zeta >= 0 of the enhanced target; 0 disables it. For lambda = 0 it
            must be < 1 (the paper's zeta in (0, 1)); for lambda > 0 values up to about 2 are
            used (Tab. 6).
        enhancement_range: (lo, s): times lo <= t <= s get the guidance-like enhancement,
            the others the halfway rule (paper: s = 0.75).
        label_dropout: Fraction of labels replaced by the null class (by a random mask, so any
            batch size works); applied whenever labels are given.
        null_class: The null class id; default ``model.null_class`` or ``model.num_classes``.
        teacher_decay: Target decay of the warm-up EMA teacher used for the unconditional
            branch of the enhanced target at lambda = 0 (reference: 0.999).
        teacher: For lambda > 0 with zeta > 0: the frozen multi-step teacher. Default: a
            frozen copy of the model made at the first call (the starting checkpoint).
        difference_model: theta^- inside the finite differences: "current" (the current
            weights under no_grad, as in the reference) or "ema" (the warm-up EMA teacher).
        fp32_no_grad_forwards: Run the extra no-grad forwards outside autocast, in float32.
        check_finite: After each call, check that the loss is finite (one reduction and a host
            sync) and, if not, raise :class:`NonFiniteError` naming the first non-finite
            quantity (x, the noise, the network output F_t, the target). The
            :class:`~ucgm_lab.training.Trainer` turns it off: its own guard checks the loss.
        check_time_sensitivity: Measure whether the network's output changes too fast in t
            for the few-step central difference at ``epsilon``
            (:func:`~ucgm_lab.time_sensitivity.time_sensitivity`) and emit one
            :class:`~ucgm_lab.time_sensitivity.TimeSensitivityWarning` saying what to do if so.
            At the first call, before any gradient, for every lambda: for lambda = 0 too, so that
            the user learns it before the multi-step run a few-step fine-tune would start from
            is spent: at the first call and, if that one passed, again at call
            :data:`LAMBDA0_RECHECK_CALL` (a network whose output layer starts at zero, like
            :class:`~ucgm_lab.networks.SmallUNet`, shows its time dependence only once it has
            trained); the same second check runs at lambda > 0 when the first passed
            (:class:`~ucgm_lab.time_sensitivity.TimeSensitivityMonitor`, at most one warning). The lambda = 0 warning says that multi-step training and sampling are
            not affected and the run may go on. The measurement is kept in
            :attr:`time_sensitivity`. Each check costs one no-grad forward of up to 1024 points
            in eval mode; the caller's random state and the model's buffers are untouched.

    Loss scale: the loss is not a flow-matching MSE. At lambda = 0 with the linear transport,
    Alg. 1's target is F_target = sg(F) + k(t) (v - sg(F)) with v = z - x the flow-matching
    target and k(t) = 4 t / sin(pi t / 2) (Alg. 1 line 15; D = -1), so the loss of one sample is
    w(t) mean((F - v)^2) with w(t) = cos(pi t / 2) k(t)^2 = 16 t^2 cos(pi t / 2) /
    sin(pi t / 2)^2: 64 / pi^2 = 6.5 at t -> 0, 0 at t = 1, 4.94 averaged over uniform t. A
    network whose flow-matching MSE (torchcfm's loss) is about 1.4 shows about 7 here. The
    gradient is that of the flow-matching MSE weighted by cos(pi t / 2) k(t) = 4 t cot(pi t / 2)
    (8 / pi at t -> 0, 1.77 on average): same optimum, other weights over t.

    Dtypes: the network is called in its parameters' dtype (the model's dtype wins; inputs are
    cast to it), the objective's arithmetic runs in float64 for float64 data and in float32
    otherwise, and ``ObjectiveOutput`` is in that compute dtype.
    """

    def __init__(
        self,
        transport: str | Transport = "linear",
        consistency_ratio: float = 0.0,
        *,
        time_distribution: BetaTimeDistribution | None = None,
        epsilon: float = 0.005,
        clip: float | Literal["auto"] | None = "auto",
        time_weighting: Literal["cosine", "none"] = "cosine",
        loss: Literal["squared_l2", "pseudo_huber"] = "squared_l2",
        huber_c: float = 0.0,
        cosine_term: bool = False,
        enhancement_ratio: float = 0.0,
        enhancement_range: tuple[float, float] = (0.0, 0.75),
        label_dropout: float = 0.1,
        null_class: int | None = None,
        teacher_decay: float = 0.999,
        teacher: nn.Module | None = None,
        difference_model: Literal["current", "ema"] = "current",
        fp32_no_grad_forwards: bool = False,
        check_finite: bool = True,
        check_time_sensitivity: bool = True,
    ) -> None:
        self.transport = get_transport(transport)
        lam = _check_number(consistency_ratio, "consistency_ratio (lambda)")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"consistency_ratio (lambda) must lie in [0, 1], got {lam}.")
        self.consistency_ratio = lam
        self.time_distribution = time_distribution or BetaTimeDistribution()
        if not isinstance(self.time_distribution, BetaTimeDistribution):
            raise TypeError("time_distribution must be a BetaTimeDistribution.")
        self.epsilon = _check_number(epsilon, "epsilon")
        if not 0 < self.epsilon < 0.5:
            raise ValueError(f"epsilon must lie in (0, 0.5), got {epsilon}.")
        if clip == "auto":
            clip = None if lam == 0 else 1.0
        if clip is not None and not _check_number(clip, "clip") > 0:
            raise ValueError(f"clip must be > 0, 'auto' or None, got {clip!r}.")
        self.clip = clip
        if time_weighting not in ("cosine", "none"):
            raise ValueError(f"time_weighting must be 'cosine' or 'none', got {time_weighting!r}.")
        self.time_weighting = time_weighting
        if loss not in ("squared_l2", "pseudo_huber"):
            raise ValueError(f"loss must be 'squared_l2' or 'pseudo_huber', got {loss!r}.")
        self.loss = loss
        if _check_number(huber_c, "huber_c") < 0:
            raise ValueError(f"huber_c must be >= 0, got {huber_c}.")
        self.huber_c = float(huber_c)
        self.cosine_term = bool(cosine_term)
        zeta = _check_number(enhancement_ratio, "enhancement_ratio (zeta)")
        if zeta < 0:
            raise ValueError(f"enhancement_ratio (zeta) must be >= 0, got {zeta}.")
        if lam == 0 and zeta >= 1:
            raise ValueError(
                f"enhancement_ratio (zeta) must lie in [0, 1) for lambda = 0 (section 3.1), got {zeta}; "
                "values above 1 are for few-step training (lambda > 0) with a frozen teacher."
            )
        if lam > 0 and zeta > ENHANCEMENT_RATIO_MAX:
            raise ValueError(
                f"enhancement_ratio (zeta) must lie in [0, {ENHANCEMENT_RATIO_MAX:g}] for lambda > 0 "
                f"(Tab. 6 uses 1.3 to 2.0), got {zeta}."
            )
        self.enhancement_ratio = zeta
        if not isinstance(enhancement_range, (tuple, list)) or len(enhancement_range) != 2:
            raise ValueError(
                f"enhancement_range must be a pair (lo, s), got {enhancement_range!r}."
            )
        lo = _check_number(enhancement_range[0], "enhancement_range[0]")
        hi = _check_number(enhancement_range[1], "enhancement_range[1]")
        if not 0 <= lo < hi <= 1:
            raise ValueError(
                f"enhancement_range must satisfy 0 <= lo < s <= 1, got {enhancement_range}."
            )
        self.enhancement_range = (float(lo), float(hi))
        p = _check_number(label_dropout, "label_dropout")
        if not 0 <= p < 1:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}.")
        self.label_dropout = p
        if null_class is not None and (
            isinstance(null_class, bool) or not isinstance(null_class, int) or null_class < 0
        ):
            raise TypeError(
                f"null_class must be a class id (an integer >= 0) or None, got {null_class!r}."
            )
        self.null_class = null_class
        if not 0 <= _check_number(teacher_decay, "teacher_decay") <= 1:
            raise ValueError(f"teacher_decay must lie in [0, 1], got {teacher_decay}.")
        self.teacher_decay = float(teacher_decay)
        if difference_model not in ("current", "ema"):
            raise ValueError(
                f"difference_model must be 'current' or 'ema', got {difference_model!r}."
            )
        self.difference_model = difference_model
        self.fp32_no_grad_forwards = bool(fp32_no_grad_forwards)
        self.check_finite = bool(check_finite)
        self.ema_teacher: ExponentialMovingAverage | None = None
        self.frozen_teacher: nn.Module | None = None
        if teacher is not None:
            self.frozen_teacher = copy.deepcopy(unwrap_model(teacher)).requires_grad_(False).eval()
        self._pending_state: dict[str, Any] | None = None
        self.time_monitor: TimeSensitivityMonitor | None = (
            TimeSensitivityMonitor(LAMBDA0_RECHECK_CALL) if check_time_sensitivity else None
        )
        """When the time check runs (None when off); its ``results`` hold every measurement."""
        self.time_sensitivity: TimeSensitivity | None = None
        """The latest time-sensitivity measurement (None before the first call, or when off)."""

    # ------------------------------------------------------------------ public API
    def settings(self) -> dict[str, Any]:
        """The settings that define what is trained.

        They are stored in training checkpoints; a resume with other values is refused.
        """
        td = self.time_distribution
        return {
            "transport": self.transport.name,
            "consistency_ratio": self.consistency_ratio,
            "enhancement_ratio": self.enhancement_ratio,
            "enhancement_range": list(self.enhancement_range),
            "clip": self.clip,
            "epsilon": self.epsilon,
            "loss": self.loss,
            "huber_c": self.huber_c,
            "cosine_term": self.cosine_term,
            "time_weighting": self.time_weighting,
            "label_dropout": self.label_dropout,
            "difference_model": self.difference_model,
            "time_distribution": [td.theta1, td.theta2, td.scale, td.t_min, td.t_max],
        }

    def __call__(
        self,
        model: Model,
        x: Tensor,
        y: Tensor | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        update_teachers: bool = True,
    ) -> ObjectiveOutput:
        """Evaluate the objective on one batch (Alg. 1 lines 2-16).

        Args:
            model: ``model(x_t, t, y=None) -> F``; called without y when ``y`` is None.
            x: Data, shape (B, ...). Not modified.
            y: Optional class ids, shape (B,). Not modified (dropout makes a new tensor).
            t: Optional training times, shape (B,), in the valid range (default: sampled).
            noise: Optional z, shape of ``x`` (default: sampled).
            generator: Optional torch generator for every random draw of this call.
            update_teachers: Update the warm-up EMA teacher before using it (the reference's
                order). Gradient accumulation passes False for all micro-batches but the first
                of an optimizer step, so that the teacher advances once per optimizer step, as
                with one batch of the full size.

        Returns:
            :class:`ObjectiveOutput`.
        """
        check_batch(x, "x")
        batch = x.shape[0]
        check_labels(y, batch, "y")
        check_model_takes_labels(model, y)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__} "
                "(e.g. torch.Generator().manual_seed(123), not 123)."
            )
        lam = self.consistency_ratio
        compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        device = x.device
        monitor = self.time_monitor
        if monitor is not None:  # measures at call 0 and once later (if quiet)
            if monitor.due():
                self._check_time_sensitivity(model, x, y)
            else:
                monitor.skip()

        t_lo = self.epsilon if lam == 1 else None
        t_hi = 1 - self.epsilon if lam == 1 else None
        if t is None:
            t = self.time_distribution.sample(
                batch,
                device=device,
                dtype=compute_dtype,
                generator=generator,
                t_min=t_lo,
                t_max=t_hi,
            )
        else:
            t = self._check_times(t, batch, device, compute_dtype)
        if noise is None:
            z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
        else:
            if not torch.is_tensor(noise) or noise.shape != x.shape:
                raise ValueError(
                    f"noise must have the shape of x {tuple(x.shape)}, got "
                    f"{tuple(noise.shape) if torch.is_tensor(noise) else type(noise).__name__}."
                )
            z = noise
        labels, kept = self._drop_labels(model, y, batch, device, generator)
        if self.enhancement_ratio > 0 and y is None:
            raise ValueError(
                "enhancement_ratio > 0 needs class labels: call objective(model, x, y) with y of shape (B,)."
            )

        tr = self.transport
        t_b = broadcast_time(t, x)
        c_t = tr.coefficients(t_b)
        D_t = c_t.D  # once: the finite difference and the target both divide by it
        x_c, z_c = x.to(compute_dtype), z.to(compute_dtype)
        x_t = c_t.alpha * z_c + c_t.gamma * x_c

        net_dtype = self._model_dtype(model, x)
        F_t = call_model(model, x_t.to(net_dtype), tr.model_time(t).to(net_dtype), labels)
        F_sg = F_t.detach().to(compute_dtype)

        with torch.no_grad():
            x_star, z_star = self._enhanced_pair(
                model, x_c, z_c, x_t, F_sg, t, t_b, c_t, labels, kept, update_teachers
            )
            delta_f = self._finite_difference(
                model, x_c, z_c, x_star, z_star, F_sg, t, t_b, c_t, D_t, labels
            )
            if self.clip is not None:
                clipped = delta_f.clamp(-self.clip, self.clip)
                clipped_fraction = (clipped != delta_f).float().mean()
                delta_f = clipped
            else:
                clipped_fraction = torch.zeros((), device=device)
            half_pi_t = HALF_PI * t_b  # (B, 1, ...): sin for the target, cos for the weight
            target = _target(F_sg, delta_f, c_t.alpha, D_t, torch.sin(half_pi_t))

        F_c = F_t.to(compute_dtype)
        if self.loss == "squared_l2":
            dist = squared_l2_distance(F_c, target)
        else:
            dist = pseudo_huber_distance(F_c, target, self.huber_c, self.cosine_term)
        if self.time_weighting == "cosine":
            weight = torch.cos(half_pi_t).reshape(batch)
        else:
            weight = torch.ones_like(t)
        per_sample = weight * dist
        loss = per_sample.mean()
        if self.check_finite and not math.isfinite(loss.item()):  # one read-out, no extra ops
            self._raise_non_finite(x, z, t, F_t, target)
        return ObjectiveOutput(
            loss=loss,
            per_sample_loss=per_sample,
            t=t,
            target=target,
            clipped_fraction=clipped_fraction,
            labels=labels,
        )
