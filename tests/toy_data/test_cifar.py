import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from toy_data.cifar import CIFAR10_CLASSES, load_cifar10

PER_BATCH = 4
N_TEST = 3
LABEL_NAMES = [f"class{i}".encode() for i in range(10)]


def _batch(rng: np.random.Generator, n: int) -> dict:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[0, 0], data[0, 1] = 0, 255  # make sure both ends of the pixel range occur
    return {
        b"batch_label": b"fake",
        b"labels": [int(x) for x in rng.integers(0, 10, size=n)],
        b"data": data,
        b"filenames": [f"img{i}.png".encode() for i in range(n)],
    }


def _dump(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.fixture
def cifar_dir(tmp_path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _batch(rng, PER_BATCH))
    _dump(folder / "test_batch", _batch(rng, N_TEST))
    _dump(folder / "batches.meta", {b"label_names": LABEL_NAMES, b"num_vis": 3072})
    return folder


def _raw(path: Path) -> dict:
    with path.open("rb") as fh:
        return pickle.load(fh, encoding="bytes")


def test_load_train_from_folder(cifar_dir):
    ds = load_cifar10(cifar_dir, "train")
    assert ds.images.shape == (5 * PER_BATCH, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.shape == (5 * PER_BATCH,) and ds.labels.dtype == torch.int64
    assert ds.num_classes == 10 and ds.image_shape == (3, 32, 32)
    assert ds.class_names == tuple(f"class{i}" for i in range(10))
    raws = [_raw(cifar_dir / f"data_batch_{i}") for i in range(1, 6)]
    data = np.concatenate([r[b"data"] for r in raws])
    labels = sum((r[b"labels"] for r in raws), [])
    assert ds.labels.tolist() == labels
    expected = torch.from_numpy(data.astype(np.float32) / 127.5 - 1.0).reshape(-1, 3, 32, 32)
    assert torch.allclose(ds.images, expected, atol=1e-6)
    assert float(ds.images.min()) == -1.0 and float(ds.images.max()) == 1.0


def test_pixel_layout_is_channel_major_then_row_major(cifar_dir):
    ds = load_cifar10(cifar_dir, "test")
    data = _raw(cifar_dir / "test_batch")[b"data"].astype(np.float32) / 127.5 - 1.0
    i = 1
    assert ds.images[i, 0, 0, 1] == pytest.approx(data[i, 1])  # red, row 0, column 1
    assert ds.images[i, 0, 1, 0] == pytest.approx(data[i, 32])  # red, row 1, column 0
    assert ds.images[i, 1, 0, 0] == pytest.approx(data[i, 1024])  # green starts at 1024
    assert ds.images[i, 2, 31, 31] == pytest.approx(data[i, 3071])


def test_load_test_split_and_parent_root(cifar_dir):
    from_parent = load_cifar10(cifar_dir.parent, "test")
    from_folder = load_cifar10(str(cifar_dir), "test")
    assert len(from_parent) == N_TEST
    assert torch.equal(from_parent.images, from_folder.images)
    assert from_parent.labels.tolist() == _raw(cifar_dir / "test_batch")[b"labels"]


def test_test_split_does_not_need_train_files(cifar_dir):
    for i in range(1, 6):
        (cifar_dir / f"data_batch_{i}").unlink()
    assert len(load_cifar10(cifar_dir, "test")) == N_TEST


def test_missing_meta_falls_back_to_standard_names(cifar_dir):
    (cifar_dir / "batches.meta").unlink()
    assert load_cifar10(cifar_dir, "test").class_names == CIFAR10_CLASSES


def test_legacy_numpy_core_pickles_load(cifar_dir):
    """The real files reference numpy.core.multiarray (pre-numpy-2 module name)."""
    blob = pickle.dumps(_batch(np.random.default_rng(1), 2), protocol=2)
    legacy = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy and b"numpy._core" not in legacy
    (cifar_dir / "test_batch").write_bytes(legacy)
    assert len(load_cifar10(cifar_dir, "test")) == 2


# --- missing data ---------------------------------------------------------------------------


def test_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(root)
    msg = str(info.value)
    assert str(root) in msg and str(root / "cifar-10-batches-py") in msg
    assert "cifar-10-python.tar.gz" in msg


def test_parent_without_cifar_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "cifar-10-python.tar.gz" in msg


def test_root_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_cifar10(f)


def test_missing_batch_file_names_exact_path(cifar_dir):
    (cifar_dir / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(cifar_dir.parent, "train")
    msg = str(info.value)
    assert repr(str(cifar_dir / "data_batch_3")) in msg
    assert "cifar-10-python.tar.gz" in msg


def test_empty_cifar_folder_reports_missing_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(folder, "test")


# --- corrupt data ---------------------------------------------------------------------------


def _corrupt(cifar_dir: Path, payload: bytes | object, name: str = "test_batch") -> str:
    path = cifar_dir / name
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        _dump(path, payload)
    return str(path)


def _good(n: int = 2) -> dict:
    return _batch(np.random.default_rng(2), n)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"this is not a pickle", "not a valid CIFAR-10 pickle"),
        (b"", "not a valid CIFAR-10 pickle"),
        ([1, 2, 3], "must hold a dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "b'labels'"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, "b'data' and b'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8"),
        ({b"data": [[0] * 3072] * 2, b"labels": [0, 1]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 entries"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"0\.\.9"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]}, "list of ints"),
    ],
)
def test_corrupt_batch_raises_value_error_naming_file(cifar_dir, payload, match):
    path = _corrupt(cifar_dir, payload)
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10(cifar_dir, "test")
    assert path in str(info.value)


def test_corrupt_meta_raises_value_error(cifar_dir):
    path = _corrupt(cifar_dir, {b"label_names": [b"a"]}, name="batches.meta")
    with pytest.raises(ValueError, match="label_names") as info:
        load_cifar10(cifar_dir, "test")
    assert path in str(info.value)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_with_foreign_globals_is_refused(cifar_dir, tmp_path):
    marker = tmp_path / "pwned"
    path = _corrupt(cifar_dir, {b"data": _Evil(marker), b"labels": [0]})
    with pytest.raises(ValueError, match="forbidden global") as info:
        load_cifar10(cifar_dir, "test")
    assert path in str(info.value)
    assert not marker.exists()


def test_bad_split(cifar_dir):
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_cifar10(cifar_dir, "val")


def test_an_empty_batch_is_refused(cifar_dir):
    # issue 24: a batch with 0 images loaded as a 0-image split
    _dump(cifar_dir / "test_batch", _batch_of_none())
    with pytest.raises(ValueError, match="test_batch' holds no images"):
        load_cifar10(cifar_dir, "test")


def _batch_of_none() -> dict:
    return {b"labels": [], b"data": np.zeros((0, 3072), np.uint8)}
