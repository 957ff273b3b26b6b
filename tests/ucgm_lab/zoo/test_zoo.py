import pytest
import torch

from toy_data import sample_2d
from ucgm_lab import sample
from ucgm_lab.metrics import wasserstein2
from ucgm_lab.training import CheckpointError
from ucgm_lab.zoo import ZOO_SPECS, available, build, load

# Quality thresholds (exact W2 at 2000 samples; the data-vs-data floor is about 0.10 on
# checkerboard and 0.07 on moons): a zoo model must come within these at its recommended settings.
THRESHOLDS = {"lam0": 0.16, "lam0.5": 0.30, "lam1": 0.45, "trigflow": 0.18, "cond": 0.25}


def _threshold(name: str) -> float:
    for key in ("lam0.5", "lam1", "trigflow", "cond"):
        if key in name:
            return THRESHOLDS[key]
    return THRESHOLDS["lam0"]


def test_every_spec_is_built_and_in_the_repository():
    assert sorted(available()) == sorted(s.name for s in ZOO_SPECS)


@pytest.mark.parametrize("name", [s.name for s in ZOO_SPECS])
def test_zoo_model_quality(name):
    zm = load(name)
    n = 2000
    ref = sample_2d(zm.dataset, n, seed=1234)
    y = ref.labels if getattr(zm.model, "num_classes", None) else None
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    out = sample(
        zm.model,
        noise,
        zm.transport,
        y=y,
        generator=torch.Generator().manual_seed(1),
        **zm.sampling,
    )
    w2 = wasserstein2(out.sample, ref.points)
    assert w2 < _threshold(name), f"{name}: W2 {w2:.3f}"


def test_build_and_load_round_trip(tmp_path):
    paths = build(["moons-linear-lam1"], tmp_path, steps_scale=0.002, progress=False)
    assert [p.name for p in paths] == [
        "moons-linear-lam0.safetensors",
        "moons-linear-lam1.safetensors",
    ]
    zm = load("moons-linear-lam1", tmp_path)
    assert zm.metadata["parent"] == "moons-linear-lam0" and zm.consistency_ratio == 1.0
    assert not any(p.requires_grad for p in zm.model.parameters())


def test_missing_unknown_and_corrupt(tmp_path):
    with pytest.raises(KeyError, match="Known"):
        load("nope")
    with pytest.raises(
        CheckpointError, match="python -m ucgm_lab.zoo build --only moons-linear-lam0"
    ):
        load("moons-linear-lam0", tmp_path)
    (tmp_path / "moons-linear-lam0.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load("moons-linear-lam0", tmp_path)
