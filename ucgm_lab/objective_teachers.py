"""UCGM-T's extra networks: the teachers, theta^- and their no-grad forwards (Alg. 1, App. B.1.4).

:class:`ObjectiveTeachers` is a mixin of :class:`~ucgm_lab.objective.UCGMObjective`: the
warm-up EMA teacher (the unconditional branch of the enhanced target at lambda = 0, or theta^-
with ``difference_model="ema"``), the frozen multi-step teacher (the enhanced target at
lambda > 0), their state for exact resume, and the no-grad forwards that call them.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from .ema import ExponentialMovingAverage
from .model_api import Model, call_model, unwrap_model
from .transports import Transport

__all__ = ["ObjectiveTeachers"]


class ObjectiveTeachers:
    """Teachers of :class:`~ucgm_lab.objective.UCGMObjective` (a mixin; the objective holds the state)."""

    transport: Transport
    consistency_ratio: float
    enhancement_ratio: float
    difference_model: str
    teacher_decay: float
    fp32_no_grad_forwards: bool
    ema_teacher: ExponentialMovingAverage | None
    frozen_teacher: nn.Module | None
    _pending_state: dict[str, Any] | None

    @property
    def uses_ema_teacher(self) -> bool:
        """Whether the objective keeps a warm-up EMA teacher (enhancement at lambda = 0, or theta^- = EMA)."""
        lam0_enhanced = self.consistency_ratio == 0 and self.enhancement_ratio > 0
        return lam0_enhanced or (self.difference_model == "ema" and self.consistency_ratio > 0)

    @property
    def uses_frozen_teacher(self) -> bool:
        """Whether the objective uses a frozen multi-step teacher (enhancement at lambda > 0)."""
        return self.consistency_ratio > 0 and self.enhancement_ratio > 0

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The objective's teacher state (EMA teacher, frozen teacher), for exact resume."""
        state: dict[str, Any] = {}
        if self.ema_teacher is not None:
            state["ema_teacher"] = self.ema_teacher.state_dict()
        if self.frozen_teacher is not None:
            state["frozen_teacher"] = {
                k: v.detach().to("cpu", copy=True)
                for k, v in self.frozen_teacher.state_dict().items()
            }
        if self._pending_state:
            for key, value in self._pending_state.items():
                state.setdefault(key, value)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the teacher state; teachers not built yet are restored at the next call."""
        unknown = set(state) - {"ema_teacher", "frozen_teacher"}
        if unknown:
            raise KeyError(f"Unknown keys in the objective state: {sorted(unknown)}.")
        pending: dict[str, Any] = {}
        state = copy.deepcopy(state)  # never alias the caller's tensors
        if "ema_teacher" in state:
            if self.ema_teacher is not None:
                self.ema_teacher.load_state_dict(state["ema_teacher"])
            else:
                pending["ema_teacher"] = state["ema_teacher"]
        if "frozen_teacher" in state:
            if self.frozen_teacher is not None:
                self.frozen_teacher.load_state_dict(state["frozen_teacher"])
            else:
                pending["frozen_teacher"] = state["frozen_teacher"]
        self._pending_state = pending or None

    def _no_grad_context(self, device: torch.device):
        if self.fp32_no_grad_forwards and torch.is_autocast_enabled(device.type):
            return torch.autocast(device_type=device.type, enabled=False)
        return nullcontext()

    def _forward(
        self, net: Model, x_in: Tensor, t: Tensor, labels: Tensor | None, dtype: torch.dtype
    ) -> Tensor:
        """A no-grad forward at library time t (shape (B,)), result in ``dtype``."""
        with self._no_grad_context(x_in.device):
            in_dtype = torch.float32 if self.fp32_no_grad_forwards else self._model_dtype(net, x_in)
            F = call_model(
                net, x_in.to(in_dtype), self.transport.model_time(t).to(in_dtype), labels
            )
        return F.to(dtype)

    @staticmethod
    def _model_dtype(net: Model, x_in: Tensor) -> torch.dtype:
        if isinstance(net, nn.Module):
            for p in net.parameters():
                if p.is_floating_point():
                    return p.dtype
        return x_in.dtype

    def _ensure_teachers(self, model: Model) -> None:
        pending = self._pending_state or {}
        if self.uses_ema_teacher and self.ema_teacher is None:
            if not isinstance(model, nn.Module):
                raise TypeError("An EMA teacher needs the model to be a torch.nn.Module.")
            self.ema_teacher = ExponentialMovingAverage(model, self.teacher_decay, warmup=True)
            if "ema_teacher" in pending:
                self.ema_teacher.load_state_dict(pending.pop("ema_teacher"))
        if self.uses_frozen_teacher and self.frozen_teacher is None:
            if not isinstance(model, nn.Module):
                raise TypeError("A frozen teacher needs the model to be a torch.nn.Module.")
            self.frozen_teacher = copy.deepcopy(unwrap_model(model)).requires_grad_(False).eval()
            if "frozen_teacher" in pending:
                self.frozen_teacher.load_state_dict(pending.pop("frozen_teacher"))
        self._pending_state = pending or None

    def _difference_net(self, model: Model) -> Model:
        if self.difference_model == "ema":
            assert self.ema_teacher is not None
            return self.ema_teacher.model
        return model
