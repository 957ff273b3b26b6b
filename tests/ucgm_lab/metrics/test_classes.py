"""Class-conditional scores of labelled 2D samples."""

import math

import pytest
import torch

from ucgm_lab.metrics import sliced_wasserstein2
from ucgm_lab.metrics.classes import (
    ClassSlicedW2,
    balanced_labels,
    class_accuracy,
    class_conditional_w2,
    class_ordered_points,
    class_spread,
    mean_over_classes,
)


def test_class_scores_reward_the_right_class_and_see_sharpening():
    from toy_data import sample_2d_class

    pts = torch.cat([sample_2d_class("8gaussians", 20, k, seed=k).points for k in range(8)])
    labels = torch.arange(8).repeat_interleave(20)
    good = class_conditional_w2(pts, labels, "8gaussians")
    shuffled = class_conditional_w2(pts, labels.roll(20), "8gaussians")
    assert good < 0.2 < shuffled
    assert class_accuracy(pts, labels, "8gaussians") > 0.95
    assert class_accuracy(pts, labels.roll(20), "8gaussians") < 0.05
    assert 0.8 < class_spread(pts, labels, "8gaussians") < 1.2
    centres = torch.stack([torch.cos(labels * math.pi / 4), torch.sin(labels * math.pi / 4)], 1)
    sharpened = centres + 0.5 * (pts - centres)
    assert 0.4 < class_spread(sharpened, labels, "8gaussians") < 0.6


def test_balanced_labels():
    assert balanced_labels(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_class_ordered_points_put_class_i_mod_k_in_row_i():
    pts = class_ordered_points("8gaussians", 30, seed=1)
    assert pts.shape == (240, 2)
    angle = torch.arange(8) * math.pi / 4
    centres = torch.stack([angle.cos(), angle.sin()], 1)
    nearest = torch.cdist(pts, centres).argmin(1)
    assert torch.equal(nearest, balanced_labels(8, 240))
    assert not torch.equal(pts, class_ordered_points("8gaussians", 30, seed=2))


def test_class_sliced_w2_is_the_mean_over_classes_of_pots_sliced_w2():
    samples = class_ordered_points("checkerboard", 50, seed=3)
    reference = class_ordered_points("checkerboard", 200, seed=4)  # 4x per class: block sums
    metric = ClassSlicedW2(8)
    expected = [
        sliced_wasserstein2(samples[k::8], reference[k::8], n_projections=256, seed=0)
        for k in range(8)
    ]
    assert metric(samples, reference) == pytest.approx(sum(expected) / 8, rel=1e-9)
    assert metric(samples, reference) == metric(samples, reference)  # cached reference
    # the wrong class order (every sample one class off) is far worse; the pooled clouds equal
    assert metric(samples.roll(1, 0), reference) > 10 * metric(samples, reference)


def test_mean_over_classes_weights_every_class_the_same():
    samples = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
    labels = torch.tensor([0, 0, 0, 1])
    assert mean_over_classes(samples, labels, lambda pts, k: float(pts.sum()) + k) == 1.0
    with pytest.raises(ValueError, match="one class id per sample"):
        mean_over_classes(samples, labels[:3], lambda pts, k: 0.0)


@pytest.mark.parametrize(
    ("samples", "reference", "match"),
    [
        (torch.zeros(12, 2), torch.zeros(16, 2), "samples must be class-ordered"),
        (torch.zeros(16, 2), torch.zeros(20, 2), "reference must be class-ordered"),
        (torch.zeros(16, 3), torch.zeros(16, 2), r"got shape \(16, 3\)"),
    ],
)
def test_class_sliced_w2_refuses_clouds_that_are_not_class_ordered(samples, reference, match):
    with pytest.raises(ValueError, match=match):
        ClassSlicedW2(8)(samples, reference)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        ClassSlicedW2(0)
