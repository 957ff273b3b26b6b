"""Checkpoints: atomic writes, a format version, loading that never runs code, checksums.

One job per module:

* :mod:`.files`: :func:`atomic_write` (temporary file, fsync, rename: a crash never leaves a
  half-written file under the real name), :func:`check_writable_dir`,
  :func:`remove_orphan_temporaries`, :func:`file_sha256`, :class:`CheckpointError` and the
  format version.
* :mod:`.training_state`: training checkpoints (:func:`save_checkpoint`,
  :func:`load_checkpoint`, :func:`seal_checkpoint`): one ``torch.save`` file read with
  ``weights_only=True`` and an allow-list, verified by its own content digest.
* :mod:`.weights`: shared weights (:func:`save_weights`, :func:`load_weights`,
  :func:`seal_weights`, :func:`read_zoo_file`): safetensors with JSON metadata and a digest.
* :mod:`.manifest`: a folder's ``checksums.json`` (:func:`verify_manifest`,
  :func:`update_manifest`).

Everything is re-exported here, so ``from ucgm_lab.training.checkpoint import X`` works for
every name listed in ``__all__``.
"""

from .files import (
    CHECKPOINT_FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    check_writable_dir,
    file_sha256,
    remove_orphan_temporaries,
)
from .manifest import MANIFEST_NAME, update_manifest, verify_manifest
from .training_state import (
    ALLOWED_GLOBALS,
    DIGEST_KEY,
    load_checkpoint,
    save_checkpoint,
    seal_checkpoint,
)
from .weights import load_weights, read_zoo_file, save_weights, seal_weights

__all__ = [
    "ALLOWED_GLOBALS",
    "CHECKPOINT_FORMAT_VERSION",
    "DIGEST_KEY",
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
