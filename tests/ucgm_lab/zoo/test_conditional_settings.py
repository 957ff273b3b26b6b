"""Searched sampler settings of class-conditional zoo models: guidance searched, stored, used."""

import json
import math

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.metrics.classes import balanced_labels
from ucgm_lab.search import SearchSpace
from ucgm_lab.transports import get_transport
from ucgm_lab.zoo import load
from ucgm_lab.zoo import settings as settings_module
from ucgm_lab.zoo.__main__ import main as zoo_main
from ucgm_lab.zoo.settings import (
    CONDITIONAL_GUIDANCE_INTERVALS,
    CONDITIONAL_GUIDANCE_SCALES,
    SettingsFileError,
    load_settings_file,
    search_model_settings,
    search_zoo_settings,
    searched_settings,
)

COND = "8gaussians-cond-lam0"
LINEAR = get_transport("linear")


class BlurredMixtureOracle(torch.nn.Module):
    """Exact fields of the 8-Gaussians data, with the class signal shrunk by 1 / ``w_star``.

    Class k of the data is N(c_k, s^2 I) with c_k = (cos k pi/4, sin k pi/4), s = 0.1 (the
    ``toy_data`` "8gaussians"). For the Linear transport (alpha = t, gamma = 1 - t, the
    network's time is t) the exact class-k output is F_k = alpha_hat E_k[z | x_t] +
    gamma_hat E_k[x | x_t] with E_k[x | x_t] = c_k + gamma s^2 (x_t - gamma c_k) /
    (gamma^2 s^2 + alpha^2); the unconditional output is F_null = sum_k p(k | x_t) F_k (F is
    affine in E[x | x_t] at fixed x_t). This model answers F_null for the null class and
    F_null + (F_k - F_null) / w_star for class k, so classifier-free guidance at scale w gives
    F_null + (w / w_star) (F_k - F_null): exact at w = w_star, under-guided (classes blurred
    into each other) below it, over-guided above.
    """

    null_class = 8

    def __init__(self, w_star: float = 2.0, std: float = 0.1) -> None:
        super().__init__()
        angle = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        self.centres = torch.stack([angle.cos(), angle.sin()], dim=1)  # (K, 2)
        self.w_star, self.var = w_star, std**2

    def forward(self, x_t, t, y=None):
        x, t = x_t.double(), t.double()[:, None]
        a, g = LINEAR.alpha(t), LINEAR.gamma(t)  # (B, 1)
        ah, gh = LINEAR.alpha_hat(t), LINEAR.gamma_hat(t)
        c = self.centres[None]  # (1, K, 2)
        spread = (g * g * self.var + a * a)[:, :, None]  # (B, 1, 1)
        ex_k = c + g[:, :, None] * self.var * (x[:, None] - g[:, :, None] * c) / spread
        f_k = ah[:, :, None] * (x[:, None] - g[:, :, None] * ex_k) / a[:, :, None]
        f_k = f_k + gh[:, :, None] * ex_k  # (B, K, 2)
        logits = -((x[:, None] - g[:, :, None] * c) ** 2).sum(-1) / (2 * spread[:, :, 0])
        f_null = (logits.softmax(dim=1)[:, :, None] * f_k).sum(1)
        own = f_k[torch.arange(x.shape[0]), y.clamp(max=7)]
        blurred = f_null + (own - f_null) / self.w_star
        return torch.where((y == self.null_class)[:, None], f_null, blurred).to(x_t.dtype)


def test_the_constructed_model_is_exact_at_its_guidance_scale():
    """CFG at w_star reproduces the exact class field (the test of the test model)."""
    model = BlurredMixtureOracle(w_star=2.0)
    y = balanced_labels(8, 4000)
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))
    guided = sample(model, noise, LINEAR, y=y, steps=64, guidance_scale=2.0).sample
    centres = model.centres[y].float()
    # every sample ends at its own class (within 4 std), not between classes
    assert float((guided - centres).norm(dim=1).max()) < 0.45
    plain = sample(model, noise, LINEAR, y=y, steps=64).sample
    assert float((plain - centres).norm(dim=1).mean()) > 0.2


