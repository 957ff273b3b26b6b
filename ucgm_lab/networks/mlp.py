"""``MLP2D``: a small residual MLP for 2-D (or any flat-vector) data.

The input ``x_t`` of shape ``(B, dim)`` is concatenated with the sinusoidal embedding of
``t`` (and, for a class-conditional model, a learned class embedding), projected to
``hidden`` units, passed through ``depth`` pre-activation residual blocks
``h <- h + Linear(act(h))`` and projected back to ``dim``.

With ``flow_map=True`` the network takes a second time ``r`` and becomes a flow map
``u(z_t, r, t)`` (MeanFlow, :mod:`ucgm_lab.flow_maps`): the sinusoidal embedding of ``t - r``
(MeanFlow's conditioning ablation, Tab. 1, finds (t, t - r) best) is appended after the other inputs.
With the default ``flow_map=False`` nothing changes: same parameters, same outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ucgm_lab.networks._validation import check_time, flow_map_interval, resolve_labels
from ucgm_lab.networks.activations import activation_name, make_activation
from ucgm_lab.networks.embeddings import ClassEmbedding, SinusoidalTimeEmbedding


def _check_positive_int(name: str, value: object, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class _ResidualLinear(nn.Module):
    """Pre-activation residual block ``h + Linear(act(h))`` of width ``width``."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.act = make_activation(activation)
        self.linear = nn.Linear(width, width)

    def forward(self, h: Tensor) -> Tensor:
        """Apply the block to ``h`` of shape ``(B, width)``."""
        return h + self.linear(self.act(h))


class MLP2D(nn.Module):
    """Residual MLP ``F(x_t, t, y)`` for flat vectors (2-D toy data by default).

    Args:
        dim: Data dimension ``D``; inputs and outputs have shape ``(B, D)``.
        hidden: Width of the hidden layers.
        depth: Number of residual blocks (each holds one ``hidden x hidden`` linear layer).
        time_embed_dim: Size of the sinusoidal time embedding (positive, even).
        num_classes: ``None`` for an unconditional model, or the number of real classes
            ``K``; the model then also accepts the null class id ``K`` (see :attr:`null_class`),
            and a learned class embedding of size ``time_embed_dim`` joins the input.
        activation: Activation, by name (``"silu"``, ``"relu"``, ``"gelu"``, ...) or as the
            ``torch.nn`` class (``nn.SiLU``, ...).
        time_scale: ``t`` in ``[0, 1]`` is multiplied by this inside the embedding (1000 maps
            it onto DDPM's step range). Few-step (lambda > 0) training differentiates the network
            in t with steps of 0.005, so a smaller scale (the toy recipes use 30) keeps the
            fastest sinusoid smooth at that resolution.
        flow_map: Also take a second time ``r`` (``forward(x_t, t, y, r=r)``) and embed
            ``t - r`` with the same sinusoidal embedding; ``in_proj`` grows by
            ``time_embed_dim`` inputs. ``r=None`` then means ``r = t`` (the instantaneous
            velocity, MeanFlow's u(z, t, t) = v(z, t)).

    Attributes:
        num_classes: As given (``None`` when unconditional).
        null_class: ``num_classes`` for a conditional model, else ``None``.
        kind: ``"mlp2d"``, the key of this class for :func:`ucgm_lab.networks.build_network`.
    """

    kind: ClassVar[str] = "mlp2d"

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 256,
        depth: int = 4,
        time_embed_dim: int = 64,
        num_classes: int | None = None,
        activation: str | type[nn.Module] = nn.SiLU,
        time_scale: float = 1000.0,
        flow_map: bool = False,
    ) -> None:
        super().__init__()
        _check_positive_int("dim", dim)
        _check_positive_int("hidden", hidden)
        _check_positive_int("depth", depth, minimum=0)
        if num_classes is not None:
            _check_positive_int("num_classes", num_classes)
        self.dim = dim
        self.hidden = hidden
        self.depth = depth
        self.time_embed_dim = time_embed_dim
        self.num_classes = num_classes
        self.null_class = num_classes
        self.activation = activation_name(activation)
        if not (isinstance(time_scale, (int, float)) and time_scale > 0):
            raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
        self.time_scale = float(time_scale)
        if not isinstance(flow_map, bool):
            raise TypeError(f"flow_map must be True or False, got {flow_map!r}")
        self.flow_map = flow_map

        self.time_embed = SinusoidalTimeEmbedding(time_embed_dim, scale=self.time_scale)
        self.class_embed = (
            ClassEmbedding(num_classes, time_embed_dim) if num_classes is not None else None
        )
        in_features = dim + time_embed_dim * (1 if num_classes is None else 2)
        if flow_map:
            in_features += time_embed_dim
        self.in_proj = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList(_ResidualLinear(hidden, self.activation) for _ in range(depth))
        self.out_act = make_activation(self.activation)
        self.out_proj = nn.Linear(hidden, dim)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments plus ``"kind"``, for :func:`build_network`.

        ``"flow_map"`` appears only when True, so configs of plain networks are unchanged.
        """
        config = {
            "kind": self.kind,
            "dim": self.dim,
            "hidden": self.hidden,
            "depth": self.depth,
            "time_embed_dim": self.time_embed_dim,
            "num_classes": self.num_classes,
            "activation": self.activation,
            "time_scale": self.time_scale,
        }
        if self.flow_map:
            config["flow_map"] = True
        return config

    def forward(
        self, x_t: Tensor, t: Tensor, y: Tensor | None = None, r: Tensor | None = None
    ) -> Tensor:
        """Evaluate the network.

        Args:
            x_t: Inputs, shape ``(B, dim)``.
            t: Times, shape ``(B,)``, floating point in ``[0, 1]``.
            y: ``None`` or int64 class ids ``(B,)`` in ``[0, num_classes]``. Must be ``None``
                for an unconditional model; ``None`` means the null class for a conditional one.
            r: Only for ``flow_map=True``: the second time, shape ``(B,)``, floating point
                (``r <= t`` in MeanFlow); ``None`` means ``r = t``.

        Returns:
            Output ``F`` of shape ``(B, dim)``.

        Raises:
            ValueError: If ``x_t`` is not ``(B, dim)``, or ``t`` / ``y`` break the convention
                (see :mod:`ucgm_lab.networks._validation`).
            TypeError: If ``t`` is not floating point or ``y`` is not an integer tensor.
            ValueError: If ``r`` is given to a network built without ``flow_map=True``.
        """
        if x_t.ndim != 2 or x_t.shape[1] != self.dim:
            raise ValueError(
                f"MLP2D(dim={self.dim}) expects x_t of shape (B, {self.dim}), "
                f"got {tuple(x_t.shape)}"
            )
        batch = x_t.shape[0]
        check_time(t, batch)
        labels = resolve_labels(y, batch, self.num_classes, x_t.device)
        parts = [x_t, self.time_embed(t).to(x_t.dtype)]
        if self.class_embed is not None:
            parts.append(self.class_embed(labels).to(x_t.dtype))
        interval = flow_map_interval("MLP2D", self.flow_map, t, r, batch)
        if interval is not None:
            parts.append(self.time_embed(interval).to(x_t.dtype))
        h = self.in_proj(torch.cat(parts, dim=1))
        for block in self.blocks:
            h = block(h)
        return self.out_proj(self.out_act(h))
