"""``TimeScaled``: run any ``model(x_t, t, y)`` on a rescaled time, without editing it.

Few-step training (lambda -> 1, Alg. 1 line 13) differentiates the network's data estimate in
t by a central difference with half-width epsilon = 0.005. Networks that feed ``1000 t`` to a
sinusoidal time embedding (DiT's timestep embedder, DDPM-style U-Nets) have features that turn
by up to 1000 x 0.01 = 10 radians across t +- 0.005, so the derivative the objective
regresses on is mostly noise and the few-step model is poor (``benchmarks/time_scale.py``,
docs/architecture.md). ``TimeScaled(network, time_scale=0.03)`` makes the network see
``0.03 t``, i.e. an effective scale of 30, without touching its code.

The factor is a registered buffer, so it is saved in and restored from every ``state_dict``
(checkpoints, EMA copies, the objective's teachers) and the sampler applies it automatically:
the wrapper is the model. Use it from the first (lambda = 0) run on: wrapping a network that was
trained without it changes the function it computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["TimeScaled"]


class TimeScaled(nn.Module):
    """``TimeScaled(network, s)(x_t, t, y) = network(x_t, s * t, y)``.

    Args:
        network: Any UCGM network ``network(x_t, t, y=None) -> F`` (called without ``y`` when
            ``y`` is None), or the ``config`` dict of a library network (rebuilt with
            :func:`~ucgm_lab.networks.build_network`). Attributes the wrapper does not have
            (``num_classes``, ``null_class``, ...) are read from it.
        time_scale: The positive factor s applied to the time before the network sees it. For a
            network that multiplies t in [0, 1] by 1000 inside, s = 0.03 gives it the toy
            recipes' effective scale of 30 (``MLP2D(time_scale=30)``).

    Attributes:
        network: The wrapped network (its parameters are saved under ``network.``).
        time_scale: 0-d float64 buffer holding s; saved in the ``state_dict`` under
            ``time_scale``, so a checkpoint restores the factor it was trained with.

    Raises:
        TypeError: If ``network`` is not callable.
        ValueError: If ``time_scale`` is not a positive finite number.
    """

    kind: ClassVar[str] = "time_scaled"
    time_scale: Tensor

    def __init__(self, network: nn.Module | Mapping[str, Any], time_scale: float) -> None:
        super().__init__()
        if isinstance(network, Mapping):
            from ucgm_lab.networks.registry import build_network

            network = build_network(network)
        if not callable(network):
            raise TypeError(
                f"network must be a callable model(x_t, t, y=None) -> F, got {type(network).__name__}."
            )
        if (
            isinstance(time_scale, bool)
            or not isinstance(time_scale, (int, float))
            or not math.isfinite(time_scale)
            or time_scale <= 0
        ):
            raise ValueError(
                f"time_scale must be a positive finite number (the factor applied to t), got {time_scale!r}."
            )
        self.register_buffer("time_scale", torch.tensor(float(time_scale), dtype=torch.float64))
        self.network = network

    @property
    def config(self) -> dict[str, Any]:
        """The JSON config for :func:`~ucgm_lab.networks.build_network`.

        ``{"kind": "time_scaled", "network": network.config, "time_scale": s}``; only when the
        wrapped network has a ``config`` of its own.
        """
        inner = self._modules["network"]
        if not hasattr(inner, "config"):
            raise AttributeError(
                f"the wrapped {type(inner).__name__} has no config; rebuild it yourself and wrap it"
            )
        return {"kind": self.kind, "network": dict(inner.config), "time_scale": self.factor}

    @property
    def factor(self) -> float:
        """The time factor s as a Python float."""
        return float(self.time_scale)

    def forward(
        self, x_t: Tensor, t: Tensor, y: Tensor | None = None, r: Tensor | None = None
    ) -> Tensor:
        """Evaluate ``network(x_t, s * t, y)``, or ``network(x_t, s * t, y, r=s * r)``.

        Args:
            x_t: Network input, shape (B, ...).
            t: Network time, shape (B,) (the product is formed in t's dtype).
            y: Optional class ids, shape (B,).
            r: Optional second time of a flow map (MeanFlow's u(z_t, r, t)), shape (B,);
                scaled by the same factor, so ``t - r`` is scaled too. Passed on only when
                given, so plain networks are called exactly as before.

        Returns:
            F, shape (B, ...).
        """
        t_scaled = t * self.time_scale.to(device=t.device, dtype=t.dtype)
        if r is not None:
            if not torch.is_tensor(r):
                raise TypeError(
                    f"r must be a tensor of shape (B,) or None, got {type(r).__name__}."
                )
            r_scaled = r * self.time_scale.to(device=r.device, dtype=r.dtype)
            return self.network(x_t, t_scaled, y, r=r_scaled)
        return self.network(x_t, t_scaled) if y is None else self.network(x_t, t_scaled, y)

    def extra_repr(self) -> str:
        """The factor, shown in ``repr(model)``."""
        return f"time_scale={self.factor:g}"

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("network")
            if inner is None or name.startswith("_") or name == "config":
                raise
            return getattr(inner, name)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "time_scale"
        if strict and key not in state_dict:
            error_msgs.append(
                f"the state_dict has no {key!r} entry: it was not saved from a TimeScaled model "
                "(a raw network's weights?). Load it into the raw network, or wrap the network "
                "in TimeScaled before training so that the factor is saved with the weights."
            )
        if key in state_dict:
            _check_loaded_scale(state_dict[key], key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def _check_loaded_scale(value: Any, key: str) -> None:
    """Refuse a stored time factor that is not one positive finite number."""
    ok = torch.is_tensor(value) and value.numel() == 1 and value.is_floating_point()
    number = float(value) if ok else math.nan
    if not ok or not math.isfinite(number) or number <= 0:
        got = (
            f"{number!r}"
            if ok
            else (
                f"a tensor of shape {tuple(value.shape)}"
                if torch.is_tensor(value)
                else type(value).__name__
            )
        )
        raise ValueError(
            f"the state_dict's {key!r} must be one positive finite number (the factor applied to "
            f"t), got {got}: the file is damaged or was not saved from a TimeScaled model."
        )
