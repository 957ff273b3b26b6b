"""Exponential moving averages of model weights (EMA), used for teachers and for evaluation.

Three decay rules:

* fixed: w_ema <- d w_ema + (1 - d) w at every update (0.9999 in Tab. 6);
* ramp (the trainer's default, ``ramp=True``): the decay of update k (k = 0, 1, ...) is
  min(d, (1 + k) / (10 + k)), the rule of TensorFlow's ``ExponentialMovingAverage`` with
  ``num_updates`` and of diffusers' ``EMAModel``. The first update keeps 10% of the starting
  weights, and after k updates their share is prod_j d_j <= 9! k! / (k + 9)! (below 1e-9 at
  k = 1000), so a run started from another model's weights (a lambda = 1 fine-tune from a
  lambda = 0 checkpoint) does not carry the parent in its EMA: with a fixed d = 0.999, 0.999^1500
  = 22% of the EMA is still the parent after 1500 steps. The averaging window grows with the run
  (about k / 9 updates) up to 1 / (1 - d) (``benchmarks/ema_few_step.py``, docs/benchmarks.md);
* warm-up (the reference implementation's teacher for the enhanced target, docs/paper-notes.md R6):
  the decay starts at 0 (the first update copies the weights) and after every update moves
  halfway along (1 - d) towards the target: d <- d + (1 - d) (d_target - d) / 2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .model_api import unwrap_model as _unwrap

__all__ = ["ExponentialMovingAverage"]


def __getattr__(name: str) -> object:
    """``ucgm_lab.ema.unwrap_model``: deprecated, now :func:`ucgm_lab.model_api.unwrap_model`."""
    if name == "unwrap_model":
        import warnings

        from .model_api import unwrap_model

        warnings.warn(
            "ucgm_lab.ema.unwrap_model moved to ucgm_lab.model_api.unwrap_model; the old path "
            "will be removed.",
            DeprecationWarning,
            stacklevel=2,
        )
        return unwrap_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class _Pairs:
    """The EMA's tensors paired with a model's, in one order (for the multi-tensor update)."""

    owner: nn.Module
    tensors: list[Tensor | None]
    params_ema: list[Tensor]
    params_src: list[Tensor]
    buffers_ema: list[Tensor]
    buffers_src: list[Tensor]


class ExponentialMovingAverage:
    """A frozen copy of a model whose weights track the model's by an exponential average.

    Args:
        model: The model to track (wrappers are stripped). A deep copy is made at once.
        decay: The (target) decay d in [0, 1].
        warmup: If True, use the reference implementation's warm-up rule (see module doc).
        ramp: If True, the decay of update k is min(decay, (1 + k) / (10 + k)) (module doc).

    Raises:
        ValueError: A decay outside [0, 1], or both ``warmup`` and ``ramp``.
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, warmup: bool = False, ramp: bool = False
    ) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1], got {decay}.")
        if warmup and ramp:
            raise ValueError("Choose one EMA decay rule: warmup=True or ramp=True, not both.")
        self.target_decay = float(decay)
        self.warmup = bool(warmup)
        self.ramp = bool(ramp)
        self.num_updates = 0
        self.current_decay = 0.0 if warmup else self._ramped(float(decay))
        self.model = copy.deepcopy(_unwrap(model)).requires_grad_(False).eval()
        self._cache: _Pairs | None = None

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the averaged weights towards ``model``'s (buffers are copied).

        One multi-tensor ``torch._foreach_lerp_`` over all parameters (and one
        ``torch._foreach_copy_`` over the buffers) instead of one kernel per tensor. The pairing of
        EMA and model tensors is made by name once and reused while the model's parameter and
        buffer objects stay the same; it is rebuilt when they change.
        """
        source = _unwrap(model)
        d = self.current_decay
        pairs = self._pairs(source)
        if pairs.params_ema:
            src = pairs.params_src
            if any(p.dtype != e.dtype for p, e in zip(src, pairs.params_ema, strict=True)):
                src = [p.to(e.dtype) for p, e in zip(src, pairs.params_ema, strict=True)]
            torch._foreach_lerp_(pairs.params_ema, src, 1.0 - d)
        if pairs.buffers_ema:
            torch._foreach_copy_(pairs.buffers_ema, pairs.buffers_src)
        self.num_updates += 1
        if self.warmup:
            self.current_decay = d + (1 - d) * (self.target_decay - d) * 0.5
        elif self.ramp:
            self.current_decay = self._ramped(self.target_decay)

    def _ramped(self, decay: float) -> float:
        """The decay of the next update: ``decay``, or with ``ramp`` min(decay, (1+k)/(10+k))."""
        if not self.ramp:
            return decay
        k = self.num_updates
        return min(decay, (1.0 + k) / (10.0 + k))

    def restart(self) -> None:
        """Count updates from 0 again (a new run from the current weights: the ramp restarts)."""
        self.num_updates = 0
        if self.warmup:
            self.current_decay = 0.0
        else:
            self.current_decay = self._ramped(self.target_decay)

    def _pairs(self, source: nn.Module) -> _Pairs:
        """The (EMA, model) tensor lists for ``source``, cached while its tensors stay the same."""
        # One walk over the modules collects every parameter and buffer slot (None included):
        # the same objects in the same order mean the pairing still holds.
        tensors = [
            t
            for m in source.modules()
            for slots in (m._parameters, m._buffers)
            for t in slots.values()
        ]
        cached = self._cache
        if (
            cached is not None
            and cached.owner is source
            and len(tensors) == len(cached.tensors)
            and all(a is b for a, b in zip(tensors, cached.tensors, strict=True))
        ):
            return cached
        ema_params = dict(self.model.named_parameters())
        params_ema, params_src = [], []
        for name, param in source.named_parameters():
            if name not in ema_params:
                raise KeyError(f"EMA: parameter {name!r} of the model is missing in the EMA copy.")
            params_ema.append(ema_params[name])
            params_src.append(param.detach())
        ema_buffers = dict(self.model.named_buffers())
        buffers_ema, buffers_src = [], []
        for name, buf in source.named_buffers():
            if name in ema_buffers:
                buffers_ema.append(ema_buffers[name])
                buffers_src.append(buf.detach())
        self._cache = _Pairs(source, tensors, params_ema, params_src, buffers_ema, buffers_src)
        return self._cache

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: averaged weights (copies), current decay and update count."""
        return {
            # host copies: a checkpoint never holds a second device copy of the averaged weights
            "model": {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            },
            "current_decay": self.current_decay,
            "target_decay": self.target_decay,
            "warmup": self.warmup,
            "ramp": self.ramp,
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (states saved before the ramp existed: no ramp)."""
        self.model.load_state_dict(state["model"])
        self.current_decay = float(state["current_decay"])
        self.target_decay = float(state["target_decay"])
        self.warmup = bool(state["warmup"])
        self.ramp = bool(state.get("ramp", False))
        self.num_updates = int(state["num_updates"])
