import math

import numpy as np
import pytest
import torch

from ucgm_lab.networks import ClassEmbedding, SinusoidalTimeEmbedding, sinusoidal_embedding


def test_sinusoidal_matches_direct_formula():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    dim, scale, max_period = 8, 1000.0, 10000.0
    out = sinusoidal_embedding(t, dim, scale=scale, max_period=max_period).numpy()
    expected = np.zeros((4, dim))
    for b, tb in enumerate(t.tolist()):
        for k in range(dim // 2):
            freq = max_period ** (-k / (dim // 2))
            expected[b, k] = math.cos(scale * tb * freq)
            expected[b, k + dim // 2] = math.sin(scale * tb * freq)
    np.testing.assert_allclose(out, expected, atol=1e-9)
    assert out.shape == (4, dim)


def test_time_zero_gives_cos_one_sin_zero_and_module_matches_function():
    emb = SinusoidalTimeEmbedding(16)
    out = emb(torch.zeros(3))
    assert out.dtype == torch.float32
    assert torch.equal(out[:, :8], torch.ones(3, 8))
    assert torch.equal(out[:, 8:], torch.zeros(3, 8))
    t = torch.rand(5)
    assert torch.equal(emb(t), sinusoidal_embedding(t, 16))
    assert not any(True for _ in emb.parameters())


@pytest.mark.parametrize("dim", [0, 7, -2])
def test_bad_embedding_dim(dim):
    with pytest.raises(ValueError, match="positive even"):
        sinusoidal_embedding(torch.rand(2), dim)
    with pytest.raises(ValueError, match="positive even"):
        SinusoidalTimeEmbedding(dim)


def test_class_embedding_has_null_row_last():
    emb = ClassEmbedding(num_classes=10, dim=4)
    assert emb.null_class == 10
    assert emb.table.weight.shape == (11, 4)
    y = torch.tensor([0, 3, 10])
    assert torch.equal(emb(y), emb.table.weight[[0, 3, 10]])
    with pytest.raises(ValueError, match="num_classes"):
        ClassEmbedding(0, 4)
