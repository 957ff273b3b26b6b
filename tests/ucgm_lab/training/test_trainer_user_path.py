"""The Trainer for a user's own data and network (issue 30): EMA ramp, fit targets, results, hints."""

import math
import warnings

import pytest
import torch

from ucgm_lab.networks import TimeScaled
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.time_sensitivity import TimeSensitivityWarning
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.trainer import ResumeMismatchError


class DiTStyleNet(torch.nn.Module):
    """A user's network: DiT's sinusoidal embedding of 1000 t, no ``config``."""

    def __init__(self, hidden=32):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(32) / 32))
        self.t_in = torch.nn.Linear(64, hidden)
        self.x_in = torch.nn.Linear(2, hidden)
        self.out = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x, t, y=None):
        a = 1000 * t[:, None] * self.freqs
        return self.out(self.x_in(x) + self.t_in(torch.cat([a.cos(), a.sin()], 1)))


def _data():
    return torch.randn(256, 2, generator=torch.Generator().manual_seed(0))


def _trainer(tmp_path, model=None, lam=0.0, steps=4, **cfg):
    torch.manual_seed(0)
    model = model if model is not None else TimeScaled(DiTStyleNet(), 0.03)
    config = TrainerConfig(
        steps=steps, lr=1e-3, progress=False, cpu=True, checkpoint_dir=str(tmp_path), **cfg
    )
    data = TensorDataSource(_data(), batch_size=64, seed=0)
    return Trainer(model, UCGMObjective("linear", lam), data, config)


def test_the_raw_network_is_flagged_during_its_lambda_0_run(tmp_path):
    trainer = _trainer(tmp_path, DiTStyleNet(), steps=1)
    with pytest.warns(
        TimeSensitivityWarning, match=r"lambda = 0 \(multi-step\) run is not affected"
    ):
        trainer.fit()
    assert trainer.step == 1  # warned, not stopped
    wrapped = _trainer(tmp_path / "w", steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeSensitivityWarning)
        wrapped.fit()


def test_fit_below_the_current_step_says_so(tmp_path):
    trainer = _trainer(tmp_path, steps=8)
    trainer.fit()
    with pytest.raises(ValueError, match=r"already at step 8, past the target 3.*fit\(11\)"):
        trainer.fit(3)
    with pytest.warns(UserWarning, match="already at step 8, its target"):
        result = trainer.fit(8)
    assert result.step == 8


def test_train_result_checkpoint_is_one_this_run_wrote(tmp_path):
    first = _trainer(tmp_path / "a", steps=4)
    written = first.fit().checkpoint
    assert written == tmp_path / "a" / "last.pt"
    again = _trainer(tmp_path / "b", steps=4)
    again.resume(written)
    with pytest.warns(UserWarning, match="its target"):
        result = again.fit()
    assert result.checkpoint is None  # nothing written by this run; not the resumed file
    assert again.last_checkpoint == written
    more = _trainer(tmp_path / "c", steps=6)
    more.resume(written)
    assert more.fit().checkpoint == tmp_path / "c" / "last.pt"


def test_train_result_repr_does_not_print_every_loss(tmp_path):
    trainer = _trainer(tmp_path, steps=300)
    result = trainer.fit()
    text = repr(result)
    assert "300 values" in text and f"{result.losses[-1]:.4g}" in text
    assert len(text) < 250, text


def test_start_from_restarts_the_ema_ramp(tmp_path):
    parent = _trainer(tmp_path / "p", steps=5)
    path = parent.fit().checkpoint
    child = _trainer(tmp_path / "c", lam=1.0, steps=1)
    child.start_from(path)
    start = {k: v.clone() for k, v in child.unwrapped_model.state_dict().items()}
    child.fit()
    raw = child.unwrapped_model.state_dict()
    ema = child.ema_model.state_dict()
    # update 0 of the ramp: decay min(0.999, 1 / 10) = 0.1, so 10% of the parent remains
    for name in start:
        if start[name].is_floating_point() and name != "time_scale":
            expected = 0.1 * start[name].double() + 0.9 * raw[name].double()
            torch.testing.assert_close(ema[name].double(), expected, rtol=1e-6, atol=1e-7)


def test_fixed_decay_is_still_available(tmp_path):
    trainer = _trainer(tmp_path, steps=1, ema_ramp=False, ema_decay=0.5)
    assert trainer.ema.current_decay == 0.5 and not trainer.ema.ramp


def test_few_step_config():
    cfg = TrainerConfig.few_step(steps=10)
    assert (cfg.optimizer, cfg.betas, cfg.lr, cfg.steps) == ("radam", (0.9, 0.999), 2e-4, 10)
    assert TrainerConfig.few_step(lr=1e-4).lr == 1e-4


def test_resume_hints_fit_custom_networks(tmp_path):
    path = _trainer(tmp_path / "w", steps=1).fit().checkpoint  # wrapped, no model_config
    with pytest.raises(ResumeMismatchError) as info:
        _trainer(tmp_path / "u", DiTStyleNet(), steps=2).resume(path)
    text = str(info.value)
    assert "TimeScaled(network, time_scale=0.03)" in text and "same network inside" in text
    assert "model_config" not in text
    raw = _trainer(tmp_path / "r", DiTStyleNet(), steps=1).fit().checkpoint
    with pytest.raises(ResumeMismatchError, match="checkpoint holds an unwrapped network"):
        _trainer(tmp_path / "w2", steps=2).resume(raw)
    with pytest.raises(ResumeMismatchError, match="stores no model_config") as info:
        _trainer(tmp_path / "big", TimeScaled(DiTStyleNet(hidden=16), 0.03)).start_from(path)
    assert "build_network" not in str(info.value)
