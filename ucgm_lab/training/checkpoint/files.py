"""Checkpoint files on disk: atomic writes, writable folders, orphan temporaries, file digests.

Every write goes to a temporary file ``.NAME.XXXX.tmp`` in the same folder, is flushed to
disk and then renamed over the target, so a crash never leaves a half-written file under the
real name; :func:`remove_orphan_temporaries` deletes what a killed process left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "check_writable_dir",
    "file_sha256",
    "remove_orphan_temporaries",
]

CHECKPOINT_FORMAT_VERSION = 1
"""The format version stored in training checkpoints and in the metadata of weights files."""
_TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, unsafe, of an unknown format, or not writable."""


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` then fsync and rename onto ``path``.

    Args:
        path: Destination.
        write: Writes the whole file to the path it is given.

    Returns:
        The destination path.

    Raises:
        CheckpointError: If the folder cannot be created or the write fails with an OS or
            runtime error (full disk, permissions); the message names the file, says that the
            previous file is unchanged, and gives the free space.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CheckpointError(
            f"Cannot write {path}: the folder {path.parent} cannot be created or written "
            f"({exc.strerror or exc}). Choose a writable folder."
        ) from exc
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, (OSError, RuntimeError, SafetensorError)) and not isinstance(
            exc, CheckpointError
        ):
            previous = "is unchanged" if path.exists() else "was not created"
            raise CheckpointError(
                f"Could not write {path} ({type(exc).__name__}: {exc}); {path.name} {previous}. "
                f"Is the disk full ({_free_space(path.parent)}) or the folder not writable?"
            ) from exc
        raise
    return path


def remove_orphan_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files ``.NAME.XXXX.tmp`` that a killed :func:`atomic_write` left in ``folder``.

    Call it only when no other process writes into ``folder`` (e.g. on resume).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.is_file() and _TMP_PATTERN.match(entry.name):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def check_writable_dir(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises:
        CheckpointError: If it is a file, cannot be created, or is not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"The {what} {folder} is a file, not a folder; give a folder path.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise CheckpointError(
            f"The {what} {folder} is not writable ({exc.strerror or exc}); nothing was trained. "
            "Choose a writable folder."
        ) from exc
    return folder


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
