import numpy as np
import pytest
import torch

from ucgm_lab.data import load_image_data
from ucgm_lab.metrics import frechet_distance, gaussian_stats
from ucgm_lab.metrics.digits import digits_frechet
from ucgm_lab.metrics.digits_classifier import DigitsClassifier, train_digits_classifier


@pytest.fixture(scope="module")
def metric():
    return digits_frechet()


def test_features_are_deterministic_and_64_dimensional(metric):
    x = metric.test_images[:50]
    f1, f2 = metric.features(x), metric.features(x.clone(), batch_size=7)
    assert f1.shape == (50, 64)
    torch.testing.assert_close(f1, f2, rtol=1e-5, atol=1e-5)
    # pixels outside [-1, 1] are clamped like real digits
    torch.testing.assert_close(metric.features(x * 3), metric.features((x * 3).clamp(-1, 1)))


def test_distance_is_the_frechet_distance_of_the_feature_gaussians(metric):
    x = metric.test_images
    feats = metric.features(x).double().numpy()
    ref = metric.classifier.features(load_image_data("digits", "train").images).double().numpy()
    direct = frechet_distance(
        feats.mean(0), np.cov(feats, rowvar=False), ref.mean(0), np.cov(ref, rowvar=False)
    )
    assert metric.distance(x) == pytest.approx(direct, rel=1e-4)


def test_floor_is_far_below_broken_images(metric):
    floor = metric.floor()
    assert floor.n == metric.num_samples == 359
    assert 0 < floor.mean < 15
    n = metric.num_samples
    noise = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    shuffled = metric.test_images.flatten(1)[:, torch.randperm(64)].reshape(-1, 1, 8, 8)
    blurred = metric.test_images.mean(0, keepdim=True).expand(n, -1, -1, -1).clone()
    for broken in (noise, shuffled, blurred):
        assert metric.distance(broken) > 10 * floor.mean
    # one class only (mode collapse) is far off too
    zeros = load_image_data("digits", "train").images[
        load_image_data("digits", "train").labels == 0
    ]
    assert metric.distance(zeros) > 10 * floor.mean


def test_stored_classifier_reads_the_test_split(metric):
    assert metric.accuracy(metric.test_images, metric.test_labels) > 0.97


def test_classifier_training_is_seeded():
    a = train_digits_classifier(epochs=1, seed=3)
    b = train_digits_classifier(epochs=1, seed=3)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert a.test_accuracy > 0.3
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        DigitsClassifier().features(torch.zeros(2, 3, 8, 8))


def test_gaussian_stats_of_features_match_numpy(metric):
    x = metric.test_images[:100]
    stats = metric.stats(x)
    f = metric.features(x).double().numpy()
    np.testing.assert_allclose(stats.mu, f.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.sigma, gaussian_stats(f).sigma)


def test_shift_augmentation_moves_by_at_most_one_pixel():
    from ucgm_lab.metrics.digits_classifier import _shift

    x = torch.full((50, 1, 8, 8), -1.0)
    x[:, 0, 3, 4] = 1.0
    out = _shift(x, torch.Generator().manual_seed(0))
    where = (out[:, 0] == 1.0).nonzero()[:, 1:]
    assert out.shape == x.shape and len(where) == 50
    assert ((where - torch.tensor([3, 4])).abs() <= 1).all() and len(
        {tuple(w) for w in where.tolist()}
    ) == 9
