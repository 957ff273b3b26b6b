"""CIFAR-10 from a local ``cifar-10-batches-py`` folder (never downloads).

Get ``cifar-10-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html
and unpack it (``tar -xzf cifar-10-python.tar.gz``); it yields the folder
``cifar-10-batches-py`` holding ``data_batch_1`` .. ``data_batch_5``,
``test_batch`` and ``batches.meta``.

The batch files are Python pickles. They are read with a restricted unpickler
that only rebuilds numpy arrays and plain containers, so a tampered file
cannot run code; it raises ``ValueError`` instead.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toy_data.containers import ImageDataset

__all__ = ["CIFAR10_CLASSES", "CIFAR10_FOLDER", "CIFAR10_SPLIT_FILES", "load_cifar10"]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_META_FILE = "batches.meta"
_ALL_FILES = (*CIFAR10_SPLIT_FILES["train"], *CIFAR10_SPLIT_FILES["test"], _META_FILE)
_HOW_TO_GET = (
    "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
    f"unpack it (tar -xzf cifar-10-python.tar.gz) to get the folder '{CIFAR10_FOLDER}', "
    "and point root at that folder or at its parent."
)
_PIXELS = 3 * 32 * 32

# (module, name) pairs a CIFAR-10 pickle may reference: numpy array reconstruction only.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    # An empty array pickled with protocol 2 stores its (empty) buffer as bytes().
    ("builtins", "bytes"),
    ("__builtin__", "bytes"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):  # pickles written before numpy 2
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def _resolve_folder(root: str | Path) -> Path:
    """Return the ``cifar-10-batches-py`` folder given it or its parent."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"CIFAR-10 root {str(root)!r} does not exist. Expected the folder "
            f"{str(root / CIFAR10_FOLDER)!r} or {str(root)!r} itself to be a "
            f"'{CIFAR10_FOLDER}' folder. {_HOW_TO_GET}"
        )
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 root {str(root)!r} is not a directory. {_HOW_TO_GET}")
    child = root / CIFAR10_FOLDER
    if child.is_dir():
        return child
    if root.name == CIFAR10_FOLDER or any((root / f).exists() for f in _ALL_FILES):
        return root
    raise FileNotFoundError(
        f"No CIFAR-10 data under {str(root)!r}: expected the folder {str(child)!r} "
        f"(or {str(root)!r} itself to hold {', '.join(_ALL_FILES)}). {_HOW_TO_GET}"
    )


def _require_file(path: Path) -> None:
    """Raise ``FileNotFoundError`` naming ``path`` if it is not a file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"Missing CIFAR-10 file: expected {str(path)!r} "
            f"('{path.parent.name}' should hold {', '.join(_ALL_FILES)}). {_HOW_TO_GET}"
        )


def _load_pickle(path: Path) -> Any:
    """Unpickle ``path`` (bytes-encoded, numpy arrays only) or raise naming the file."""
    _require_file(path)
    try:
        with path.open("rb") as fh:
            return _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except Exception as err:  # any unpickling failure means a corrupt file
        raise ValueError(
            f"CIFAR-10 file {str(path)!r} is not a valid CIFAR-10 pickle "
            f"({type(err).__name__}: {err}). Re-extract it from cifar-10-python.tar.gz."
        ) from err


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file into ``uint8`` data (N, 3072) and ``int64`` labels (N,)."""
    batch = _load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        found = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"CIFAR-10 file {str(path)!r} must hold a dict with keys b'data' and b'labels'; "
            f"found {found}."
        )
    data = batch[b"data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != _PIXELS)
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: b'data' must be a uint8 array of shape "
            f"(N, {_PIXELS}); found {desc}."
        )
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: b'labels' must be a list of ints ({err})."
        ) from err
    if labels.shape != (data.shape[0],):
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: b'labels' must have {data.shape[0]} entries "
            f"(one per image); found shape {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"CIFAR-10 file {str(path)!r}: labels must lie in 0..9; found "
            f"{labels.min()}..{labels.max()}."
        )
    return data, labels


def _read_class_names(folder: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta`` if present, else the standard ones."""
    path = folder / _META_FILE
    if not path.exists():
        return CIFAR10_CLASSES
    meta = _load_pickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if (
        not isinstance(names, list)
        or len(names) != 10
        or not all(isinstance(x, bytes) for x in names)
    ):
        raise ValueError(
            f"CIFAR-10 file {str(path)!r} must hold a dict whose b'label_names' is a list of "
            "10 byte strings."
        )
    return tuple(x.decode("utf-8") for x in names)


def load_cifar10(root: str | Path, split: str = "train") -> ImageDataset:
    """Load CIFAR-10 from a local ``cifar-10-batches-py`` folder.

    Pixels ``0 .. 255`` map linearly to ``-1 .. 1`` (``x / 127.5 - 1``). The full
    training split takes about 600 MB as float32.

    Args:
        root: The ``cifar-10-batches-py`` folder or its parent directory.
        split: ``"train"`` (``data_batch_1`` .. ``data_batch_5``, 50000 images) or
            ``"test"`` (``test_batch``, 10000 images).

    Returns:
        ``ImageDataset`` with ``images`` (N, 3, 32, 32) float32 in ``[-1, 1]``,
        ``labels`` (N,) int64 in ``0..9``, ``num_classes=10`` and the class names
        from ``batches.meta`` (the standard names if that file is absent).

    Raises:
        ValueError: For an unknown ``split`` or a corrupt file (the message names it).
        FileNotFoundError: If the folder or a needed batch file is missing (the
            message gives the expected path and how to obtain the data).
    """
    if split not in CIFAR10_SPLIT_FILES:
        raise ValueError(
            f"split must be one of {', '.join(map(repr, CIFAR10_SPLIT_FILES))}; got {split!r}."
        )
    folder = _resolve_folder(root)
    paths = [folder / name for name in CIFAR10_SPLIT_FILES[split]]
    for path in paths:  # report a missing file before spending time on reading
        _require_file(path)
    batches = [_read_batch(path) for path in paths]
    for path, (data, _) in zip(paths, batches, strict=True):
        if data.shape[0] == 0:
            raise ValueError(
                f"CIFAR-10 file {str(path)!r} holds no images (b'data' has 0 rows; a CIFAR-10 "
                "batch holds 10000). Re-extract it from cifar-10-python.tar.gz."
            )
    class_names = _read_class_names(folder)
    data = np.concatenate([d for d, _ in batches])
    labels = np.concatenate([lab for _, lab in batches])
    images = torch.from_numpy(data).reshape(-1, 3, 32, 32).to(torch.float32) / 127.5 - 1.0
    return ImageDataset(
        images=images,
        labels=torch.from_numpy(labels),
        num_classes=10,
        class_names=class_names,
    )
