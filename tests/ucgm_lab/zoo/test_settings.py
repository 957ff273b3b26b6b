import json

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.schedules import KumaraswamySchedule
from ucgm_lab.search import SamplerSettings
from ucgm_lab.zoo import load
from ucgm_lab.zoo.settings import (
    SETTINGS_PATH,
    SettingsFileError,
    load_settings_file,
    searched_settings,
    settings_to_json,
)

NAME = "checkerboard-linear-lam0"


def write(tmp_path, content) -> str:
    path = tmp_path / "settings.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_shipped_file_is_valid_and_covers_the_lambda0_checkerboard():
    table = load_settings_file(SETTINGS_PATH)
    assert set(table[NAME]) >= {2, 4, 8, 16, 32}
    kwargs = searched_settings(NAME, 8)
    out = sample(load(NAME).model, torch.randn(16, 2), "linear", **kwargs)
    assert out.nfe == 8  # the zoo's settings use the whole budget (exact_nfe)
    assert searched_settings(NAME, 7) is None
    assert searched_settings("no-such-model", 8) is None


def test_sample_with_nfe_uses_the_stored_settings_and_makes_that_many_evaluations():
    zm = load(NAME)
    stored = searched_settings(NAME, 8)
    out = zm.sample(64, nfe=8, seed=3)
    assert out.nfe == 8
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    direct = sample(
        zm.model, noise, zm.transport, generator=torch.Generator().manual_seed(4), **stored
    )
    torch.testing.assert_close(out.sample, direct.sample)
    # not the recommended settings (32 steps) and not plain Euler with 8 steps
    assert zm.settings(nfe=8) == stored and zm.settings() == zm.sampling
    euler = sample(zm.model, noise, zm.transport, steps=8)
    assert not torch.allclose(out.sample, euler.sample)
    # overrides go on top; a budget without stored settings falls back to steps = nfe
    assert zm.settings(nfe=8, rho=0.5)["rho"] == 0.5
    assert zm.sample(8, nfe=7).nfe == 7
    assert zm.sample(8).nfe == zm.sampling["steps"]
    with pytest.raises(ValueError, match="positive number of samples"):
        zm.sample(0)


def test_round_trip_of_searched_settings(tmp_path):
    grid = KumaraswamySchedule(1.2, 0.9, 0.7, gap_data=0.0)
    kinds = [
        SamplerSettings(nfe=8, steps=8, schedule=grid, multistep="velocity"),
        SamplerSettings(nfe=6, steps=6, schedule=grid, multistep="noise", corrector=True),
        SamplerSettings(nfe=4, steps=4, schedule=grid, kappa=0.3, lower_order_final=True),
        SamplerSettings(nfe=2, time_points=(0.9, 0.4), kappa=0.5, rho="auto"),
        SamplerSettings(nfe=7, order=2, correction="data", steps=7, schedule=grid, rho=0.2),
    ]
    content = {"m": {str(s.nfe): settings_to_json(s) for s in kinds}}
    path = write(tmp_path, content)
    for s in kinds:
        assert searched_settings("m", s.nfe, path) == s.as_kwargs()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a valid JSON"),
        ('{"m": {"8": {"steps": 8, "kappa": NaN}}}', "not a valid JSON"),
        ([1, 2], "must hold a JSON object"),
        ({"m": [1]}, "model 'm' must map NFE budgets"),
        ({"m": {"eight": {"steps": 8}}}, "positive integers"),
        ({"m": {"8": {"steps": 8, "eval": "x"}}}, r"unknown key\(s\) \['eval'\]"),
        ({"m": {"8": {"steps": 8, "kappa": 2}}}, "'kappa' must be a number in"),
        ({"m": {"8": {"steps": 8, "rho": "sde"}}}, "'rho' must be"),
        ({"m": {"8": {"steps": 8, "multistep": "rk4"}}}, "'multistep' must be one of"),
        ({"m": {"8": {"steps": 8, "multistep": "noise", "corrector": 1}}}, "true or false"),
        ({"m": {"8": {"steps": 8, "corrector": True}}}, "needs a 'multistep' form"),
        (
            {"m": {"8": {"steps": 8, "multistep": "noise", "corrector": True, "rho": 0.5}}},
            "and 'rho' 0",
        ),
        ({"m": {"8": {"steps": 8, "lower_order_final": True}}}, "needs a 'multistep' form or"),
        ({"m": {"8": {"steps": 8, "kappa": 0.2, "lower_order_final": "y"}}}, "true or false"),
        ({"m": {"8": {"kappa": 0.1}}}, "exactly one of 'steps'"),
        ({"m": {"8": {"steps": 8, "schedule": {"a": 1}}}}, "'schedule' must be an object"),
        ({"m": {"8": {"steps": 9}}}, "9 network evaluations, more than the budget 8"),
        ({"m": {"2": {"time_points": [0.3, 0.9]}}}, "time grid is invalid"),
    ],
)
def test_bad_files_are_refused_with_the_model_budget_and_key(tmp_path, content, match):
    path = write(tmp_path, content)
    with pytest.raises(SettingsFileError, match=match):
        searched_settings("m", 8, path)


def test_bad_arguments_and_a_missing_file(tmp_path):
    assert searched_settings(NAME, 8, tmp_path / "none.json") is None
    with pytest.raises(ValueError, match="positive integer"):
        searched_settings(NAME, 0)
    with pytest.raises(TypeError, match="zoo name"):
        searched_settings(3, 8)


def test_the_cache_follows_the_file(tmp_path):
    path = write(tmp_path, {"m": {"4": {"steps": 4}}})
    assert searched_settings("m", 4, path) == {"steps": 4}
    path.write_text(json.dumps({"m": {"4": {"steps": 3, "kappa": 0.25}}}))
    assert searched_settings("m", 4, path) == {"steps": 3, "kappa": 0.25}
