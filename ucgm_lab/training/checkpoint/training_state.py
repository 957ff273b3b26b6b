"""Training checkpoints: one ``torch.save`` file that resumes a run exactly, loaded without running code.

A training checkpoint holds everything needed to resume exactly (model, EMA, optimizer, the
objective's teacher state, RNG states, step, data position, loss history). It is read with
``torch.load(weights_only=True)``: the unpickler rebuilds tensors, numbers, strings and plain
containers only, plus the explicit allow-list :data:`ALLOWED_GLOBALS` (numpy's array
rebuilders, for the saved numpy RNG state). A file that references anything else (for example
``os.system`` in a crafted pickle) is refused before any of it is executed. It carries
``content_sha256``, a digest of everything else in it, which :func:`load_checkpoint` verifies
(a checkpoint without one is refused unless ``allow_unverified=True``; :func:`seal_checkpoint`
adds one to a file you trust).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import CHECKPOINT_FORMAT_VERSION, CheckpointError, atomic_write

__all__ = [
    "ALLOWED_GLOBALS",
    "DIGEST_KEY",
    "load_checkpoint",
    "save_checkpoint",
    "seal_checkpoint",
]


def _numpy_globals() -> list[Any]:
    """The callables a pickled numpy uint32 array (the numpy RNG state) references."""
    reconstruct = np.ndarray((0,)).__reduce__()[0]  # numpy._core.multiarray._reconstruct
    return [reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


ALLOWED_GLOBALS: list[Any] = _numpy_globals()
"""Globals allowed in a training checkpoint beyond torch's weights-only defaults (tensors,
dtypes, plain containers): numpy array reconstruction, which builds arrays and nothing else."""


DIGEST_KEY = "content_sha256"
"""The key of a training checkpoint's own digest (sha256 of everything else in it)."""


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