@pytest.mark.parametrize("w_star", [3.0, 1.0])
def test_search_picks_guidance_where_it_helps_and_reports_on_held_out_noise(w_star):
    """Blurred classes (w_star = 3): the search must pick w = 3 (> 1, the default space's
    scales); the exact model (w_star = 1, the control): no guidance."""
    model = BlurredMixtureOracle(w_star=w_star)
    space = SearchSpace(
        orders=(1,), multisteps=(), kappas=(0.0,), rhos=(0.0,), shapes=((1.0, 1.0, 1.0),),
        data_gaps=(0.001,), explicit_max_points=0, refine=False, finalists=2,
        guidance_scales=CONDITIONAL_GUIDANCE_SCALES, guidance_intervals=CONDITIONAL_GUIDANCE_INTERVALS,
    )  # fmt: skip
    holdout_noise = torch.randn(400, 2, generator=torch.Generator().manual_seed(99))
    run = search_model_settings(
        model, LINEAR, "8gaussians", [8], num_classes=8, samples=400, reference_factor=4,
        space=space, holdout_noise=holdout_noise, progress=False,
    )  # fmt: skip
    budget = run.result.budgets[0]
    best = budget.settings
    assert best.guidance_scale == w_star and best.nfe == 8
    if w_star > 1:
        assert budget.holdout_score < 0.3 * budget.default_holdout_score
    # the reported figure is the chosen settings on the held-out noise against the held-out
    # reference (not the selection noise, nor the selection reference)
    assert not torch.equal(run.holdout_reference, run.reference)
    out = sample(model, holdout_noise, LINEAR, y=run.labels, **best.as_kwargs())
    assert out.nfe == 8
    assert budget.holdout_score == pytest.approx(run.metric(out.sample, run.holdout_reference))
    assert budget.holdout_score != pytest.approx(budget.selection_score)


def test_search_zoo_settings_adds_a_conditional_entry_and_keeps_the_others(tmp_path):
    path = tmp_path / "settings.json"
    other = {"checkerboard-linear-lam0": {"4": {"steps": 4, "kappa": 0.25}}}
    path.write_text(json.dumps(other))
    found = search_zoo_settings([COND], [2, 4], samples=80, path=path, progress=False)
    written = json.loads(path.read_text())
    assert written["checkerboard-linear-lam0"] == other["checkerboard-linear-lam0"]
    table = load_settings_file(path)
    for nfe in (2, 4):
        entry = table[COND][nfe]
        assert found[COND][nfe].as_kwargs() == entry
        labels = balanced_labels(8, 16)
        assert sample(load(COND).model, torch.randn(16, 2), "linear", y=labels, **entry).nfe == nfe
    with pytest.raises(ValueError, match="image model"):
        search_zoo_settings(["digits-linear-lam1"], [2], path=path, progress=False)


@pytest.mark.parametrize("name", [COND, "8gaussians-cond-lam0-zeta0.6"])
def test_shipped_file_has_every_budget_of_the_conditional_models(name):
    table = load_settings_file()
    assert set(table[name]) >= {2, 4, 8, 16, 32}


class CountRows:
    """Forward hook: the rows (sample evaluations) a network is asked for, and their labels."""

    def __init__(self):
        self.rows, self.labels = 0, []

    def __call__(self, module, args, kwargs, output):
        self.rows += output.shape[0]
        y = kwargs.get("y", args[2] if len(args) > 2 else None)
        self.labels.append(y)


def count_evaluations(zm, labels, **kwargs):
    hook = CountRows()
    handle = zm.model.register_forward_hook(hook, with_kwargs=True)
    try:
        out = zm.sample(labels, **kwargs)
    finally:
        handle.remove()
    return out, hook


def test_conditional_zoo_sample_uses_the_stored_settings_with_exactly_the_budget():
    zm = load(COND)
    labels = balanced_labels(8, 64)
    stored = searched_settings(COND, 8)
    out, hook = count_evaluations(zm, labels, nfe=8, seed=3)
    assert out.nfe == 8 and hook.rows == 8 * 64  # guided evaluations count their two halves
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    direct = sample(
        zm.model, noise, zm.transport, y=labels, generator=torch.Generator().manual_seed(4),
        **stored,
    )  # fmt: skip
    torch.testing.assert_close(out.sample, direct.sample)


@pytest.mark.parametrize("name", [COND, "8gaussians-cond-lam0-zeta0.6"])
def test_every_stored_conditional_budget_makes_exactly_its_evaluations(name):
    """Guided or not: rows evaluated = budget x batch; a guided call pairs labels and null class."""
    zm = load(name)
    labels = balanced_labels(8, 16)
    for nfe, entry in load_settings_file()[name].items():
        out, hook = count_evaluations(zm, labels, nfe=nfe)
        assert out.nfe == nfe and hook.rows == nfe * 16, (name, nfe)
        guided = [y for y in hook.labels if y.shape[0] == 32]
        assert bool(guided) == (entry.get("guidance_scale", 1.0) != 1.0), (name, nfe)
        for y in guided:
            assert torch.equal(y[:16], labels) and bool((y[16:] == zm.model.null_class).all())


