"""load_for_sampling: one call from a Trainer checkpoint to a model that samples (issue 30)."""

import pytest
import torch

import ucgm_lab
from tests.ucgm_lab.training.test_trainer_user_path import DiTStyleNet, _trainer
from ucgm_lab.networks import MLP2D, TimeScaled
from ucgm_lab.training import load_checkpoint


def test_custom_wrapped_network_loads_with_its_ema_transport_and_time_scale(tmp_path):
    trainer = _trainer(tmp_path, steps=3)
    path = trainer.fit().checkpoint
    for network in (DiTStyleNet(), TimeScaled(DiTStyleNet(), 0.03)):  # unwrapped: wrapped for you
        loaded = ucgm_lab.load_for_sampling(path, network)
        assert isinstance(loaded.model, TimeScaled) and loaded.time_scale == 0.03
        assert loaded.transport.name == "Linear" and loaded.consistency_ratio == 0.0
        assert loaded.step == 3 and not loaded.model.training
        assert not any(p.requires_grad for p in loaded.model.parameters())
        ema = load_checkpoint(path)["ema"]["model"]
        for name, value in loaded.model.state_dict().items():
            assert torch.equal(value, ema[name])
    raw = ucgm_lab.load_for_sampling(tmp_path, DiTStyleNet(), weights="model")  # a folder
    assert torch.equal(raw.model.network.x_in.weight, trainer.unwrapped_model.network.x_in.weight)
    noise = torch.randn(16, 2)
    expected = ucgm_lab.sample(trainer.ema_model, noise, "linear", 2).sample
    torch.testing.assert_close(loaded.sample(noise, steps=2).sample, expected)
    torch.testing.assert_close(loaded.sample(noise, **{"steps": 2, "kappa": 0.0}).sample, expected)


def test_library_network_is_rebuilt_from_its_config(tmp_path):
    path = _trainer(tmp_path, MLP2D(hidden=16, depth=1, time_scale=30.0), steps=2).fit().checkpoint
    loaded = ucgm_lab.load_for_sampling(path)
    assert isinstance(loaded.model, MLP2D) and loaded.time_scale == 1.0


def test_missing_network_and_other_architectures_are_refused_clearly(tmp_path):
    path = _trainer(tmp_path, steps=1).fit().checkpoint
    with pytest.raises(
        ValueError, match=r"stores no model_config .* load_for_sampling\(path, MyNetwork"
    ):
        ucgm_lab.load_for_sampling(path)
    with pytest.raises(ValueError, match="another architecture"):
        ucgm_lab.load_for_sampling(path, DiTStyleNet(hidden=8))
    with pytest.raises(ValueError, match="weights must be"):
        ucgm_lab.load_for_sampling(path, DiTStyleNet(), weights="best")
