import sys
import types

import pytest
import torch

from ucgm_lab.metrics import frechet_distance_from_stats, gaussian_stats
from ucgm_lab.metrics.fid import INCEPTION_WEIGHTS_ENV, fid, resolve_inception_weights, to_uint8
from ucgm_lab.metrics.inception import INCEPTION_WEIGHTS_FILE


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)


def _images(n=20, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_missing_weights_name_the_file_and_how_to_point_to_it(no_env, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        fid(_images(), _images(seed=1))
    msg = str(info.value)
    assert INCEPTION_WEIGHTS_FILE in msg and INCEPTION_WEIGHTS_ENV in msg and "weights=" in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fid(_images(), _images(seed=1), weights=tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match=INCEPTION_WEIGHTS_FILE):
        resolve_inception_weights(tmp_path)  # a folder without the file


def test_weights_from_the_environment_or_a_folder(monkeypatch, tmp_path):
    path = tmp_path / INCEPTION_WEIGHTS_FILE
    path.write_bytes(b"")
    assert resolve_inception_weights(tmp_path) == path
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(path))
    assert resolve_inception_weights() == path


def test_missing_package_names_torch_fidelity(no_env, tmp_path, monkeypatch):
    path = tmp_path / INCEPTION_WEIGHTS_FILE
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    with pytest.raises(ImportError, match="pip install 'torch-fidelity"):
        fid(_images(), _images(seed=1), weights=path)


class _FakeInception(torch.nn.Module):
    """Stands in for torch-fidelity's extractor: uint8 (B, 3, H, W) -> ([B, 16],) (2048 in reality)."""

    def __init__(self, name, features, feature_extractor_weights_path):
        super().__init__()
        assert name == "inception-v3-compat" and features == ["2048"]
        self.weights = feature_extractor_weights_path
        self.proj = torch.randn(3 * 4 * 4, 16, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        return (pooled @ self.proj,)


def test_fid_plumbing_with_a_stand_in_extractor(no_env, tmp_path, monkeypatch):
    path = tmp_path / INCEPTION_WEIGHTS_FILE
    path.write_bytes(b"")
    package = types.ModuleType("torch_fidelity")
    module = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    module.FeatureExtractorInceptionV3 = _FakeInception
    monkeypatch.setitem(sys.modules, "torch_fidelity", package)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", module)
    a, b = _images(30), _images(30, seed=1)
    value = fid(a, b, weights=path, batch_size=7)
    fake = _FakeInception("inception-v3-compat", ["2048"], str(path))
    fa, fb = fake(to_uint8(a))[0], fake(to_uint8(b))[0]
    assert value == pytest.approx(
        frechet_distance_from_stats(gaussian_stats(fa), gaussian_stats(fb)), rel=1e-6
    )
    # precomputed reference statistics give the same number; identical sets give ~0
    assert fid(a, gaussian_stats(fb), weights=path) == pytest.approx(value, rel=1e-6)
    assert fid(a, a, weights=path) == pytest.approx(0.0, abs=1e-6)


def test_to_uint8_maps_the_pixel_range_and_grey_to_rgb():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    out = to_uint8(x)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.uint8
    assert out[0, 0].flatten().tolist() == [0, 128, 255, 255]
    with pytest.raises(ValueError, match="shape"):
        to_uint8(torch.zeros(1, 2, 4, 4))
