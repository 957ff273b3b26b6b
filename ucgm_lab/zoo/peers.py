"""Peer models in the zoo: 2D velocity models trained with torchcfm and with flow_matching.

Notebook 20 and ``benchmarks/peer_samplers.py`` compare UCGM-S with the peers' own solvers on
one checkerboard model per peer library, each trained with that library's recipe
(:func:`ucgm_lab.peers.train_peer`, 4000 steps). Training both takes minutes on a
2-core CPU, so the weights are stored here like the rest of the toy zoo: a safetensors file of
the network's weights with JSON metadata (the library and its version, the training
configuration, the training time and the final loss).

Build (reproducible from the seed in the configuration, for a given number of CPU threads;
about a minute per model on 2 CPU cores)::

    python -m ucgm_lab.zoo build-peers                   # both
    python -m ucgm_lab.zoo build-peers --only torchcfm

Load (needs the peer library installed: the ``notebooks`` extra)::

    from ucgm_lab.zoo.peers import load_peer
    zp = load_peer("torchcfm")
    zp.peer.adapted.sample(noise, steps=16, kappa=0.25)    # UCGM-S through the adapter
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..adapters.base import check_choice
from ..peers.training import PEER_LIBRARIES, PeerModel, TrainConfig, train_peer
from ..training.checkpoint import CheckpointError, read_zoo_file, save_weights, update_manifest
from . import ZOO_DIR

__all__ = [
    "PEER_ZOO_CONFIG",
    "PeerZooModel",
    "available_peers",
    "build_peers",
    "load_peer",
    "peer_zoo_name",
]

PEER_ZOO_CONFIG = TrainConfig(
    dataset="checkerboard", steps=4000, batch_size=512, lr=2e-3, hidden=128, seed=0
)
"""The training configuration of both peer zoo models (the defaults of the peer benchmark)."""

_DISTRIBUTIONS = {"torchcfm": "torchcfm", "flow_matching": "flow-matching"}


@dataclass
class PeerZooModel:
    """A loaded peer zoo model.

    Attributes:
        name: Zoo name (``peer-<library>-<dataset>``).
        peer: The model with its UCGM adapter (``peer.adapted``); ``peer.losses`` is empty and
            ``peer.seconds`` is the loading time (the training record is in ``metadata``).
        metadata: Everything stored with the weights: ``library``, ``library_version``,
            ``config`` (the :class:`~ucgm_lab.peers.TrainConfig` fields),
            ``train_seconds``, ``final_loss`` (mean of the last 100 steps), ``description``.
    """

    name: str
    peer: PeerModel
    metadata: dict[str, Any]

    @property
    def config(self) -> TrainConfig:
        """The training configuration stored with the weights."""
        return TrainConfig(**self.metadata["config"])


def peer_zoo_name(library: str, dataset: str = PEER_ZOO_CONFIG.dataset) -> str:
    """The zoo name (file stem) of a peer model, e.g. ``peer-torchcfm-checkerboard``."""
    check_choice(library, PEER_LIBRARIES, "peer library")
    return f"peer-{library}-{dataset}"


def available_peers(directory: str | Path = ZOO_DIR) -> list[str]:
    """The peer libraries whose zoo checkpoint exists in ``directory``."""
    return [
        lib
        for lib in PEER_LIBRARIES
        if (Path(directory) / f"{peer_zoo_name(lib)}.safetensors").is_file()
    ]


def load_peer(library: str, directory: str | Path = ZOO_DIR) -> PeerZooModel:
    """Load the peer zoo model of ``library`` ("torchcfm" or "flow_matching").

    Raises:
        ValueError: Unknown library (the message lists the known ones).
        CheckpointError: The checkpoint is missing (the message says how to build it) or corrupt.
        ImportError: The peer library is not installed (its network class comes from it).
    """
    name = peer_zoo_name(library)
    path, tensors, meta = read_zoo_file(
        directory, name, f"python -m ucgm_lab.zoo build-peers --only {library}"
    )
    if meta.get("library") != library:
        raise CheckpointError(
            f"{path.name} holds a {meta.get('library')!r} model, not a {library!r} one."
        )
    peer = train_peer(library, TrainConfig(**meta["config"]), state_dict=tensors)
    return PeerZooModel(name=name, peer=peer, metadata=meta)


def _library_version(library: str) -> str | None:
    try:
        return version(_DISTRIBUTIONS[library])
    except PackageNotFoundError:
        return None


def build_peers(
    only: list[str] | None = None,
    directory: str | Path = ZOO_DIR,
    steps_scale: float = 1.0,
) -> list[Path]:
    """Train the peer zoo models with their libraries' recipes and save them.

    Args:
        only: Libraries to build (default: all of :data:`~ucgm_lab.peers.PEER_LIBRARIES`).
        directory: Where to write.
        steps_scale: Multiply the training steps (e.g. 0.01 for a smoke test).

    Returns:
        Paths written.
    """
    libraries = list(only) if only else list(PEER_LIBRARIES)
    for library in libraries:
        check_choice(library, PEER_LIBRARIES, "peer library")
    written = []
    for library in libraries:
        config = TrainConfig(
            **{**asdict(PEER_ZOO_CONFIG), "steps": max(1, int(PEER_ZOO_CONFIG.steps * steps_scale))}
        )
        start = time.perf_counter()
        peer = train_peer(library, config)
        tail = peer.losses[-100:]
        meta = {
            "name": peer_zoo_name(library),
            "library": library,
            "library_version": _library_version(library),
            "config": asdict(config),
            "train_seconds": round(time.perf_counter() - start, 1),
            "final_loss": sum(tail) / len(tail),
            "description": f"checkerboard velocity model trained with {library}'s own recipe (data at s = 1)",
        }
        path = save_weights(
            Path(directory) / f"{peer_zoo_name(library)}.safetensors", peer.state_dict(), meta
        )
        update_manifest(path)  # the zoo folder is checksummed: load_weights verifies the manifest
        written.append(path)
    return written
