"""scale/sample.py end to end on the tiny model: class-balanced, distributed, FID plumbing."""

import json

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState

from scale import sample as sample_script
from scale.config import ConfigError
from scale.fid import ReferenceStats
from tests.scale.helpers import accelerate_launch, tiny_autoencoder

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "tiny_vae"
    tiny_autoencoder(path)
    return path


def _args(run, vae, out, *extra):
    args = ["--config", str(run / "config.yaml")]
    for item in (f"autoencoder.pretrained={vae}", f"evaluation.output_dir={out}", *extra):
        args += ["--override", item]
    return args


def test_class_balanced_indices_cover_every_image_once():
    parts = [sample_script.sample_indices(10, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(10))
    noise = sample_script.initial_noise([4, 7], (4, 2, 2), seed=1)
    np.testing.assert_array_equal(
        noise[1].numpy(), sample_script.initial_noise([7], (4, 2, 2), seed=1)[0].numpy()
    )


@pytest.mark.slow
def test_sampling_end_to_end_with_pixel_features(straight_run, vae, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first = tmp_path / "first"
    assert sample_script.main(_args(straight_run, vae, first, "evaluation.save_images=3")) == 0
    result = json.loads((first / "results.json").read_text())
    assert result["nfe"] == 4 and result["feature_count"] == 8 and "fid" not in result
    assert result["checkpoint"].endswith("ema.safetensors") and result["step"] == 4
    assert result["precision"] == "fp32"  # the default, whatever training.mixed_precision says
    assert (first / "grid.png").is_file() and len(list((first / "images").glob("*.png"))) == 3
    # The first run's statistics as the reference: the same images give FID 0.
    ref = first / "features_stats.npz"
    second = tmp_path / "second"
    sample_script.main(_args(straight_run, vae, second, f"evaluation.reference_stats={ref}"))
    again = json.loads((second / "results.json").read_text())
    assert again["fid"] == pytest.approx(0.0, abs=1e-6)
    # Other images (another seed, other sampler settings) are farther away.
    third = tmp_path / "third"
    sample_script.main(
        _args(straight_run, vae, third, f"evaluation.reference_stats={ref}", "sampling.seed=5")
    )
    assert json.loads((third / "results.json").read_text())["fid"] > 1e-4


@pytest.mark.slow
def test_two_processes_give_the_same_statistics(straight_run, vae, tmp_path):
    single = tmp_path / "single"
    sample_script.main(_args(straight_run, vae, single))
    double = tmp_path / "double"
    result = accelerate_launch("sample.py", _args(straight_run, vae, double))
    assert result.returncode == 0, result.stderr[-6000:]
    report = json.loads((double / "results.json").read_text())
    assert report["num_processes"] == 2 and report["feature_count"] == 8
    a = ReferenceStats.load(single / "features_stats.npz")
    b = ReferenceStats.load(double / "features_stats.npz")
    np.testing.assert_allclose(b.mu, a.mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.sigma, a.sigma, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_missing_inception_weights_fail_before_sampling(straight_run, vae, tmp_path):
    out = tmp_path / "eval"
    with pytest.raises(FileNotFoundError, match="inception_weights is not set"):
        sample_script.main(
            [*_args(straight_run, vae, out, "evaluation.features=inception"), "--debug"]
        )
    with pytest.raises(FileNotFoundError, match="ref.npz"):
        sample_script.main(
            [
                *_args(
                    straight_run, vae, out, f"evaluation.reference_stats={tmp_path / 'ref.npz'}"
                ),
                "--debug",
            ]
        )
    assert not out.exists()


@pytest.mark.slow
def test_sampling_needs_an_autoencoder(straight_run, tmp_path):
    with pytest.raises(ConfigError, match="autoencoder section"):
        sample_script.main(["--config", str(straight_run / "config.yaml"), "--debug"])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sampling_precision_is_fp32_unless_bf16_is_asked(
    straight_run, vae, tmp_path, monkeypatch, precision
):
    """The network samples outside autocast by default (training ran with mixed_precision
    "no" here, but a bf16 run's config gives the same); evaluation.precision=bf16 autocasts."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = []
    real = sample_script.generate_latents

    def recording(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_script, "generate_latents", recording)
    out = tmp_path / precision
    args = _args(straight_run, vae, out, f"evaluation.precision={precision}")
    args += ["--override", "training.mixed_precision=bf16", "--debug"]
    # accelerate keeps one process-wide state; a real run is one process with one precision
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        assert sample_script.main(args) == 0
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert json.loads((out / "results.json").read_text())["precision"] == precision
    assert set(seen) == ({False} if precision == "fp32" else {torch.bfloat16})
