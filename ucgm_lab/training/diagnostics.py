"""Few-step (lambda > 0) training diagnostics: signs of collapse before the samples show them.

Few-step UCGM training regresses the network on a target built from its own finite difference
(Alg. 1 lines 8-15). When it goes wrong (too high a learning rate, the authors' issue #2 on
two-stage UCGM-T training), the difference term grows, the clip saturates, and the weights
run away from the multi-step model they started from. :class:`FewStepMonitor` measures, on
a slice of the current batch and without touching the training's random streams:

* ``teacher_gap``: RMS of F_theta(x_t, t) - F_teacher(x_t, t) over the entries, with the
  objective's frozen teacher when it has one, else the weights at the start of the fit (the
  multi-step model a few-step run starts from).
* ``difference_rms``: RMS of Alg. 1's difference term Delta f^x_t before the clip (eq. 6,
  without the enhanced target), and ``clipped_fraction``: the share of its entries with
  |Delta f^x_t| > clip (the entries the clip changes).
* ``ema_drift``: ||theta_EMA - theta_EMA,0|| / ||theta_EMA,0|| over the floating parameters,
  with theta_EMA,0 the EMA's weights at the start of the fit.

The :class:`~ucgm_lab.training.Trainer` logs them at every logging step at lambda > 0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..model_api import call_model, model_dtype, unwrap_model
from ..transports import broadcast_time

__all__ = [
    "FewStepDiagnostics",
    "FewStepMonitor",
    "difference_term",
    "keeps_start_model",
    "progress_postfix",
    "wants_few_step_monitor",
]

MAX_SAMPLES = 256
"""The monitor measures on at most this many samples of the batch."""


@dataclass(frozen=True)
class FewStepDiagnostics:
    """One measurement of :class:`FewStepMonitor` (plain floats).

    Attributes:
        teacher_gap: RMS of F_theta - F_teacher over the entries.
        difference_rms: RMS of Delta f^x_t (before the clip) over the entries.
        clipped_fraction: Share of the entries of Delta f^x_t that the clip changes (0 when the
            objective has no clip).
        ema_drift: Relative L2 distance of the EMA weights from their value at the start.
    """

    teacher_gap: float
    difference_rms: float
    clipped_fraction: float
    ema_drift: float

    def as_logs(self) -> dict[str, float]:
        """The values under the names the Trainer logs (``few_step/...``)."""
        return {
            "few_step/teacher_gap": self.teacher_gap,
            "few_step/difference_rms": self.difference_rms,
            "few_step/clipped_fraction": self.clipped_fraction,
            "few_step/ema_drift": self.ema_drift,
        }


def wants_few_step_monitor(objective: Any) -> bool:
    """Whether the objective is a few-step UCGM objective (lambda > 0)."""
    return getattr(objective, "consistency_ratio", 0) > 0 and hasattr(objective, "transport")


def keeps_start_model(objective: Any) -> bool:
    """Whether :class:`FewStepMonitor` keeps a copy of the starting model for this objective.

    It does unless the objective has a frozen teacher (``uses_frozen_teacher``: the enhanced
    target at lambda > 0), which is then the reference. The memory planner counts the copy.
    """
    return not getattr(objective, "uses_frozen_teacher", False)


def progress_postfix(logs: dict[str, float]) -> dict[str, str]:
    """Short progress-bar entries (gap, diff, clip, drift) for the few-step values in ``logs``."""
    short = {"teacher_gap": "gap", "difference_rms": "diff", "clipped_fraction": "clip"}
    short["ema_drift"] = "drift"
    return {
        label: f"{logs['few_step/' + key]:.3g}"
        for key, label in short.items()
        if "few_step/" + key in logs
    }


def difference_term(
    objective: Any, net: nn.Module, x: Tensor, z: Tensor, t: Tensor, y: Tensor | None
) -> Tensor:
    """Delta f^x_t of eq. (6) / Alg. 1 lines 9-13 for lambda > 0, before the clip.

    Without the enhanced target (x* = x, z* = z), with theta^- = ``net``.

    * 0 < lambda < 1: (f^x(F(x_t), x_t, t) - f^x(F(x_{lt}), x_{lt}, lt)) / (t - lt)
    * lambda = 1: (f^x(F(x_{t+e}), x_{t+e}, t+e) - f^x(F(x_{t-e}), x_{t-e}, t-e)) / (2e)

    Args:
        objective: A UCGM objective with lambda > 0 (its transport, lambda and epsilon).
        net: theta^-, called without gradient in its own dtype.
        x, z: Data and noise, shape (B, ...).
        t: Times, shape (B,).
        y: Optional class ids.

    Returns:
        Shape (B, ...), in x's dtype.
    """
    tr, lam = objective.transport, objective.consistency_ratio
    dtype = model_dtype(net, x.dtype)

    def f_x(s: Tensor) -> Tensor:
        s_b = broadcast_time(s, x)
        x_s = tr.interpolate(x, z, s)
        F = call_model(net, x_s.to(dtype), tr.model_time(s).to(dtype), y).to(x.dtype)
        return tr.predict_x(F, x_s, s_b)

    with torch.no_grad():
        if lam < 1:
            r = lam * t
            return (f_x(t) - f_x(r)) / broadcast_time(t - r, x)
        eps = objective.epsilon
        return (f_x(t + eps) - f_x(t - eps)) / (2 * eps)


class FewStepMonitor:
    """Keeps the starting weights and measures :class:`FewStepDiagnostics` on request.

    Args:
        model: The model being trained; a frozen copy of its weights is the teacher when the
            objective has no frozen teacher of its own.
        ema_model: The trainer's EMA model; its weights now are the reference for ``ema_drift``.
        seed: Seed of the monitor's own generator (the training's random streams are untouched).
        objective: The objective, if known: when it uses a frozen teacher
            (``uses_frozen_teacher``, the enhanced target at lambda > 0), that teacher is the
            reference and no copy of the weights is kept (``start_model`` is None).
    """

    def __init__(
        self, model: nn.Module, ema_model: nn.Module, seed: int = 0, objective: Any = None
    ) -> None:
        self.start_model: nn.Module | None = None
        if keeps_start_model(objective):
            self.start_model = copy.deepcopy(unwrap_model(model)).requires_grad_(False).eval()
        self.start_ema = [
            p.detach().clone() for p in ema_model.parameters() if p.is_floating_point()
        ]
        device = self.start_ema[0].device if self.start_ema else torch.device("cpu")
        self.generator = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def measure(
        self,
        objective: Any,
        model: nn.Module,
        ema_model: nn.Module,
        x: Tensor,
        y: Tensor | None = None,
    ) -> FewStepDiagnostics:
        """Measure on the first :data:`MAX_SAMPLES` samples of the batch (x, y).

        Args:
            objective: The UCGM objective (lambda > 0).
            model: The model being trained (wrappers are stripped).
            ema_model: The trainer's EMA model.
            x: Data batch, shape (B, ...).
            y: Optional class ids, shape (B,).

        Returns:
            :class:`FewStepDiagnostics`.
        """
        net = unwrap_model(model)
        x = x[:MAX_SAMPLES].float() if x.dtype != torch.float64 else x[:MAX_SAMPLES]
        y = None if y is None else y[:MAX_SAMPLES]
        n, gen = x.shape[0], self.generator
        eps = objective.epsilon if objective.consistency_ratio == 1 else None
        t = objective.time_distribution.sample(
            n,
            device=x.device,
            dtype=x.dtype,
            generator=gen,
            t_min=eps,
            t_max=None if eps is None else 1 - eps,
        )
        z = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        tr = objective.transport
        x_t = tr.interpolate(x, z, t)
        teacher = getattr(objective, "frozen_teacher", None) or self.start_model
        if teacher is None:
            raise ValueError(
                "FewStepMonitor: the objective has no frozen teacher yet and the monitor kept no "
                "starting weights; measure after the objective's first call."
            )
        gap = _rms(
            _forward(net, x_t, tr.model_time(t), y) - _forward(teacher, x_t, tr.model_time(t), y)
        )
        diff_net = net
        ema_teacher = getattr(objective, "ema_teacher", None)
        if getattr(objective, "difference_model", "current") == "ema" and ema_teacher is not None:
            diff_net = ema_teacher.model
        delta = difference_term(objective, diff_net, x, z, t, y)
        clip = getattr(objective, "clip", None)
        clipped = float((delta.abs() > clip).float().mean()) if clip is not None else 0.0
        now = [p.detach() for p in ema_model.parameters() if p.is_floating_point()]
        num = sum(
            float((a.double() - b.double()).pow(2).sum())
            for a, b in zip(now, self.start_ema, strict=True)
        )
        den = sum(float(b.double().pow(2).sum()) for b in self.start_ema)
        drift = (num / den) ** 0.5 if den > 0 else float("nan")
        return FewStepDiagnostics(
            teacher_gap=gap,
            difference_rms=_rms(delta),
            clipped_fraction=clipped,
            ema_drift=drift,
        )


def _forward(net: nn.Module, x_t: Tensor, t: Tensor, y: Tensor | None) -> Tensor:
    dtype = model_dtype(net, x_t.dtype)
    return call_model(net, x_t.to(dtype), t.to(dtype), y).to(x_t.dtype)


def _rms(value: Tensor) -> float:
    return float(value.double().pow(2).mean().sqrt())
