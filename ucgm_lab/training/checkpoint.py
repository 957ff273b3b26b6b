"""Checkpoints: atomic writes, a format version, clear errors for missing or corrupt files.

A training checkpoint is one ``torch.save`` file holding everything needed to resume exactly
(model, EMA, optimizer, the objective's teacher state, RNG states, step, data position,
loss history). Model weights for sharing (the zoo) are written as safetensors with JSON
metadata. Every write goes to a temporary file in the same folder, is flushed to disk and then
renamed over the target, so a crash never leaves a half-written file under the real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]

CHECKPOINT_FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or of an unknown format."""


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` then fsync and rename onto ``path``.

    Args:
        path: Destination.
        write: Writes the whole file to the path it is given.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically save a training state dict with the format version added."""
    payload = {"format_version": CHECKPOINT_FORMAT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: If the file is missing, unreadable, or not a ucgm-lab checkpoint of a
            known format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: the file does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means a corrupt file
        raise CheckpointError(
            f"Could not read checkpoint {path} ({type(exc).__name__}: {exc}). The file is corrupt or "
            "truncated; use an earlier checkpoint."
        ) from exc
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a ucgm-lab training checkpoint (no format_version).")
    if state["format_version"] != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format_version']}; this version of ucgm-lab reads "
            f"format {CHECKPOINT_FORMAT_VERSION}."
        )
    return state


def save_weights(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> Path:
    """Atomically save weights as safetensors with JSON metadata (stored under "ucgm_lab")."""
    meta = {
        "ucgm_lab": json.dumps(
            {"format_version": CHECKPOINT_FORMAT_VERSION, **metadata}, sort_keys=True
        )
    }
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=meta))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load weights and metadata written by :func:`save_weights`.

    Raises:
        CheckpointError: If the file is missing or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No weights file at {path}: the file does not exist.")
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            raw = (fh.metadata() or {}).get("ucgm_lab")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Could not read weights file {path} ({exc}); the file is corrupt or truncated."
        ) from exc
    if raw is None:
        raise CheckpointError(f"{path} has no ucgm_lab metadata; it was not written by ucgm-lab.")
    return tensors, json.loads(raw)