def test_stored_guidance_is_used_with_the_null_class_of_the_model(tmp_path, monkeypatch):
    """A guided entry: 8 NFE = 4 guided steps, each on the labels and on the model's null class."""
    path = tmp_path / "settings.json"
    entry = {"steps": 4, "guidance_scale": 2.0, "guidance_interval": [0.0, 1.0]}
    path.write_text(json.dumps({COND: {"8": entry}}))
    real = settings_module.searched_settings
    monkeypatch.setattr(
        settings_module, "searched_settings", lambda name, nfe: real(name, nfe, path)
    )
    zm = load(COND)
    labels = balanced_labels(8, 32)
    out, hook = count_evaluations(zm, labels, nfe=8)
    assert out.nfe == 8 and hook.rows == 8 * 32 and len(hook.labels) == 4
    for y in hook.labels:
        assert torch.equal(y[:32], labels) and bool((y[32:] == zm.model.null_class).all())
    unguided = zm.sample(labels, nfe=8, guidance_scale=1.0)  # an override goes on top
    assert not torch.allclose(out.sample, unguided.sample)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"steps": 4, "guidance_scale": "2"}, "'guidance_scale' must be a number >= 0"),
        ({"steps": 4, "guidance_scale": -1.0}, "'guidance_scale' must be a number >= 0"),
        ({"steps": 4, "guidance_scale": True}, "'guidance_scale' must be a number >= 0"),
        ({"steps": 4, "guidance_scale": 2.0, "guidance_interval": [0.2]}, "list \\[lo, hi\\]"),
        ({"steps": 4, "guidance_scale": 2.0, "guidance_interval": "all"}, "list \\[lo, hi\\]"),
        ({"steps": 4, "guidance_scale": 2.0, "guidance_interval": [0.8, 0.2]}, "0 <= lo <= hi <= 1"),
        ({"steps": 4, "guidance_scale": 2.0, "guidance_interval": [0.0, 1.5]}, "0 <= lo <= hi <= 1"),
        ({"steps": 4, "guidance_interval": [0.0, 1.0]}, "without a 'guidance_scale'"),
        ({"steps": 8, "guidance_scale": 2.0}, "16 network evaluations, more than the budget 8"),
        ({"steps": 6, "guidance_scale": 2.0, "guidance_interval": [0.2, 0.8]}, "9 network evaluations"),
    ],
)  # fmt: skip
def test_bad_guidance_fields_are_refused_clearly(tmp_path, entry, match):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({COND: {"8": entry}}))
    with pytest.raises(SettingsFileError, match=match) as info:
        load_settings_file(path)
    assert f"model '{COND}', NFE 8" in str(info.value)


def test_the_command_searches_only_the_named_conditional_model(tmp_path, capsys):
    path = tmp_path / "settings.json"
    zoo_main(
        ["search-settings", "--only", COND, "--nfe", "2", "--samples", "40", "--out", str(path)]
    )
    assert list(load_settings_file(path)) == [COND]
    assert f"{COND}" in capsys.readouterr().out
    for name in ("digits-linear-lam1", "digits-classifier"):
        with pytest.raises(SystemExit):
            zoo_main(["search-settings", "--only", name, "--out", str(path)])
        assert "only the 2D models are searched" in capsys.readouterr().err


def test_search_zoo_settings_keeps_entries_written_while_it_searched(tmp_path, monkeypatch):
    """Two search-settings runs on different models at once: neither loses the other's entries."""
    path = tmp_path / "settings.json"
    path.write_text("{}")
    other = {"checkerboard-linear-lam0": {"4": {"steps": 4, "kappa": 0.25}}}
    real_search = settings_module.search_model_settings

    def search_while_another_run_writes(*args, **kwargs):
        path.write_text(json.dumps(other))  # the other run finishes during this search
        return real_search(*args, **kwargs)

    monkeypatch.setattr(settings_module, "search_model_settings", search_while_another_run_writes)
    search_zoo_settings([COND], [2], samples=80, path=path, progress=False)
    written = json.loads(path.read_text())
    assert written["checkerboard-linear-lam0"] == other["checkerboard-linear-lam0"]
    assert set(written[COND]) == {"2"}


def test_the_best_stochastic_candidate_is_refined_when_a_deterministic_one_leads():
    """8gaussians-cond-lam0 at 2 NFE: rho = 0 leads the coarse search, yet rho > 0 on its own
    two time points is about 3x better (0.013 against 0.044); it is found only if the best
    stochastic candidate gets its own refinement (both kinds then reach robust_choice)."""
    zm = load(COND)
    run = search_model_settings(
        zm.model, zm.transport, "8gaussians", [2], num_classes=8, samples=2000, progress=False
    )
    budget = run.result.budgets[0]
    assert budget.settings.rho != 0.0, budget.settings.describe()
    assert budget.holdout_score < 0.5 * 0.044, budget.holdout_score
