"""One evaluation for every data kind: the reference chooses the metric."""

import pytest
import torch

from ucgm_lab.evaluation import QualityPoint, format_quality_table, quality_vs_nfe
from ucgm_lab.metrics import wasserstein2


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
