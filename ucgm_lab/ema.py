"""Exponential moving averages of model weights (EMA), used for teachers and for evaluation.

Two decay rules:

* fixed: w_ema <- d w_ema + (1 - d) w at every update (the trainer's EMA, 0.9999 in Tab. 6);
* warm-up (the reference implementation's teacher for the enhanced target, docs/paper-notes.md R6):
  the decay starts at 0 (the first update copies the weights) and after every update moves
  halfway along (1 - d) towards the target: d <- d + (1 - d) (d_target - d) / 2.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ExponentialMovingAverage", "unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip distributed / compile wrappers (``.module``, ``._orig_mod``) from a model."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


class ExponentialMovingAverage:
    """A frozen copy of a model whose weights track the model's by an exponential average.

    Args:
        model: The model to track (wrappers are stripped). A deep copy is made at once.
        decay: The (target) decay d in [0, 1].
        warmup: If True, use the reference implementation's warm-up rule (see module doc).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = False) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1], got {decay}.")
        self.target_decay = float(decay)
        self.warmup = bool(warmup)
        self.current_decay = 0.0 if warmup else float(decay)
        self.num_updates = 0
        self.model = copy.deepcopy(unwrap_model(model)).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the averaged weights towards ``model``'s (buffers are copied)."""
        source = unwrap_model(model)
        d = self.current_decay
        ema_params = dict(self.model.named_parameters())
        for name, param in source.named_parameters():
            if name not in ema_params:
                raise KeyError(f"EMA: parameter {name!r} of the model is missing in the EMA copy.")
            ema_params[name].lerp_(param.detach().to(ema_params[name].dtype), 1.0 - d)
        ema_buffers = dict(self.model.named_buffers())
        for name, buf in source.named_buffers():
            if name in ema_buffers:
                ema_buffers[name].copy_(buf)
        self.num_updates += 1
        if self.warmup:
            self.current_decay = d + (1 - d) * (self.target_decay - d) * 0.5

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: averaged weights (copies), current decay and update count."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "current_decay": self.current_decay,
            "target_decay": self.target_decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.current_decay = float(state["current_decay"])
        self.target_decay = float(state["target_decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
