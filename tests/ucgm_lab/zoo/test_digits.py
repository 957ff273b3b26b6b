import json

import pytest
import torch

from ucgm_lab.evaluation import DIGITS_METRIC as METRIC_NAME
from ucgm_lab.evaluation import format_quality_table
from ucgm_lab.evaluation import quality_vs_nfe as image_quality_vs_nfe
from ucgm_lab.metrics.digits import digits_frechet
from ucgm_lab.schedules import even_time_points
from ucgm_lab.training import CheckpointError
from ucgm_lab.zoo import (
    DIGITS_DIR,
    ZOO_SPECS,
    available,
    classifier_available,
    load_classifier,
)
from ucgm_lab.zoo import load as load_image_model
from ucgm_lab.zoo.__main__ import main

# Digits metric (Frechet distance in the digits classifier's features, 359 samples, seed 0;
# lower is better). The floor (test split vs train split) is 6.9 and Gaussian noise scores
# about 1100. Measured at the recommended settings (benchmarks/images_quality.py, 3 seeds):
# lam0 5.6 (16 NFE, kappa 0.5), lam0.5 6.1 (8 NFE, rho 0.5), lam1 9.4 (2 NFE, rho 1).
THRESHOLDS = {"digits-linear-lam0": 12.0, "digits-linear-lam0.5": 12.0, "digits-linear-lam1": 15.0}
MAX_ZOO_BYTES = 8 * 2**20
IMAGE_ZOO_SPECS = [s for s in ZOO_SPECS if s.recipe.kind == "images"]
IMAGE_ZOO_DIR = DIGITS_DIR


@pytest.fixture(scope="module")
def metric():
    return digits_frechet()


def test_every_spec_and_the_classifier_are_built_and_small():
    assert available(IMAGE_ZOO_DIR) == [s.name for s in IMAGE_ZOO_SPECS]
    assert classifier_available(IMAGE_ZOO_DIR)
    assert sum(p.stat().st_size for p in IMAGE_ZOO_DIR.glob("*.safetensors")) < MAX_ZOO_BYTES


@pytest.mark.reproducibility
@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_zoo_model_quality_at_its_recommended_settings(name, metric):
    zm = load_image_model(name)
    out = zm.sample(metric.test_labels, seed=0)
    fd = metric.distance(out.sample)
    assert fd < THRESHOLDS[name], (
        f"{name}: digits FD {fd:.1f} at {zm.sampling} (floor {metric.floor().mean:.1f})"
    )
    assert metric.accuracy(out.sample, metric.test_labels) > 0.9


@pytest.mark.reproducibility
def test_few_step_model_beats_multi_step_model_at_two_evaluations(metric):
    values = {}
    for name in ("digits-linear-lam0", "digits-linear-lam1"):
        zm = load_image_model(name)
        (point,) = image_quality_vs_nfe(
            zm.model,
            zm.transport,
            metric,
            [2],
            label=name,
            time_points_for=even_time_points,
            rho=zm.consistency_ratio,
        )
        assert point.nfe == 2 and point.settings["time_points"] == [0.999, 0.4995]
        values[name] = point.metrics[METRIC_NAME]
    assert values["digits-linear-lam1"] < 0.5 * values["digits-linear-lam0"], values
    table = format_quality_table([])
    assert table.startswith("| curve |")


def test_zoo_metadata_and_sampling_overrides():
    zm = load_image_model("digits-linear-lam1")
    assert zm.metadata["parent"] == "digits-linear-lam0" and zm.consistency_ratio == 1.0
    assert zm.image_shape == (1, 8, 8) and zm.dataset == "digits"
    assert not any(p.requires_grad for p in zm.model.parameters())
    assert zm.sample(torch.arange(3)).nfe == len(zm.sampling["time_points"])
    out = zm.sample(torch.arange(3), nfe=3, kappa=0.5)
    assert out.nfe == 3 and out.times.tolist() == pytest.approx([0.999, 0.666, 0.333, 0.0])
    assert zm.sample(torch.arange(3), steps=2).nfe == 2
    assert json.dumps(zm.metadata)
    assert load_classifier().feature_dim == 64


def test_missing_unknown_and_corrupt(tmp_path):
    with pytest.raises(KeyError, match="Known"):
        load_image_model("nope")
    with pytest.raises(
        CheckpointError, match="python -m ucgm_lab.zoo build --only digits-linear-lam0"
    ):
        load_image_model("digits-linear-lam0", tmp_path)
    with pytest.raises(CheckpointError, match="--only digits-classifier"):
        load_classifier(tmp_path)
    (tmp_path / "digits-linear-lam0.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_image_model("digits-linear-lam0", tmp_path)


def test_cli_lists_the_zoo(capsys):
    main(["list"])
    out = capsys.readouterr().out
    assert "built    digits-classifier" in out and "digits-linear-lam1" in out


def test_even_grid_is_the_explorers_even_schedule():
    from ucgm_lab.widgets import SCHEDULES

    for n in (1, 2, 5, 16):
        assert even_time_points(n) == pytest.approx(
            SCHEDULES["even"].time_points(n)[:-1].tolist(), abs=1e-6
        )
    with pytest.raises(ValueError, match="positive"):
        even_time_points(0)
