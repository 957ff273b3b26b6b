from collections import Counter

import pytest
import torch
from sklearn.datasets import load_digits

from toy_data.digits import load_digits_images


@pytest.fixture(scope="module")
def raw():
    return load_digits()


def _keys(images: torch.Tensor) -> Counter:
    return Counter(img.numpy().tobytes() for img in images)


def test_all_split_shapes_and_types():
    ds = load_digits_images("all")
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == torch.float32
    assert ds.labels.shape == (1797,) and ds.labels.dtype == torch.int64
    assert ds.num_classes == 10 and ds.image_shape == (1, 8, 8) and len(ds) == 1797
    assert ds.class_names == tuple("0123456789")
    assert set(ds.labels.tolist()) == set(range(10))


def test_scaling_zero_to_sixteen_maps_to_minus_one_to_one(raw):
    ds = load_digits_images()
    expected = torch.tensor(raw.images, dtype=torch.float32)[:, None] / 8.0 - 1.0
    assert torch.equal(ds.images, expected)
    assert float(ds.images.min()) == -1.0 and float(ds.images.max()) == 1.0
    assert torch.equal(ds.labels, torch.tensor(raw.target))


def test_train_test_are_a_disjoint_partition():
    full = load_digits_images("all")
    train = load_digits_images("train")
    test = load_digits_images("test")
    assert len(train) + len(test) == len(full)
    k_full, k_train, k_test = _keys(full.images), _keys(train.images), _keys(test.images)
    # Every image occurs in train and test together exactly as often as in the full set,
    # so no item is in both splits (an image may only repeat if it repeats in "all").
    for key in set(k_train) | set(k_test):
        assert k_train[key] + k_test[key] == k_full[key]
    shared = set(k_train) & set(k_test)
    assert all(k_full[key] > 1 for key in shared)


def test_split_is_stratified():
    full = load_digits_images("all")
    test = load_digits_images("test", test_fraction=0.2)
    full_counts = torch.bincount(full.labels, minlength=10)
    test_counts = torch.bincount(test.labels, minlength=10)
    assert torch.equal(test_counts, torch.round(0.2 * full_counts.double()).long())


def test_split_is_deterministic_and_seeded():
    a = load_digits_images("test", seed=0)
    b = load_digits_images("test", seed=0)
    c = load_digits_images("test", seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_test_fraction_controls_size():
    assert len(load_digits_images("test", test_fraction=0.5)) == pytest.approx(1797 / 2, abs=6)
    assert len(load_digits_images("train", test_fraction=0.1)) == pytest.approx(0.9 * 1797, abs=6)


@pytest.mark.parametrize("split", ["val", "Train ", ""])
def test_bad_split(split):
    with pytest.raises(ValueError, match="'all', 'train', 'test'"):
        load_digits_images(split)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, "0.2"])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        load_digits_images("train", test_fraction=fraction)


def test_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        load_digits_images("train", seed=0.5)
