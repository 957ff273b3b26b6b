"""The named sampling grids: one definition, read by the sampler, the widgets and the peers."""

import pytest
import torch

import ucgm_lab
from ucgm_lab.schedules import SCHEDULES, KumaraswamySchedule, get_schedule


def test_named_grids_are_the_documented_schedules():
    assert get_schedule("even") == KumaraswamySchedule(gap_data=0.0)
    assert get_schedule("uniform") == KumaraswamySchedule()
    assert get_schedule("auto") == KumaraswamySchedule(1.17, 0.8, 1.1)
    assert get_schedule("open") is get_schedule("even")  # the peers' name for the same grid
    assert get_schedule("AUTO") is SCHEDULES["auto"]
    assert set(SCHEDULES) == {"even", "uniform", "auto"}  # widget menus list these three
    assert ucgm_lab.get_schedule is get_schedule


def test_even_grid_values():
    # u = 0.001 + i * 0.999 / 2, t = 1 - u, then 0: {0.999, 0.4995, 0}.
    torch.testing.assert_close(
        get_schedule("even").time_points(2), torch.tensor([0.999, 0.4995, 0.0], dtype=torch.float64)
    )


def test_unknown_schedule_names_the_known_ones():
    with pytest.raises(ValueError, match="'even'.*'uniform'.*'auto'.*'open'"):
        get_schedule("linear")
    with pytest.raises(TypeError, match="string"):
        get_schedule(3)


def test_every_user_reads_the_same_objects():
    import ucgm_lab.widgets

    assert ucgm_lab.widgets.SCHEDULES is SCHEDULES


def test_sampler_accepts_the_alias():
    model = lambda x, t, y=None: torch.zeros_like(x)  # noqa: E731
    a = ucgm_lab.sample(model, torch.ones(3, 2), "linear", steps=3, schedule="open")
    b = ucgm_lab.sample(model, torch.ones(3, 2), "linear", steps=3, schedule="even")
    torch.testing.assert_close(a.times, b.times)
    with pytest.raises(ValueError, match="schedule must be"):
        ucgm_lab.sample(model, torch.ones(3, 2), "linear", steps=3, schedule="nope")
