"""The digits-quality benchmark's curves: each samples something the others do not."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import images_quality  # noqa: E402

from ucgm_lab.schedules import get_schedule  # noqa: E402

NFE = (1, 2, 4, 8, 16, 32)


def _same_sampling(a, b) -> bool:
    """Same model, same settings other than the grid, and grids equal up to 1e-5 at every NFE.

    The tolerance: the even grid passed as points (rounded to 6 decimals) and the default
    schedule's grid differ in their last digits only, which changes no sample the table shows.
    """
    (_, model_a, settings_a, even_a), (_, model_b, settings_b, even_b) = a, b
    drop = {"schedule"}
    if model_a != model_b or {k: v for k, v in settings_a.items() if k not in drop} != {
        k: v for k, v in settings_b.items() if k not in drop
    }:
        return False
    for n in NFE:
        ga = images_quality.curve_grid(settings_a, even_a, n)
        gb = images_quality.curve_grid(settings_b, even_b, n)
        if ga.shape != gb.shape or not torch.allclose(ga, gb, rtol=0, atol=1e-5):
            return False
    return True


def test_no_two_curves_sample_the_same_way():
    curves = images_quality.CURVES
    for i, a in enumerate(curves):
        for b in curves[i + 1 :]:
            assert not _same_sampling(a, b), (
                f"curves {a[0]!r} and {b[0]!r} use the same model, settings and time grids"
            )


def test_the_uniform_curve_samples_the_uniform_grid():
    (curve,) = [c for c in images_quality.CURVES if "uniform" in c[0]]
    _, _, settings, even = curve
    for n in (2, 4):
        grid = images_quality.curve_grid(settings, even, n)
        expected = get_schedule("uniform").time_points(n).to(grid.dtype)
        torch.testing.assert_close(grid, expected, rtol=0, atol=1e-12)
        assert abs(grid[-2].item() - 0.001) < 1e-9, "the uniform grid's last point is t = 0.001"
