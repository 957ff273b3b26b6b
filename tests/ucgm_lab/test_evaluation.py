"""One evaluation for every data kind: the reference chooses the metric."""

import math

import pytest
import torch

from ucgm_lab.evaluation import QualityPoint, format_quality_table, guidance_sweep, quality_vs_nfe
from ucgm_lab.metrics import wasserstein2
from ucgm_lab.viz import quality_figure


def _shrink(x, t, y=None):
    """A velocity-free toy model: F = 0, so the sample is x_hat = gamma-scaled noise."""
    return torch.zeros_like(x)


def test_points_reference_scores_with_the_2d_metrics():
    reference = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    points = quality_vs_nfe(
        _shrink, "linear", reference, [1, 2], label="zero", metrics=("w2",), seed=0
    )
    assert [p.nfe for p in points] == [1, 2] and [p.steps for p in points] == [1, 2]
    # independent check of one value: the same noise, sampled directly
    noise = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    from ucgm_lab import sample

    direct = sample(_shrink, noise, "linear", 2, generator=torch.Generator().manual_seed(1))
    assert points[1].metrics["w2"] == pytest.approx(wasserstein2(direct.sample, reference))


def test_bad_reference_is_named():
    with pytest.raises(TypeError, match="data points .* or a DigitsFrechet, got list"):
        quality_vs_nfe(_shrink, "linear", [[0.0, 0.0]], [1], label="x")


def test_quality_point_views():
    p = QualityPoint(
        "UCGM-S k=0.5 o2",
        3,
        3,
        {"sliced_w2": 0.2},
        {"kappa": 0.5, "order": 2, "correction": "data"},
    )
    assert (p.sampler, p.score, p.setting, p.kappa, p.order, p.correction) == (
        "UCGM-S k=0.5 o2",
        0.2,
        "steps=3",
        0.5,
        2,
        "data",
    )
    assert (
        QualityPoint("a", 2, 2, {"w": 1.0}, {"order": 1, "correction": "noise"}).correction is None
    )
    table = format_quality_table(
        [p, QualityPoint("b", 2, 2, {"sliced_w2": 0.5})], "sliced_w2", digits=2
    )
    assert table.splitlines() == [
        "| curve | NFE 2 | NFE 3 |",
        "|---|---|---|",
        "| UCGM-S k=0.5 o2 |  | 0.20 |",
        "| b | 0.50 |  |",
    ]


class ClassNet(torch.nn.Module):
    """A conditional 'model': F = x_t - centre(y), with a null class that maps to the origin."""

    def __init__(self):
        super().__init__()
        self.num_classes = 8
        self.null_class = 8
        angles = torch.arange(8) * math.pi / 4
        centres = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        self.register_buffer("centres", torch.cat([centres, torch.zeros(1, 2)]))

    def forward(self, x, t, y=None):
        if y is None:
            y = torch.full((x.shape[0],), 8)
        return x - self.centres[y].to(x.dtype)


def test_guidance_sweep_compares_at_equal_nfe():
    curve = guidance_sweep(
        (ClassNet(), "linear"),
        "8gaussians",
        [2, 4],
        label="cfg",
        guidance_scale=2.0,
        num_samples=48,
    )
    assert [p.nfe for p in curve] == [2, 4] and [p.steps for p in curve] == [1, 2]
    assert isinstance(curve[0], QualityPoint)
    assert set(curve[0].metrics) == {"class_w2", "class_accuracy", "class_spread"}
    fig = quality_figure(curve, metric="class_w2")
    assert fig.data[0].name == "cfg"
    with pytest.raises(ValueError, match="too small for guidance"):
        guidance_sweep(
            (ClassNet(), "linear"), "8gaussians", [1], label="x", guidance_scale=2.0, num_samples=8
        )
