import builtins

import numpy as np
import pytest
import scipy.linalg
import torch

from scale.fid import (
    FeatureMoments,
    PixelFeatures,
    ReferenceStats,
    fid_from_moments,
    load_inception,
)
from ucgm_lab.metrics.frechet import frechet_distance


def _scipy_fid(mu1, s1, mu2, s2):
    """The classic FID formula with scipy's sqrtm (pytorch-fid / torch-fidelity style)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_known_gaussians():
    """Closed forms: commuting (diagonal) covariances and a mean shift; scipy for general ones."""
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(exact, rel=1e-10)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _scipy_fid(mu1, s1, mu2, s2), rel=1e-8
    )
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    # Same covariance, shifted mean: FD = |mu1 - mu2|^2.
    assert frechet_distance(mu1, s1, mu2, s1) == pytest.approx(
        float(((mu1 - mu2) ** 2).sum()), rel=1e-8
    )


@pytest.mark.parametrize("shift_kind", ["zeros", "near", "far"])
def test_moments_summed_over_processes_equal_numpy_on_pooled_features(shift_kind):
    rng = np.random.default_rng(1)
    d = 5
    # Float32 features (like Inception's), far from the origin.
    features = (
        (rng.normal(size=(103, d)) @ rng.normal(size=(d, d)) + 40.0)
        .astype(np.float32)
        .astype(np.float64)
    )
    shift = {"zeros": np.zeros(d), "near": features.mean(0) + 0.1, "far": np.full(d, -100.0)}[
        shift_kind
    ]
    # Three "processes" with uneven shares, each in uneven batches.
    shares = [features[:50], features[50:51], features[51:]]
    parts = []
    for share in shares:
        m = FeatureMoments(shift)
        for start in range(0, len(share), 7):
            m.update(torch.from_numpy(share[start : start + 7]).float())
        parts.append(m)
    packed = [torch.cat([p.count.reshape(1), p.total, p.scatter.flatten()]) for p in parts]
    summed = sum(packed)
    for p, own in zip(parts, packed, strict=True):

        def all_reduce(tensor, reduction, own=own):
            assert reduction == "sum" and torch.equal(tensor, own)
            return summed.clone()

        p.all_reduce(all_reduce)
    mu, sigma = parts[0].stats()
    np.testing.assert_allclose(mu, features.mean(0), rtol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(features, rowvar=False), rtol=1e-8, atol=1e-8)
    reference = ReferenceStats(features.mean(0) + 1.0, np.cov(features, rowvar=False))
    assert fid_from_moments(parts[1], reference) == pytest.approx(float(d), rel=1e-6)


def test_reference_stats_file_round_trip_and_errors(tmp_path):
    ref = ReferenceStats(np.arange(3.0), np.eye(3))
    ref.save(tmp_path / "ref.npz")
    loaded = ReferenceStats.load(tmp_path / "ref.npz")
    np.testing.assert_array_equal(loaded.mu, ref.mu)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        ReferenceStats.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
    with pytest.raises(ValueError, match="bad.npz must be a .npz holding arrays 'mu'"):
        ReferenceStats.load(tmp_path / "bad.npz")


def test_pixel_features_shape():
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    feats = PixelFeatures(4)(images)
    assert feats.shape == (2, 48) and 0 <= float(feats.min()) and float(feats.max()) <= 1


def test_missing_inception_weights_is_a_clear_error(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="inception_weights is not set.*weights-inception-2015-12-05"
    ):
        load_inception(None)
    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        load_inception(tmp_path / "nowhere.pth")


def test_missing_torch_fidelity_is_a_clear_error(tmp_path, monkeypatch):
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"not used")
    real_import = builtins.__import__

    def no_fidelity(name, *args, **kwargs):
        if name.startswith("torch_fidelity"):
            raise ModuleNotFoundError("No module named 'torch_fidelity'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fidelity)
    with pytest.raises(ImportError, match=r"FID needs torch-fidelity \(pip install"):
        load_inception(weights)


@pytest.mark.parametrize("which", ["mu", "sigma"])
def test_reference_stats_with_nan_are_refused(tmp_path, which):
    # issue 24: a NaN mu loaded and every FID became NaN
    arrays = {"mu": np.arange(3.0), "sigma": np.eye(3)}
    arrays[which][1] = np.nan
    ReferenceStats(**arrays).save(tmp_path / "ref.npz")  # sealed: the digest is not the problem
    with pytest.raises(ValueError, match=f"ref.npz: {which} contains NaN or infinite values"):
        ReferenceStats.load(tmp_path / "ref.npz")


def test_reference_stats_carry_a_digest_and_an_unsealed_file_needs_the_opt_out(tmp_path):
    """Tampering (issue 24): every file the project writes carries its own digest."""
    ref = ReferenceStats(np.arange(3.0), np.eye(3))
    ref.save(tmp_path / "ref.npz")
    with np.load(tmp_path / "ref.npz") as data:
        assert {"mu", "sigma", "sha256"} <= set(data.files)
        edited = {"mu": data["mu"] + 1.0, "sigma": data["sigma"], "sha256": data["sha256"]}
    np.savez(tmp_path / "edited.npz", **edited)
    with pytest.raises(ValueError, match="edited.npz fails its digest"):
        ReferenceStats.load(tmp_path / "edited.npz")
    np.savez(tmp_path / "adm.npz", mu=ref.mu, sigma=ref.sigma)  # from elsewhere: no digest
    with pytest.raises(ValueError, match=r"adm.npz carries no digest .*reference_stats_unverified"):
        ReferenceStats.load(tmp_path / "adm.npz")
    loaded = ReferenceStats.load(tmp_path / "adm.npz", allow_unverified=True)
    np.testing.assert_array_equal(loaded.sigma, ref.sigma)
