import math

import numpy as np
import pytest
import torch

from toy_data.two_d import (
    class_weights,
    list_2d_datasets,
    num_classes,
    sample_2d,
    sample_2d_class,
)

NAMES = ["moons", "circles", "swiss_roll", "spirals", "checkerboard", "8gaussians",
         "gaussian_mixture"]  # fmt: skip
EXPECTED_CLASSES = {
    "moons": 2,
    "circles": 2,
    "swiss_roll": 4,
    "spirals": 2,
    "checkerboard": 8,
    "8gaussians": 8,
    "gaussian_mixture": 4,
}


def test_list_2d_datasets():
    assert list_2d_datasets() == NAMES


def test_num_classes():
    for name, k in EXPECTED_CLASSES.items():
        assert num_classes(name) == k
        assert num_classes(name.upper()) == k


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_labels_and_scale(name):
    s = sample_2d(name, 4000, seed=0)
    assert s.points.shape == (4000, 2) and s.points.dtype == torch.float32
    assert s.labels is not None
    assert s.labels.shape == (4000,) and s.labels.dtype == torch.int64
    assert torch.isfinite(s.points).all()
    k = EXPECTED_CLASSES[name]
    assert set(s.labels.unique().tolist()) == set(range(k))
    # Documented scale: roughly [-1.5, 1.5]^2, centred, std 0.45 .. 0.95 per coordinate.
    assert s.points.abs().max() < 2.0
    assert (s.points.abs() > 1.8).float().mean() < 0.005
    assert s.points.mean(0).abs().max() < 0.1
    std = s.points.std(0)
    assert ((std > 0.45) & (std < 0.95)).all(), std


@pytest.mark.parametrize("name", NAMES)
def test_seed_reproducibility_and_generator_equivalence(name):
    a = sample_2d(name, 300, seed=123)
    b = sample_2d(name, 300, seed=123)
    c = sample_2d(name, 300, seed=124)
    d = sample_2d(name, 300, generator=torch.Generator().manual_seed(123))
    assert torch.equal(a.points, b.points) and torch.equal(a.labels, b.labels)
    assert torch.equal(a.points, d.points) and torch.equal(a.labels, d.labels)
    assert not torch.equal(a.points, c.points)


def test_seeded_sampling_leaves_global_rng_untouched():
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    sample_2d("moons", 100, seed=1)
    sample_2d_class("spirals", 100, 1, seed=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_unseeded_sampling_uses_global_torch_rng():
    torch.manual_seed(7)
    a = sample_2d("circles", 50)
    torch.manual_seed(7)
    b = sample_2d("circles", 50)
    assert torch.equal(a.points, b.points)


def test_generator_advances_between_calls():
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(sample_2d("moons", 50, generator=g).points,
                           sample_2d("moons", 50, generator=g).points)  # fmt: skip


def test_name_is_case_insensitive():
    assert torch.equal(sample_2d("Swiss_Roll", 20, seed=0).points,
                       sample_2d("swiss_roll", 20, seed=0).points)  # fmt: skip


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="known data sets") as info:
        sample_2d("banana", 10)
    for name in NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="banana"):
        num_classes("banana")


@pytest.mark.parametrize("n", [0, -3])
def test_non_positive_n_raises_value_error(n):
    with pytest.raises(ValueError, match="positive int"):
        sample_2d("moons", n)


@pytest.mark.parametrize("n", [2.0, "5", True, None])
def test_non_int_n_raises_type_error(n):
    with pytest.raises(TypeError, match="positive int"):
        sample_2d("moons", n)


def test_seed_and_generator_together_rejected():
    with pytest.raises(ValueError, match="not both"):
        sample_2d("moons", 5, seed=0, generator=torch.Generator())


def test_bad_seed_type():
    with pytest.raises(TypeError, match="seed"):
        sample_2d("moons", 5, seed=1.5)


def test_class_weights():
    for name in NAMES:
        w = class_weights(name)
        assert w.shape == (EXPECTED_CLASSES[name],)
        assert torch.isclose(w.sum(), torch.tensor(1.0))
    assert torch.allclose(class_weights("checkerboard"), torch.full((8,), 0.125))
    assert torch.allclose(class_weights("gaussian_mixture"),
                          torch.tensor([0.20, 0.25, 0.35, 0.20]))  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_label_frequencies_match_class_weights(name):
    n = 20000
    labels = sample_2d(name, n, seed=5).labels
    freq = torch.bincount(labels, minlength=num_classes(name)).double() / n
    w = class_weights(name).double()
    tol = 5 * torch.sqrt(w * (1 - w) / n)
    assert ((freq - w).abs() < tol).all(), (freq, w)


# --- geometry of each data set (independent of the implementation) ---------------------


def test_moons_geometry():
    s = sample_2d("moons", 4000, seed=0)
    p, y = s.points, s.labels
    upper, lower = p[y == 0], p[y == 1]
    # Upper moon: unit half circle centred (-0.5, -0.25), above its centre.
    r_up = (upper - torch.tensor([-0.5, -0.25])).norm(dim=1)
    r_lo = (lower - torch.tensor([0.5, 0.25])).norm(dim=1)
    assert (r_up - 1).abs().mean() < 0.06 and (r_lo - 1).abs().mean() < 0.06
    assert (upper[:, 1] > -0.25 - 0.2).all() and (lower[:, 1] < 0.25 + 0.2).all()


