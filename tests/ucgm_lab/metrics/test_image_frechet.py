"""The image metric for any shape (issue 30): offline, separates quality levels, has a floor."""

import pytest
import torch

from ucgm_lab.evaluation import IMAGE_METRIC, quality_vs_nfe
from ucgm_lab.metrics import ImageFrechet, frechet_distance, gaussian_stats
from ucgm_lab.search import default_metric


def _images(n, shape=(1, 16, 16), seed=0):
    """Bright squares at random places on a dark background, pixels in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, *shape)
    corner = torch.randint(0, shape[-1] - 6, (n, 2), generator=g)
    for i, (r, c) in enumerate(corner.tolist()):
        x[i, :, r : r + 6, c : c + 6] = 1.0
    return x


class ZeroModel(torch.nn.Module):
    def forward(self, x_t, t, y=None):
        return torch.zeros_like(x_t)


def test_quality_vs_nfe_scores_16x16_images_and_takes_a_metric():
    ref = _images(64)
    points = quality_vs_nfe(ZeroModel(), "linear", ref, [1, 2], label="zero", num_samples=32)
    assert [list(p.metrics) for p in points] == [[IMAGE_METRIC], [IMAGE_METRIC]]
    assert all(p.metrics[IMAGE_METRIC] > 0 for p in points)

    def mean_gap(samples, reference):
        return float((samples.mean() - reference.mean()).abs())

    mean_gap.name = "mean_gap"
    points = quality_vs_nfe(ZeroModel(), "linear", ref, [1], label="z", metric=mean_gap)
    assert list(points[0].metrics) == ["mean_gap"]


def test_features_and_distance_against_an_independent_computation():
    ref, other = _images(200, (3, 12, 10)), _images(150, (3, 12, 10), seed=1)
    metric = ImageFrechet(ref, seed=3)
    feats = metric.features(other)
    assert feats.shape == (150, 2 * (32 + 64 + 64) + 16 * 3) and feats.dtype == torch.float64
    # the same network written with torch.nn layers
    mean = ref.mean(dim=(0, 2, 3), keepdim=True)
    std = ref.std(dim=(0, 2, 3), keepdim=True)
    g = torch.Generator().manual_seed(3)
    h = (other - mean) / std
    expected = [torch.nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)]
    fan_in = 3
    for width, stride in zip((32, 64, 64), (1, 2, 2), strict=True):
        conv = torch.nn.Conv2d(fan_in, width, 3, stride=stride, padding=1, bias=False)
        conv.weight.data = torch.randn(width, fan_in, 3, 3, generator=g) * (2 / (9 * fan_in)) ** 0.5
        h = torch.relu(conv(h))
        expected += [h.mean(dim=(2, 3)), h.flatten(2).std(dim=2)]
        fan_in = width
    expected = torch.cat(expected, 1).double()
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-5)
    a, b = gaussian_stats(feats), gaussian_stats(metric.features(ref))
    assert metric.distance(other) == pytest.approx(frechet_distance(a.mu, a.sigma, b.mu, b.sigma))
    assert metric.distance(ref) == pytest.approx(0.0, abs=1e-6)
    assert ImageFrechet(ref, seed=3).distance(other) == metric.distance(other)  # from the seed


def test_bad_images_are_refused_clearly():
    metric = ImageFrechet(_images(20))
    with pytest.raises(ValueError, match=r"reference's shape \(N, 1, 16, 16\)"):
        metric.distance(_images(20, (1, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, H, W\) with N >= 2"):
        ImageFrechet(torch.randn(10, 2))
    with pytest.raises(ValueError, match="NaN"):
        metric.distance(torch.full((4, 1, 16, 16), float("nan")))


def test_search_default_metric_covers_any_image_shape():
    assert isinstance(default_metric(_images(8)), ImageFrechet)
    assert isinstance(default_metric(torch.zeros(8, 3, 32, 32)), ImageFrechet)


@pytest.mark.timeout(1800)  # about 10 s idle (107 U-Net passes on 128 images); slow when shared
def test_separates_nfe_levels_and_noise_from_its_floor_on_the_digits_model():
    """1 > 2 > 4 > 100 NFE of the zoo's multi-step digits model; noise far above the floor."""
    from ucgm_lab.data import load_image_data
    from ucgm_lab.zoo import load

    train, test = load_image_data("digits", "train"), load_image_data("digits", "test")
    zm = load("digits-linear-lam0")
    n = 128
    points = quality_vs_nfe(
        zm.model, zm.transport, train.images, [1, 2, 4, 100], label="lam0", num_samples=n,
        y=torch.arange(n) % 10,
    )  # fmt: skip
    values = [p.metrics[IMAGE_METRIC] for p in points]
    assert values == sorted(values, reverse=True) and len(set(values)) == 4, values
    metric = ImageFrechet(train.images)
    floor = metric.floor(test.images, n=n, repeats=2)
    noise = metric.distance(torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert noise > 10 * floor.mean and values[0] > 2 * floor.mean
