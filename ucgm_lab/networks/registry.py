"""Rebuild a network from its ``config`` dict (e.g. one stored beside a checkpoint)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from ucgm_lab.networks.mlp import MLP2D
from ucgm_lab.networks.time_scale import TimeScaled
from ucgm_lab.networks.tit import TiT
from ucgm_lab.networks.unet import SmallUNet

NETWORK_KINDS: dict[str, type[nn.Module]] = {
    MLP2D.kind: MLP2D,
    SmallUNet.kind: SmallUNet,
    TiT.kind: TiT,
    TimeScaled.kind: TimeScaled,
}


def build_network(config: Mapping[str, Any]) -> nn.Module:
    """Build a network from a config such as ``model.config``.

    ``build_network(model.config)`` followed by ``load_state_dict(model.state_dict())`` gives a
    network that computes exactly what ``model`` computes.

    Args:
        config: Mapping with a ``"kind"`` key (one of :data:`NETWORK_KINDS`: ``"mlp2d"``,
            ``"small_unet"``) and the constructor arguments of that network as the other keys.
            Arguments left out take their defaults.

    Returns:
        A freshly initialised network (in training mode, on the CPU).

    Raises:
        ValueError: If ``"kind"`` is missing or unknown, or if a key is not an argument of the
            chosen network.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping (dict) with a 'kind' key, got {type(config)!r}")
    known = ", ".join(sorted(NETWORK_KINDS))
    if "kind" not in config:
        raise ValueError(f"config has no 'kind' key; known kinds: {known}")
    kind = config["kind"]
    if kind not in NETWORK_KINDS:
        raise ValueError(f"unknown network kind {kind!r}; known kinds: {known}")
    cls = NETWORK_KINDS[kind]
    kwargs = {k: v for k, v in config.items() if k != "kind"}
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"config for kind {kind!r} has unknown keys {unknown}; allowed: {', '.join(allowed)}"
        )
    return cls(**kwargs)
