import pytest

from ucgm_lab.data import (
    CIFAR10_ENV,
    cifar10_instructions,
    data_kind,
    find_cifar10,
    load_image_data,
)


def test_digits_splits_are_the_toy_data_splits():
    train, test = load_image_data("digits", "train"), load_image_data("digits", "test")
    assert train.image_shape == (1, 8, 8) and len(train) + len(test) == 1797
    assert train.images.min() >= -1 and train.images.max() <= 1


def test_find_cifar10_accepts_the_folder_or_its_parent(tmp_path, monkeypatch):
    monkeypatch.delenv(CIFAR10_ENV, raising=False)
    assert find_cifar10(tmp_path) is None
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"")
    assert find_cifar10(tmp_path) == folder
    assert find_cifar10(folder) == folder
    monkeypatch.setenv(CIFAR10_ENV, str(tmp_path))
    assert find_cifar10() == folder


def test_missing_cifar10_explains_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        load_image_data("cifar10", root=tmp_path)
    assert CIFAR10_ENV in cifar10_instructions()
    with pytest.raises(ValueError, match="known: digits, cifar10"):
        load_image_data("mnist")


def test_data_kind_from_the_name():
    assert data_kind("digits") == "images" and data_kind("cifar10") == "images"
    assert data_kind("checkerboard") == "points" and data_kind("8gaussians") == "points"
    with pytest.raises(ValueError, match="images: digits, cifar10; 2D points: .*checkerboard"):
        data_kind("mnist")
