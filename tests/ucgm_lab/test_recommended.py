"""recommended_settings: settings without a search (ucgm_lab/recommended.py)."""

import pytest
import torch

from tests.gaussian_oracle import GaussianOracle, exact_flow_endpoint
from ucgm_lab import recommended_settings, sample
from ucgm_lab.search import SamplerSettings
from ucgm_lab.transports import get_transport

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)


class Net(torch.nn.Module):
    def forward(self, x, t, y=None):
        return torch.tanh(x) * t[:, None]


@pytest.mark.parametrize("transport", ["linear", "trigflow"])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_settings_make_exactly_nfe_evaluations(transport, lam):
    noise = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    for nfe in (1, 2, 3, 4, 5, 6, 8, 16, 33):
        settings = recommended_settings(nfe, lam, transport)
        assert isinstance(settings, SamplerSettings) and settings.nfe == nfe
        gen = torch.Generator().manual_seed(1)
        out = sample(Net(), noise, transport, generator=gen, **settings.as_kwargs())
        assert out.nfe == nfe


def test_rule_by_lambda():
    flow = recommended_settings(8)
    assert (flow.multistep, flow.rho, flow.order, flow.kappa) == ("velocity", 0.0, 1, 0.0)
    assert flow.schedule.c == 1.0 and recommended_settings(4).schedule.c == 1.2
    # the Adams-Moulton corrector above 5 NFE only (docs/paper-notes.md F7)
    assert flow.corrector and recommended_settings(6).corrector
    assert not recommended_settings(5).corrector and not recommended_settings(4).corrector
    assert recommended_settings(4).multistep == "velocity"
    one = recommended_settings(8, 1.0)
    assert (one.multistep, one.rho, one.order) == (None, 1.0, 1)


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.75])
@pytest.mark.parametrize("nfe", [2, 4, 8, 16])
def test_partial_lambda_is_order_one_with_rho_equal_to_lambda(lam, nfe):
    """0 < lambda < 1: Alg. 2 of order 1 with the paper's rho = lambda, no multistep."""
    s = recommended_settings(nfe, lam)
    assert (s.multistep, s.order, s.kappa, s.rho, s.corrector) == (None, 1, 0.0, lam, False)
    assert s.schedule.c == 1.0 and s.nfe == nfe


@pytest.mark.parametrize("transport", ["linear", "trigflow"])
def test_enhanced_target_structure(transport):
    """zeta > 0: at <= 5 NFE the velocity form with the corrector and a first-order last step
    (the grid unchanged), the data form above; lambda > 0 unchanged by the flag."""
    for nfe in (1, 3, 4, 5):
        s = recommended_settings(nfe, 0.0, transport, enhanced_target=True)
        plain = recommended_settings(nfe, 0.0, transport)
        assert (s.multistep, s.corrector, s.lower_order_final) == ("velocity", True, True)
        assert (s.order, s.kappa, s.rho, s.nfe) == (1, 0.0, 0.0, nfe)
        assert (s.schedule, s.time_points) == (plain.schedule, plain.time_points)
        assert (plain.multistep, plain.corrector, plain.lower_order_final) == (
            "velocity",
            False,
            False,
        )
    for nfe in (6, 8, 16):  # above: the data form, no corrector, the lambda = 0 grid
        s = recommended_settings(nfe, 0.0, transport, enhanced_target=True)
        plain = recommended_settings(nfe, 0.0, transport)
        assert (s.multistep, s.corrector, s.order, s.rho) == ("data", False, 1, 0.0)
        assert not s.lower_order_final and not plain.lower_order_final
        assert (s.schedule, s.time_points) == (plain.schedule, plain.time_points)
    for lam in (0.5, 1.0):
        assert recommended_settings(8, lam, transport, enhanced_target=True) == (
            recommended_settings(8, lam, transport)
        )


def test_old_calls_unchanged():
    """Positional (nfe, lambda, transport) calls keep working; the flag defaults to False."""
    assert recommended_settings(8, 0.0, "linear") == recommended_settings(
        8, 0.0, "linear", enhanced_target=False
    )
    with pytest.raises(TypeError):
        recommended_settings(8, 0.0, "linear", True)  # keyword-only


@pytest.mark.parametrize("enhanced", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_settings_run_with_every_flag(enhanced, lam):
    noise = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    for nfe in (1, 4, 5, 6, 9):
        settings = recommended_settings(nfe, lam, enhanced_target=enhanced)
        gen = torch.Generator().manual_seed(1)
        assert sample(Net(), noise, "linear", generator=gen, **settings.as_kwargs()).nfe == nfe


def test_non_linear_transport_gets_the_same_flow_noise_levels():
    """TrigFlow's grid sits at the linear grid's sigma = alpha / (alpha + gamma)."""
    linear = recommended_settings(6)
    grid = linear.schedule.time_points(6)[:-1].tolist()
    trig = recommended_settings(6, 0.0, "trigflow")
    tr = get_transport("trigflow")
    t = torch.tensor(trig.time_points, dtype=torch.float64)
    sigma = tr.alpha(t) / (tr.alpha(t) + tr.gamma(t))
    torch.testing.assert_close(sigma, torch.tensor(grid, dtype=torch.float64), rtol=0, atol=1e-10)


def test_recommendation_beats_sample_defaults_on_the_exact_gaussian_model():
    """With the exact model of Gaussian data, the recommended 8-NFE settings land far closer to
    the exact PF-ODE endpoint than sample's defaults (Euler) at the same NFE."""
    tr = get_transport("linear")
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = exact_flow_endpoint(noise, 0.999, tr.alpha, tr.gamma, MU, COV)
    settings = recommended_settings(8)
    rec = sample(oracle, noise, tr, **settings.as_kwargs()).sample
    euler = sample(oracle, noise, tr, steps=8).sample
    err_rec = (rec - exact).norm(dim=1).mean()
    err_euler = (euler - exact).norm(dim=1).mean()
    assert err_rec < err_euler / 3, (err_rec, err_euler)


def test_bad_inputs():
    with pytest.raises(ValueError, match="nfe must be a positive integer"):
        recommended_settings(0)
    with pytest.raises(ValueError, match="consistency_ratio must be lambda"):
        recommended_settings(4, 1.5)
    with pytest.raises(ValueError, match="never reaches the flow noise level"):
        recommended_settings(4, 0.0, "edm")
    with pytest.raises(TypeError, match="enhanced_target must be True or False"):
        recommended_settings(4, 0.0, enhanced_target=0.6)


@pytest.mark.parametrize("nfe", [8, 16])
def test_the_corrector_of_the_rule_is_closer_to_the_exact_endpoint(nfe):
    """Above 5 NFE the lambda = 0 rule adds the Adams-Moulton corrector: on the exact Gaussian
    model its sample is several times closer to the exact PF-ODE endpoint than the same
    Adams-Bashforth settings without it, at the same NFE."""
    tr = get_transport("linear")
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = exact_flow_endpoint(noise, 0.999, tr.alpha, tr.gamma, MU, COV)
    settings = recommended_settings(nfe)
    with_corrector = sample(oracle, noise, tr, **settings.as_kwargs())
    kwargs = {**settings.as_kwargs(), "corrector": False}
    without = sample(oracle, noise, tr, **kwargs)
    assert with_corrector.nfe == without.nfe == nfe
    err = (with_corrector.sample - exact).norm(dim=1).mean()
    err_ab2 = (without.sample - exact).norm(dim=1).mean()
    assert err < err_ab2 / 2, (err, err_ab2)
