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
    mid = recommended_settings(8, 0.5)
    assert (mid.multistep, mid.rho) == ("velocity", 1.0)
    one = recommended_settings(8, 1.0)
    assert (one.multistep, one.rho) == (None, 1.0)


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
