"""Checksum manifests: a folder's ``checksums.json`` of whole-file sha256 sums (the zoo ships one)."""

from __future__ import annotations

import json
from pathlib import Path

from .files import CheckpointError, atomic_write, file_sha256

__all__ = ["MANIFEST_NAME", "read_manifest", "update_manifest", "verify_manifest"]

MANIFEST_NAME = "checksums.json"


def read_manifest(folder: Path) -> dict[str, str] | None:
    """The ``checksums.json`` of ``folder`` as {file name: sha256}, or None if it has none.

    Raises:
        CheckpointError: The manifest is not valid JSON or not a map of names to strings.
    """
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{manifest} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise CheckpointError(f"{manifest} must map file names to sha256 strings.")
    return data


def verify_manifest(path: str | Path) -> None:
    """Check ``path`` against the ``checksums.json`` of its folder, if the folder has one.

    Raises:
        CheckpointError: The file is not listed, or its sha256 differs from the listed one.
    """
    path = Path(path)
    manifest = read_manifest(path.parent)
    if manifest is None:
        return
    if path.name not in manifest:
        raise CheckpointError(
            f"{path.name} is not listed in {path.parent / MANIFEST_NAME}; a file added by hand "
            "to a checksummed folder is refused. Build it with the folder's build command."
        )
    if file_sha256(path) != manifest[path.name]:
        raise CheckpointError(
            f"{path} does not match its checksum in {MANIFEST_NAME}: the file was corrupted or "
            "modified. Rebuild it, or restore it (e.g. `git checkout` in a source checkout)."
        )


def update_manifest(path: str | Path) -> Path:
    """Record the sha256 of ``path`` in the ``checksums.json`` of its folder (created if needed)."""
    path = Path(path)
    manifest = read_manifest(path.parent) or {}
    manifest[path.name] = file_sha256(path)
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    return atomic_write(path.parent / MANIFEST_NAME, lambda tmp: Path(tmp).write_text(text))
