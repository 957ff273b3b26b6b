"""The zoo passes the project's own checks: ``time_sensitivity``, and ``available`` agrees with ``load``."""

import pytest
import torch

from ucgm_lab.schedules import BetaTimeDistribution
from ucgm_lab.time_sensitivity import DEFAULT_THRESHOLD, time_sensitivity
from ucgm_lab.training import CheckpointError
from ucgm_lab.zoo import (
    CLASSIFIER_NAME,
    DIGITS_DIR,
    ZOO_SPECS,
    available,
    classifier_available,
    find_spec,
    load,
    load_classifier,
)

ENHANCED = "8gaussians-cond-lam0-zeta0.6"
"""Trained on the enhanced target, which changes rule at t = 0.75 (``enhancement_range``)."""


def _check(name: str, **kwargs):
    """r of ``name`` as few-step training from it would measure it: its training data (and labels),
    the few-step recipes' Beta(0.8, 1) times; the largest over three draws."""
    spec, zm = find_spec(name), load(name)
    recipe = spec.recipe.with_(data_size=4096) if spec.recipe.kind == "points" else spec.recipe
    x, y, _ = recipe.training_data()
    kwargs.setdefault("time_distribution", BetaTimeDistribution(0.8, 1.0))
    results = [
        time_sensitivity(
            zm.model, x, zm.transport, y=y if spec.recipe.conditional else None, seed=s, **kwargs
        )
        for s in range(3)
    ]
    return max(results, key=lambda r: r.relative_change)


@pytest.mark.reproducibility
@pytest.mark.parametrize(
    "name",
    [s.name for s in ZOO_SPECS if s.name != ENHANCED],
)
def test_every_zoo_model_is_smooth_enough_in_t_for_few_step_training(name):
    result = _check(name)
    assert result.relative_change < DEFAULT_THRESHOLD, result.message
    assert not result.too_fast and result.derivative_rms > 0


def test_every_spec_builds_a_network_smooth_in_t():
    """Rebuilding any zoo model gives a network fed at most 30 t (the scale the check passes)."""
    for spec in ZOO_SPECS:
        shape = (2,) if spec.recipe.kind == "points" else (1, 8, 8)
        net = spec.recipe.build_network(shape, 10)
        assert net.config["time_scale"] <= 30.0, spec.name


class _Window:
    """Training times uniform on [lo, hi] (the sampling interface of BetaTimeDistribution)."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def sample(self, n, *, device=None, dtype=torch.float32, generator=None, **_):
        u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
        return (self.lo + (self.hi - self.lo) * u).to(device=device, dtype=dtype)


@pytest.mark.reproducibility
def test_the_enhanced_target_model_is_smooth_but_at_the_enhancement_boundary():
    """The zeta = 0.6 model learned a target that switches rule at t = 0.75 (App. B.1.4: the
    guidance-like enhancement on [0, 0.75], the halfway rule above), so its output has a step in
    t there; away from it, it is as smooth as the others. It is a lambda = 0 model and no
    few-step model starts from it."""
    assert find_spec(ENHANCED).recipe.few_step is False
    assert all(s.parent != ENHANCED for s in ZOO_SPECS)
    for lo, hi in ((0.005, 0.65), (0.85, 0.995)):
        away = _check(ENHANCED, time_distribution=_Window(lo, hi))
        assert away.relative_change < DEFAULT_THRESHOLD, (lo, hi, away.message)
    assert _check(ENHANCED, time_distribution=_Window(0.7, 0.8)).too_fast


def test_available_lists_exactly_what_load_accepts():
    names = available()
    assert names == [s.name for s in ZOO_SPECS]  # every shipped model, in the specs' order
    for name in names:
        assert load(name).name == name
    assert CLASSIFIER_NAME not in names
    with pytest.raises(KeyError, match="load_classifier"):
        load(CLASSIFIER_NAME)
    assert classifier_available() and isinstance(load_classifier(), torch.nn.Module)


def test_available_and_classifier_available_in_another_folder(tmp_path):
    assert available(tmp_path) == [] and not classifier_available(tmp_path)
    (tmp_path / "digits-linear-lam1.safetensors").write_bytes(
        (DIGITS_DIR / "digits-linear-lam1.safetensors").read_bytes()
    )
    (tmp_path / f"{CLASSIFIER_NAME}.safetensors").write_bytes(b"")
    assert available(tmp_path) == ["digits-linear-lam1"] and classifier_available(tmp_path)
    assert load("digits-linear-lam1", tmp_path).name == "digits-linear-lam1"
    (tmp_path / "moons-linear-lam1.safetensors").write_bytes(b"not a checkpoint")
    assert "moons-linear-lam1" in available(tmp_path)  # found: load says what is wrong with it
    with pytest.raises(CheckpointError, match="moons-linear-lam1"):
        load("moons-linear-lam1", tmp_path)
