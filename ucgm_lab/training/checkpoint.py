"""Checkpoints: atomic writes, a format version, loading that never runs code, checksums.

A training checkpoint is one ``torch.save`` file holding everything needed to resume exactly
(model, EMA, optimizer, the objective's teacher state, RNG states, step, data position,
loss history). It is read with ``torch.load(weights_only=True)``: the unpickler rebuilds
tensors, numbers, strings and plain containers only, plus the explicit allow-list
:data:`ALLOWED_GLOBALS` (numpy's array rebuilders, for the saved numpy RNG state). A file
that references anything else
(for example ``os.system`` in a crafted pickle) is refused before any of it is executed. It
carries ``content_sha256``, a digest of everything else in it, which :func:`load_checkpoint`
verifies (a checkpoint without one is refused unless ``allow_unverified=True``;
:func:`seal_checkpoint` adds one to a file you trust).

Model weights for sharing (the zoo, ``ema.safetensors``) are safetensors files with JSON
metadata; :func:`save_weights` stores a sha256 of the tensors and the metadata in the file and
:func:`load_weights` checks it (a file without one is refused unless the caller passes
``allow_unverified=True``; :func:`seal_weights` adds one to a trusted file), and a folder may hold a ``checksums.json`` manifest of whole-file
sha256 sums (the zoo ships one) that :func:`verify_manifest` checks.

Every write goes to a temporary file ``.NAME.XXXX.tmp`` in the same folder, is flushed to
disk and then renamed over the target, so a crash never leaves a half-written file under the
real name; :func:`remove_orphan_temporaries` deletes what a killed process left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "ALLOWED_GLOBALS",
    "CHECKPOINT_FORMAT_VERSION",
    "MANIFEST_NAME",
    "CheckpointError",
    "atomic_write",
    "check_writable_dir",
    "file_sha256",
    "load_checkpoint",
    "load_weights",
    "read_zoo_file",
    "remove_orphan_temporaries",
    "save_checkpoint",
    "save_weights",
    "seal_checkpoint",
    "seal_weights",
    "update_manifest",
    "verify_manifest",
]

CHECKPOINT_FORMAT_VERSION = 1
MANIFEST_NAME = "checksums.json"
_TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def _numpy_globals() -> list[Any]:
    """The callables a pickled numpy uint32 array (the numpy RNG state) references."""
    reconstruct = np.ndarray((0,)).__reduce__()[0]  # numpy._core.multiarray._reconstruct
    return [reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


ALLOWED_GLOBALS: list[Any] = _numpy_globals()
"""Globals allowed in a training checkpoint beyond torch's weights-only defaults (tensors,
dtypes, plain containers): numpy array reconstruction, which builds arrays and nothing else."""


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


# ---------------------------------------------------------------------- training checkpoints
def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically save a training state dict with the format version added.

    The state may hold tensors, numbers, strings, None and (nested) dicts, lists and tuples;
    anything else would make the file unloadable by :func:`load_checkpoint` and is refused here.
    """
    payload = {"format_version": CHECKPOINT_FORMAT_VERSION, **state}
    payload.pop(DIGEST_KEY, None)  # a state read back from a file: its old digest goes
    _check_plain(payload, "state")
    payload[DIGEST_KEY] = _state_digest(payload)
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


DIGEST_KEY = "content_sha256"
"""The key of a training checkpoint's own digest (sha256 of everything else in it)."""


def _state_digest(payload: dict[str, Any]) -> str:
    """sha256 over a checkpoint payload: every key, value, tensor dtype, shape and bytes.

    The walk is deterministic (dict keys sorted), so the digest of a state read back with
    :func:`load_checkpoint` equals the one computed when it was saved.
    """
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if torch.is_tensor(value):
        t = value.detach().contiguous().cpu()
        digest.update(f"T|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        digest.update(f"A|{a.dtype.str}|{a.shape}|".encode())
        digest.update(memoryview(a.reshape(-1).view(np.uint8)))
    elif isinstance(value, dict):
        digest.update(f"D|{len(value)}|".encode())
        for key in sorted(value, key=lambda k: (isinstance(k, int), str(k))):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}|{len(value)}|".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}|{value!r}|".encode())


