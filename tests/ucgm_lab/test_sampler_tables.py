"""`sample` tabulates the coefficients once per grid: it must equal the per-step Alg. 2 loop."""

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D
from ucgm_lab.sampler import auto_stochastic_ratio, extrapolate, reconstruct
from ucgm_lab.schedules import explicit_time_points
from ucgm_lab.transports import Decomposition, get_transport

POINTS = [0.999, 0.8, 0.55, 0.3, 0.12, 0.04]


def per_step_reference(model, noise, transport, kappa, rho, generator):
    """Alg. 2 (order 1) with every coefficient evaluated at its step, from the line-level pieces."""
    tr = get_transport(transport)
    times = explicit_time_points(POINTS).to(torch.float64)
    state, previous = noise.double(), None
    ones = torch.ones(noise.shape[0])
    for i in range(len(POINTS)):
        t, t_next = times[i], times[i + 1]
        F = model(state.float(), tr.model_time(t).float() * ones).double()
        raw = tr.decompose(F, state, t)
        est = raw
        if kappa > 0 and previous is not None:
            est = Decomposition(
                extrapolate(raw.x_hat, previous.x_hat, kappa),
                extrapolate(raw.z_hat, previous.z_hat, kappa),
            )
        previous = raw
        if i == len(POINTS) - 1:
            return est.x_hat
        r = auto_stochastic_ratio(tr, t, t_next) if rho == "auto" else rho
        fresh = None
        if rho == "auto" or rho > 0:
            fresh = torch.randn(state.shape, generator=generator, dtype=torch.float64)
        state = reconstruct(tr, est, t_next, r, fresh)


@pytest.mark.reproducibility
@pytest.mark.parametrize("transport", ["linear", "relinear", "trigflow", "edm", "triglinear"])
@pytest.mark.parametrize("kappa,rho", [(0.0, 0.0), (0.5, 0.5), (0.3, "auto"), (0.0, 1.0)])
def test_tabulated_sampler_equals_per_step_loop(transport, kappa, rho):
    torch.manual_seed(0)
    model = MLP2D(hidden=16, depth=1, time_scale=30).eval().requires_grad_(False)
    noise = torch.randn(32, 2)
    got = sample(
        model,
        noise,
        transport,
        time_points=POINTS,
        kappa=kappa,
        rho=rho,
        generator=torch.Generator().manual_seed(3),
    )
    with torch.no_grad():
        want = per_step_reference(
            model, noise, transport, kappa, rho, torch.Generator().manual_seed(3)
        )
    assert torch.equal(got.sample, want.float())
