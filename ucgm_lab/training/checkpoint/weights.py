"""Model weights for sharing (the zoo, ``ema.safetensors``): safetensors files with JSON metadata.

:func:`save_weights` stores a sha256 of the tensors and the metadata in the file and
:func:`load_weights` checks it (a file without one is refused unless the caller passes
``allow_unverified=True``; :func:`seal_weights` adds one to a trusted file). A folder's
``checksums.json`` (:mod:`.manifest`) is checked as well.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .files import CHECKPOINT_FORMAT_VERSION, CheckpointError, atomic_write
from .manifest import read_manifest, update_manifest, verify_manifest

__all__ = ["load_weights", "read_zoo_file", "save_weights", "seal_weights"]


def _content_digest(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """sha256 over the metadata JSON and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_weights(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> Path:
    """Atomically save weights as safetensors with JSON metadata (stored under "ucgm_lab").

    The file also stores ``ucgm_lab_sha256``, a digest of the tensors and the metadata that
    :func:`load_weights` verifies.
    """
    meta_json = json.dumps(
        {"format_version": CHECKPOINT_FORMAT_VERSION, **metadata}, sort_keys=True
    )
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"ucgm_lab": meta_json, "ucgm_lab_sha256": _content_digest(flat, meta_json)}
    return atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=meta))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a safetensors file; CheckpointError if unreadable."""
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Could not read weights file {path} ({exc}); the file is corrupt or truncated."
        ) from exc
    return tensors, header


def _read_weights_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """The tensors, the header and the ``ucgm_lab`` metadata string of a weights file.

    Raises:
        CheckpointError: The file is missing, fails its folder's manifest, is unreadable or has
            no ucgm_lab metadata.
    """
    if not path.is_file():
        raise CheckpointError(f"No weights file at {path}: the file does not exist.")
    verify_manifest(path)
    tensors, header = _read_safetensors(path)
    raw = header.get("ucgm_lab")
    if raw is None:
        raise CheckpointError(f"{path} has no ucgm_lab metadata; it was not written by ucgm-lab.")
    return tensors, header, raw


def load_weights(
    path: str | Path, *, allow_unverified: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load weights and metadata written by :func:`save_weights`.

    The file's own content digest (``ucgm_lab_sha256``, over the tensors and the metadata) is
    verified, and a file without one is refused: an edit that also removed the digest would
    otherwise load unnoticed. A ``checksums.json`` beside the file is checked too
    (:func:`verify_manifest`).

    Args:
        path: The ``.safetensors`` file.
        allow_unverified: Load a file that carries no digest (one written by other software,
            or by ucgm-lab before digests existed) without checking it. A digest that is
            present is always checked. :func:`seal_weights` adds the digest to a file you trust.

    Raises:
        CheckpointError: If the file is missing, corrupt, modified (digest mismatch), carries
            no digest (unless ``allow_unverified``) or its metadata is not a JSON object.
    """
    path = Path(path)
    tensors, header, raw = _read_weights_file(path)
    stored = header.get("ucgm_lab_sha256")
    if stored is None and not allow_unverified:
        raise CheckpointError(
            f"{path} carries no content digest (ucgm_lab_sha256), so an edit of its weights or "
            "metadata could not be detected; it is refused. Rebuild it, add the digest to a file "
            "you trust with ucgm_lab.training.checkpoint.seal_weights(path), or pass "
            "allow_unverified=True."
        )
    if stored is not None and stored != _content_digest(tensors, raw):
        raise CheckpointError(
            f"{path} fails its checksum: its weights or metadata were changed after it was "
            "written (corruption or an edit). Rebuild or re-download it."
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path}: its ucgm_lab metadata is not valid JSON ({exc}); the file is corrupt."
        ) from exc
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: its ucgm_lab metadata must be a JSON object, got {type(meta).__name__}."
        )
    return tensors, meta


def seal_weights(path: str | Path) -> Path:
    """Add the content digest to a weights file that has none (atomically, in place).

    The tensors and the ``ucgm_lab`` metadata string are kept byte for byte; only
    ``ucgm_lab_sha256`` is added, so :func:`load_weights` verifies the file from now on. Seal
    only a file you trust: the digest vouches for what the file holds now. A file listed in its
    folder's ``checksums.json`` must still match it (and the manifest entry is updated).

    Raises:
        CheckpointError: The file is missing, unreadable, has no ucgm_lab metadata, or already
            carries a digest that it fails.
    """
    path = Path(path)
    tensors, header, raw = _read_weights_file(path)
    digest = _content_digest(tensors, raw)
    stored = header.get("ucgm_lab_sha256")
    if stored is not None:
        if stored != digest:
            raise CheckpointError(f"{path} fails its checksum; it is not sealed again.")
        return path
    meta = {"ucgm_lab": raw, "ucgm_lab_sha256": digest}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    if read_manifest(path.parent) is not None:
        update_manifest(path)
    return path


def read_zoo_file(
    folder: str | Path, name: str, build_command: str, *, allow_unverified: bool = False
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``<folder>/<name>.safetensors`` of a zoo: (path, tensors, metadata), checksummed.

    Args:
        folder: The checkpoint folder (with its ``checksums.json``, if it has one).
        name: The file stem.
        build_command: The command that builds a missing file (quoted in the error).
        allow_unverified: Passed to :func:`load_weights` (load a file without a digest).

    Raises:
        CheckpointError: The file is missing (the message names the folder and the command),
            corrupt, or not listed in the folder's checksums.
    """
    path = Path(folder) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"The zoo checkpoint {path.name} is missing from the folder {Path(folder).name!r}. "
            f"Build it with `{build_command}`."
        )
    tensors, meta = load_weights(path, allow_unverified=allow_unverified)
    return path, tensors, meta
