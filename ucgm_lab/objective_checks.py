"""UCGM-T's guards: the input checks, the time-sensitivity check, the non-finite report.

:class:`ObjectiveChecks` is a mixin of :class:`~ucgm_lab.objective.UCGMObjective` (its methods
read the objective's settings); :class:`NonFiniteError` is what the objective raises when the
loss is NaN or inf, naming the first non-finite quantity.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from .model_api import Model, unwrap_model
from .schedules import BetaTimeDistribution
from .time_sensitivity import TimeSensitivity, TimeSensitivityMonitor, TimeSensitivityWarning
from .transports import Transport

__all__ = ["NonFiniteError", "ObjectiveChecks"]


class NonFiniteError(FloatingPointError):
    """A NaN or infinite value appeared; the message names where (input, network output, state)."""


class ObjectiveChecks:
    """Checks of :class:`~ucgm_lab.objective.UCGMObjective` (a mixin; no state of its own)."""

    transport: Transport
    consistency_ratio: float
    epsilon: float
    time_distribution: BetaTimeDistribution
    time_monitor: TimeSensitivityMonitor | None
    time_sensitivity: TimeSensitivity | None

    def _check_time_sensitivity(self, model: Model, x: Tensor, y: Tensor | None) -> None:
        """One due measurement of :attr:`time_monitor` (eval mode, no grad, random state kept).

        The monitor counts the call and stops after a warning; the warning is emitted here, with
        the lambda = 0 preamble when this is a multi-step run.
        """
        monitor = self.time_monitor
        assert monitor is not None
        net = unwrap_model(model) if isinstance(model, nn.Module) else model
        modes = [(m, m.training) for m in net.modules()] if isinstance(net, nn.Module) else []
        if modes:
            net.eval()  # no dropout draws, no BatchNorm statistics updated by the check
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TimeSensitivityWarning)
                result = monitor.step(
                    net,
                    x,
                    self.transport,
                    y=y,
                    epsilon=self.epsilon,
                    time_distribution=self.time_distribution,
                )
        finally:
            for module, training in modes:  # each submodule's own mode back
                module.training = training
        if result is None:
            return
        self.time_sensitivity = result
        if result.too_fast:
            message = result.message
            if self.consistency_ratio == 0:
                message = (
                    "This lambda = 0 (multi-step) run is not affected: multi-step training and "
                    "sampling work, so go on if that is all you need. But a few-step (lambda > 0) "
                    "fine-tune from this model would be trained on noise and be poor; restart now "
                    "with the fix below if you plan one. " + message
                )
            warnings.warn(message, TimeSensitivityWarning, stacklevel=3)

    @staticmethod
    def _raise_non_finite(x: Tensor, z: Tensor, t: Tensor, F_t: Tensor, target: Tensor) -> None:
        """Name the first non-finite quantity along the computation (called only on failure)."""
        checks = [
            ("the data x", x, "check the data batch (e.g. torch.isfinite(x).all())"),
            ("the noise", z, "check the noise tensor you passed"),
            ("the times t", t, "check the times you passed"),
            (
                "the network output F_t",
                F_t,
                "the model returned NaN or inf: check its weights "
                "(a diverged run) or lower the learning rate",
            ),
            (
                "the target F_target",
                target,
                "the teacher or the finite-difference forwards returned NaN or inf",
            ),
        ]
        for name, value, hint in checks:
            bad = ~torch.isfinite(value.detach())
            if bool(bad.any()):
                rows = int(bad.reshape(bad.shape[0], -1).any(1).sum()) if bad.ndim else 1
                raise NonFiniteError(
                    f"UCGMObjective: {name} holds NaN or inf values ({rows} of {value.shape[0]} "
                    f"samples); the loss would be NaN. {hint[0].upper() + hint[1:]}."
                )
        raise NonFiniteError(
            "UCGMObjective: the loss is NaN or inf although the inputs, the network output and "
            "the target are finite (an overflow in the distance); lower the data scale."
        )

    def _check_times(
        self, t: Tensor, batch: int, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        if not torch.is_tensor(t) or t.shape != (batch,):
            raise ValueError(
                f"t must be a tensor of shape ({batch},), got "
                f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}."
            )
        t = t.to(device=device, dtype=dtype)
        lo = self.epsilon if self.consistency_ratio == 1 else 0.0
        hi = 1 - self.epsilon if self.consistency_ratio == 1 else 1.0
        if not torch.isfinite(t).all() or (t <= 0).any() or (t < lo).any() or (t > hi).any():
            raise ValueError(
                f"t must lie in ({lo:g}, {hi:g}] for lambda = {self.consistency_ratio:g} "
                "(t = 0 divides by zero in the 1/sin(pi t/2) factor; lambda = 1 needs t +- epsilon "
                f"in [0, 1]); got min {float(t.min()):.6g}, max {float(t.max()):.6g}."
            )
        return t


def _check_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}.")
    return float(value)