def test_circles_geometry():
    s = sample_2d("circles", 4000, seed=0)
    r = s.points.norm(dim=1)
    assert abs(r[s.labels == 0].median() - 1.0) < 0.02
    assert abs(r[s.labels == 1].median() - 0.5) < 0.02
    assert (r[s.labels == 0] - 1.0).std() < 0.07


def test_eight_gaussians_geometry():
    s = sample_2d("8gaussians", 8000, seed=0)
    for k in range(8):
        pts = s.points[s.labels == k]
        centre = torch.tensor([math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)])
        assert (pts.mean(0) - centre).norm() < 0.02
        assert ((pts.std(0) - 0.1).abs() < 0.01).all()


def test_checkerboard_cells_match_labels():
    s = sample_2d("checkerboard", 4000, seed=0)
    cell = torch.floor((s.points + 1.5) / 0.75).long()  # (col, row) in 0..3
    col, row = cell[:, 0], cell[:, 1]
    assert ((col >= 0) & (col <= 3) & (row >= 0) & (row <= 3)).all()
    assert ((col + row) % 2 == 0).all()  # only dark cells are occupied
    assert torch.equal(row * 2 + col // 2, s.labels)  # row-major index among dark cells
    # Uniform within cells: marginals uniform on [-1.5, 1.5] -> std 3 / sqrt(12).
    assert ((s.points.std(0) - 3 / math.sqrt(12)).abs() < 0.03).all()


def _spiral_arm(sign: float) -> torch.Tensor:
    theta = torch.linspace(0, 3 * math.pi, 3000)
    r = 1.4 * theta / (3 * math.pi)
    return sign * torch.stack([-r * torch.cos(theta), r * torch.sin(theta)], dim=1)


def test_spirals_points_lie_on_their_arm():
    s = sample_2d("spirals", 2000, seed=0)
    d0 = torch.cdist(s.points, _spiral_arm(1.0)).min(dim=1).values
    d1 = torch.cdist(s.points, _spiral_arm(-1.0)).min(dim=1).values
    own = torch.where(s.labels == 0, d0, d1)
    other = torch.where(s.labels == 0, d1, d0)
    assert own.mean() < 0.06
    assert (own < other).float().mean() > 0.97


def test_swiss_roll_label_is_position_along_roll():
    s = sample_2d("swiss_roll", 4000, seed=0)
    scale = 1.4 / (4.5 * math.pi)
    origin = -torch.tensor([2 * scale, 2 * scale / (3 * math.pi)])  # roll centre after centring
    r = (s.points - origin).norm(dim=1)
    # Class c covers t in 1.5 pi (1 + [c, c + 1] / 2), i.e. radius in scale * t.
    for c in range(4):
        lo = scale * 1.5 * math.pi * (1 + c / 2)
        hi = scale * 1.5 * math.pi * (1 + (c + 1) / 2)
        rc = r[s.labels == c]
        assert ((rc > lo - 0.25) & (rc < hi + 0.25)).all()
        assert ((rc > lo - 0.05) & (rc < hi + 0.05)).float().mean() > 0.9
        assert abs(rc.median() - (lo + hi) / 2) < 0.05


def test_gaussian_mixture_class_means():
    s = sample_2d("gaussian_mixture", 8000, seed=0)
    means = torch.tensor([[-0.8, 0.6], [0.8, 0.6], [0.0, -0.7], [0.0, 0.2]])
    for k in range(4):
        assert (s.points[s.labels == k].mean(0) - means[k]).norm() < 0.03


# --- class-conditional sampling ----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_sample_2d_class_matches_class_conditional(name):
    joint = sample_2d(name, 16000, seed=1)
    for c in range(num_classes(name)):
        cond = sample_2d_class(name, 1000, c, seed=2)
        assert cond.points.shape == (1000, 2) and cond.points.dtype == torch.float32
        assert cond.labels.dtype == torch.int64 and (cond.labels == c).all()
        ref = joint.points[joint.labels == c]
        assert (cond.points.mean(0) - ref.mean(0)).abs().max() < 0.08
        assert (cond.points.std(0) - ref.std(0)).abs().max() < 0.08


def test_sample_2d_class_is_seeded():
    a = sample_2d_class("8gaussians", 10, 3, seed=0)
    b = sample_2d_class("8gaussians", 10, 3, seed=0)
    assert torch.equal(a.points, b.points)


@pytest.mark.parametrize("class_id", [-1, 2, 100])
def test_sample_2d_class_bad_class_id(class_id):
    with pytest.raises(ValueError, match=r"allowed class ids are 0\.\.1"):
        sample_2d_class("moons", 10, class_id)


def test_sample_2d_class_bad_types():
    with pytest.raises(TypeError, match="class_id"):
        sample_2d_class("moons", 10, 1.0)
    with pytest.raises(ValueError, match="positive int"):
        sample_2d_class("moons", 0, 1)
    with pytest.raises(ValueError, match="known data sets"):
        sample_2d_class("nope", 10, 0)
