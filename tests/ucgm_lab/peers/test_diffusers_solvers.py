"""diffusers' DPM-Solver++ / UniPC in flow mode on UCGM models (ucgm_lab.peers.diffusers_solvers)."""

import math

import pytest
import torch
from torch import nn

pytest.importorskip("diffusers")

from ucgm_lab import sample  # noqa: E402
from ucgm_lab.peers.diffusers_solvers import (  # noqa: E402
    DIFFUSERS_SOLVERS,
    diffusers_sample,
    flow_time,
)
from ucgm_lab.transports import get_transport  # noqa: E402


class Net(nn.Module):
    """A small smooth network model(x, t) -> F (float64, fixed weights)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(3, 16, generator=gen, dtype=torch.float64) * 0.7)
        self.w2 = nn.Parameter(torch.randn(16, 2, generator=gen, dtype=torch.float64) * 0.7)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(torch.cat([x, t[:, None].to(x.dtype)], dim=1) @ self.w1)
        return h @ self.w2


def euler_by_hand(model, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Euler's method on dx/dsigma = v for the linear transport, written out independently.

    Linear transport: x_t = t z + (1 - t) x and (Tab. 2) F is the velocity dx_t/dt = z - x, so
    Euler from t = 0.999 on the grid 0.999 (1 - i / N), then t = 0, is x <- x + (t' - t) F.
    """
    grid = [0.999 * (1 - i / steps) for i in range(steps)] + [0.0]
    x = noise.clone()
    for t, t_next in zip(grid[:-1], grid[1:], strict=True):
        F = model(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        x = x + (t_next - t) * F
    return x


def test_linear_transport_velocity_is_the_network_output():
    """The hand-written Euler above relies on F = z - x for the linear transport."""
    tr = get_transport("linear")
    x, z = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    dec = tr.decompose(z - x, t * z + (1 - t) * x, t)
    torch.testing.assert_close(dec.x_hat, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(dec.z_hat, z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_dpm_solver_first_order_is_euler(steps):
    """DPM-Solver++ of order 1 in flow mode (DDIM) is Euler's method on the flow ODE."""
    model = Net()
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = diffusers_sample(model, noise, "linear", steps, "dpm++1")
    assert got.nfe == steps
    want = euler_by_hand(model, noise, steps)
    # the scheduler keeps its sigmas in float32: agreement to float32 resolution
    torch.testing.assert_close(got.sample, want, rtol=1e-5, atol=1e-5)
    # and UCGM-S's defaults (order 1, kappa = rho = 0, "even" grid) are the same Euler method
    ucgm = sample(model, noise, "linear", steps).sample
    torch.testing.assert_close(ucgm, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("solver", sorted(DIFFUSERS_SOLVERS))
def test_nfe_is_counted_and_higher_orders_differ_from_euler(solver):
    model = Net()
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got = diffusers_sample(model, noise, "linear", 6, solver)
    assert got.nfe == 6
    assert got.sample.shape == noise.shape and got.sample.dtype == noise.dtype
    euler = euler_by_hand(model, noise, 6)
    if DIFFUSERS_SOLVERS[solver].order > 1:
        assert (got.sample - euler).abs().max() > 1e-4


def test_multistep_solver_is_more_accurate_than_euler():
    """DPM-Solver++ 2M converges faster than Euler to a fine Euler solution."""
    model = Net()
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = euler_by_hand(model, noise, 4000)
    err_euler = (euler_by_hand(model, noise, 8) - exact).abs().max()
    err_dpm = (diffusers_sample(model, noise, "linear", 8, "dpm++2m").sample - exact).abs().max()
    assert err_dpm < 0.5 * err_euler


@pytest.mark.parametrize("name", ["trigflow", "linear", "relinear", "triglinear"])
def test_flow_time_inverts_the_noise_level(name):
    tr = get_transport(name)
    for sigma in (0.999, 0.7, 0.31, 0.05):
        t = torch.tensor(flow_time(tr, sigma), dtype=torch.float64)
        a, g = float(tr.alpha(t)), float(tr.gamma(t))
        assert math.isclose(a / (a + g), sigma, rel_tol=0, abs_tol=1e-12)


def test_transport_that_never_reaches_the_noise_level_is_refused():
    with pytest.raises(ValueError, match="never reaches the flow noise level"):
        flow_time(get_transport("edm"), 0.999)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="solver must be one of"):
        diffusers_sample(Net(), torch.randn(2, 2), "linear", 4, "heun")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        diffusers_sample(Net(), torch.randn(2, 2), "linear", 0)
