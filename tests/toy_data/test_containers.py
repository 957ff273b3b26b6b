import pytest
import torch

from toy_data.containers import ImageDataset, ToySample


def test_toy_sample_fields_and_len():
    s = ToySample(points=torch.zeros(5, 2), labels=torch.zeros(5, dtype=torch.int64))
    assert len(s) == 5
    assert ToySample(points=torch.zeros(3, 2)).labels is None


def test_toy_sample_is_frozen():
    s = ToySample(points=torch.zeros(1, 2))
    with pytest.raises(AttributeError):
        s.points = torch.ones(1, 2)  # type: ignore[misc]


@pytest.mark.parametrize("shape", [(5,), (5, 3), (2, 5, 2)])
def test_toy_sample_rejects_bad_points_shape(shape):
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        ToySample(points=torch.zeros(shape))


def test_toy_sample_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="labels"):
        ToySample(points=torch.zeros(5, 2), labels=torch.zeros(4, dtype=torch.int64))


def test_image_dataset_image_shape_and_len():
    ds = ImageDataset(torch.zeros(7, 3, 4, 5), torch.zeros(7, dtype=torch.int64), num_classes=2)
    assert ds.image_shape == (3, 4, 5)
    assert len(ds) == 7
    assert ds.class_names == ()


def test_image_dataset_validation():
    with pytest.raises(ValueError, match="N, C, H, W"):
        ImageDataset(torch.zeros(7, 4, 5), torch.zeros(7, dtype=torch.int64), num_classes=2)
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(torch.zeros(7, 1, 4, 5), torch.zeros(6, dtype=torch.int64), num_classes=2)
    with pytest.raises(ValueError, match="class_names"):
        ImageDataset(
            torch.zeros(7, 1, 4, 5),
            torch.zeros(7, dtype=torch.int64),
            num_classes=2,
            class_names=("a",),
        )