_PLAIN = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, _PLAIN) or torch.is_tensor(value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint key {where}[{k!r}] must be a str or int.")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, np.ndarray) and value.dtype != object:
        return
    raise TypeError(
        f"checkpoint value {where} is a {type(value).__name__}; a checkpoint holds only tensors, "
        "numbers, strings and plain containers (so that loading it can never run code)."
    )


def load_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    mmap: bool = False,
    *,
    allow_unverified: bool = False,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` without running any code in it.

    The checkpoint's own digest (``content_sha256``, over everything else in it) is verified,
    and a checkpoint without one is refused unless ``allow_unverified``.

    Args:
        path: The file.
        map_location: Where the tensors go (``mmap`` needs "cpu").
        mmap: Memory-map the file instead of reading it (``torch.load(mmap=True)``): tensors
            are read from the page cache when they are used, so the processes of a node share
            one copy of a large checkpoint in host memory instead of each holding their own.
            The mapping is private: writing to a loaded tensor never changes the file.
            (The digest check reads every tensor once.)
        allow_unverified: Load a checkpoint that carries no digest (written before digests
            existed) without checking it; :func:`seal_checkpoint` adds one to a file you trust.

    Raises:
        CheckpointError: If the file is missing, unreadable, references a global outside the
            allow-list (a crafted or foreign file: nothing in it was executed), is not a
            ucgm-lab checkpoint of a known format version, fails its digest, or carries none
            (unless ``allow_unverified``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: the file does not exist.")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means a bad file
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            found = re.findall(r"GLOBAL ([\w.]+)", text) or re.findall(
                r"Unsupported global: ([^\s]+)", text
            )
            what = f" ({', '.join(sorted(set(found)))})" if found else ""
            raise CheckpointError(
                f"Refused to load {path}: it references Python objects outside the allow-list"
                f"{what}. A ucgm-lab checkpoint holds only tensors, numbers, strings and plain "
                "containers; this file was crafted or written by other software, and nothing in "
                "it was run. Load only checkpoints written by ucgm-lab."
            ) from None
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
    stored = state.get(DIGEST_KEY)
    if stored is None and not allow_unverified:
        raise CheckpointError(
            f"{path} carries no content digest ({DIGEST_KEY}), so an edit or corruption could "
            "not be detected; it is refused. Add the digest to a checkpoint you trust with "
            "ucgm_lab.training.checkpoint.seal_checkpoint(path), or pass allow_unverified=True "
            "to load_checkpoint."
        )
    if stored is not None and stored != _state_digest(state):
        raise CheckpointError(
            f"{path} fails its checksum: its contents were changed after it was written "
            "(corruption or an edit). Use an earlier checkpoint."
        )
    return state


def seal_checkpoint(path: str | Path) -> Path:
    """Add the content digest to a training checkpoint that has none (atomically, in place).

    Seal only a file you trust: the digest vouches for what it holds now.

    Raises:
        CheckpointError: As :func:`load_checkpoint` (a digest that is present must match).
    """
    path = Path(path)
    state = load_checkpoint(path, allow_unverified=True)
    if DIGEST_KEY in state:
        return path
    return save_checkpoint(path, state)


# ---------------------------------------------------------------------- shared weights
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
    if _read_manifest(path.parent) is not None:
        update_manifest(path)
    return path


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(folder: Path) -> dict[str, str] | None:
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
    manifest = _read_manifest(path.parent)
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
    manifest = _read_manifest(path.parent) or {}
    manifest[path.name] = file_sha256(path)
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    return atomic_write(path.parent / MANIFEST_NAME, lambda tmp: Path(tmp).write_text(text))


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
