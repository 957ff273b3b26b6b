"""Class-conditional scores of labelled 2D samples."""

import math

import torch

from ucgm_lab.metrics.classes import (
    balanced_labels,
    class_accuracy,
    class_conditional_w2,
    class_spread,
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
