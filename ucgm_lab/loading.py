"""Load a training checkpoint for sampling in one call: the EMA model, its transport, its time scale.

A :class:`~ucgm_lab.training.Trainer` checkpoint holds the raw and the EMA weights, the
objective's settings (the transport's name, lambda) and, for the library's networks, the
network's ``config``. :func:`load_for_sampling` rebuilds the network (or fills the one you
pass), loads the EMA weights, and returns them with the transport they were trained with::

    loaded = ucgm_lab.load_for_sampling("runs/lam1/last.pt", MyNet())
    samples = loaded.sample(torch.randn(1000, 2), steps=2, rho=1.0).sample

Nothing in the file runs code (:func:`~ucgm_lab.training.load_checkpoint` loads tensors and
plain values only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .sampler import SampleOutput, sample
from .transports import Transport, get_transport

__all__ = ["SamplingModel", "load_for_sampling"]


@dataclass(frozen=True)
class SamplingModel:
    """A trained model ready to sample, from :func:`load_for_sampling`.

    Attributes:
        model: The network with the checkpoint's EMA (or raw) weights, eval mode, no gradients.
        transport: The transport it was trained with.
        time_scale: The :class:`~ucgm_lab.networks.TimeScaled` factor the network runs with
            (1.0 when it is not wrapped); already applied inside ``model``.
        consistency_ratio: lambda of the run (1: a few-step model, sample it with ``rho=1.0``
            at 1 to 4 steps; 0: a multi-step model); None when the checkpoint does not say.
        step: The training step of the checkpoint.
        path: The file loaded.
    """

    model: nn.Module
    transport: Transport
    time_scale: float
    consistency_ratio: float | None
    step: int
    path: Path

    def sample(self, noise: Tensor, steps: int | None = None, **kwargs: Any) -> SampleOutput:
        """:func:`ucgm_lab.sample` with this model and transport (``noise``: shape (n, ...)).

        ``kwargs`` may be a search's ``settings.as_kwargs()`` (which holds ``steps``).
        """
        if steps is not None:
            kwargs["steps"] = steps
        return sample(self.model, noise, self.transport, **kwargs)


def load_for_sampling(
    path: str | Path,
    network: nn.Module | None = None,
    *,
    weights: Literal["ema", "model"] = "ema",
    transport: str | Transport | None = None,
    device: str | torch.device = "cpu",
) -> SamplingModel:
    """Load a Trainer checkpoint for sampling: the EMA model, its transport and its time scale.

    Args:
        path: A checkpoint written by :meth:`~ucgm_lab.training.Trainer.save` (or its folder,
            which then holds ``last.pt``).
        network: A fresh instance of the trained network, needed for a network of your own (a
            checkpoint of a library network stores its ``config`` and is rebuilt without it).
            If the run trained it wrapped in :class:`~ucgm_lab.networks.TimeScaled`, pass it
            wrapped or not: an unwrapped one is wrapped with the saved factor. Not modified (a
            copy is loaded).
        weights: "ema" (default, the averaged weights to sample with) or "model" (the raw ones).
        transport: Override the transport (default: the one named in the checkpoint).
        device: Where to put the model.

    Returns:
        :class:`SamplingModel`.

    Raises:
        CheckpointError: Missing, corrupt or unsafe file.
        ValueError: No network given for a checkpoint without ``config``; weights of another
            architecture (the message says how to build the right one); an unknown transport.
    """
    from .networks import TimeScaled, build_network
    from .training.checkpoint import load_checkpoint
    from .training.trainer_checkpoints import _check_tensors, _inner_names

    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}.")
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    state = load_checkpoint(path)
    if "ema" not in state or "model" not in state:
        raise ValueError(
            f"{path} is not a Trainer checkpoint (no 'model' and 'ema' entries); for weights "
            "saved with save_weights use ucgm_lab.training.load_weights."
        )
    tensors = state["ema"]["model"] if weights == "ema" else state["model"]
    config = state.get("model_config")
    if network is None:
        if config is None:
            raise ValueError(
                f"{path} stores no model_config (a network of your own): pass a fresh instance "
                "of it, load_for_sampling(path, MyNetwork(...))."
            )
        net = build_network(config)
    else:
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        net = copy.deepcopy(network)
        if "time_scale" in tensors and not isinstance(net, TimeScaled):
            if _inner_names(tensors) == set(net.state_dict()):
                net = TimeScaled(net, float(tensors["time_scale"]))
    _check_tensors(path, "model", tensors, net.state_dict(), config)
    net.load_state_dict(tensors)
    net = net.to(device).eval().requires_grad_(False)
    settings = state.get("objective_settings") or {}
    if transport is None:
        name = settings.get("transport")
        if name is None:
            raise ValueError(
                f"{path} does not name its transport: pass transport='linear' (or the one used)."
            )
        try:
            transport = get_transport(name)
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"{path} was trained with the transport {name!r}, which is not one of Tab. 2: "
                f"pass it, load_for_sampling(path, ..., transport=my_transport). ({error})"
            ) from None
    else:
        transport = get_transport(transport)
    lam = settings.get("consistency_ratio")
    factor = net.factor if isinstance(net, TimeScaled) else 1.0
    return SamplingModel(
        model=net,
        transport=transport,
        time_scale=float(factor),
        consistency_ratio=None if lam is None else float(lam),
        step=int(state.get("step", 0)),
        path=path,
    )
