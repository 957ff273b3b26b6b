"""EDM denoiser adapter: Euler and Heun equivalence with EDM's sampler (Karras et al., Alg. 1)."""

import math

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.adapters import EDMPreconditioned, EDMSigmaSchedule, adapt_edm_denoiser, karras_sigmas


def edm_sampler(denoise, x, sigmas, heun):
    """EDM's deterministic sampler (Alg. 1 of Karras et al. with S_churn = 0), from the paper.

    x_{i+1} = x_i + (sigma_{i+1} - sigma_i) d_i, d_i = (x_i - D(x_i; sigma_i)) / sigma_i, and
    for Heun, unless sigma_{i+1} = 0, the trapezoidal correction with d' at (x_{i+1}, sigma_{i+1}).
    """
    sigmas = [float(s) for s in sigmas] + [0.0]
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        d = (x - denoise(x, torch.full((x.shape[0],), s, dtype=x.dtype))) / s
        x_next = x + (s_next - s) * d
        if heun and s_next > 0:
            d2 = (
                x_next - denoise(x_next, torch.full((x.shape[0],), s_next, dtype=x.dtype))
            ) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d2)
        x = x_next
    return x


@pytest.fixture
def denoiser(smooth_net):
    raw = smooth_net(time_scale=1.0)
    return EDMPreconditioned(raw, sigma_data=0.5)


@pytest.mark.parametrize(("order", "heun"), [(1, False), (2, True)])
def test_ucgm_equals_edm_euler_and_heun(denoiser, order, heun):
    steps = 9
    sigma_max = 80.0
    sigmas = karras_sigmas(steps, 0.002, sigma_max, 7.0)
    z = torch.randn(64, 2, dtype=torch.float64)
    with torch.no_grad():
        ref = edm_sampler(denoiser, z * sigma_max, sigmas, heun)
    adapted = adapt_edm_denoiser(denoiser)
    # EDM starts from sigma_max z; the UCGM state is x_sigma / sqrt(1 + sigma^2).
    noise = z * sigma_max / math.sqrt(1 + sigma_max**2)
    out = sample(
        adapted.model, noise, adapted.transport, time_points=adapted.time_points(steps), order=order
    )
    torch.testing.assert_close(out.sample, ref, rtol=1e-9, atol=1e-9)
    assert out.nfe == (steps if order == 1 else 2 * steps - 1)


def test_network_receives_sigma_and_x_sigma(denoiser):
    calls = []

    def spy(x, sigma):
        calls.append((x.clone(), sigma.clone()))
        return denoiser(x, sigma)

    adapted = adapt_edm_denoiser(spy)
    noise = torch.randn(8, 2, dtype=torch.float64)
    adapted.sample(noise, steps=4, native_grid=True)
    torch.testing.assert_close(torch.stack([c[1][0] for c in calls]), karras_sigmas(4))
    torch.testing.assert_close(calls[0][0], noise * math.sqrt(1 + 80.0**2))


def test_ucgm_equals_diffusers_edm_euler(smooth_net):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.EDMEulerScheduler(
        sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type="epsilon"
    )
    raw = smooth_net(time_scale=1.0).float()
    steps = 10
    scheduler.set_timesteps(steps)
    noise = torch.randn(64, 2)
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        for c_noise in scheduler.timesteps:
            x_in = scheduler.scale_model_input(x, c_noise)
            x = scheduler.step(raw(x_in, c_noise.expand(x.shape[0])), c_noise, x).prev_sample
    adapted = adapt_edm_denoiser(EDMPreconditioned(raw, sigma_data=0.5))
    torch.testing.assert_close(
        adapted.time_points(steps),
        EDMSigmaSchedule().time_of_sigma(scheduler.sigmas[:-1].double()),
        rtol=1e-6,
        atol=1e-7,
    )
    # init_noise_sigma = sqrt(sigma_max^2 + 1): the UCGM state N(0, I) is diffusers' initial latent.
    out = adapted.sample(noise, steps=steps, native_grid=True)
    torch.testing.assert_close(out.sample, x, rtol=1e-4, atol=1e-4)


def test_sigma_schedule_roundtrip_and_constraints():
    sched = EDMSigmaSchedule()
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(sched.time_of_sigma(sched.sigma(t)), t)
    assert float(sched.sigma(torch.tensor(1.0))) == pytest.approx(80.0)
    report = adapt_edm_denoiser(lambda x, s: x).transport.constraint_report()
    assert report["alpha nondecreasing"] is None and report["gamma nonincreasing"] is None
    assert report["gamma(0)=1"] is None


def test_errors():
    with pytest.raises(ValueError, match="sigma_lo"):
        adapt_edm_denoiser(lambda x, s: x, EDMSigmaSchedule(sigma_lo=0.01), sigma_min=0.002)
    with pytest.raises(ValueError, match="sigma_hi"):
        adapt_edm_denoiser(lambda x, s: x, sigma_max=100.0)
    with pytest.raises(ValueError, match="Widen"):
        EDMSigmaSchedule().time_of_sigma(200.0)
    with pytest.raises(ValueError, match="'epsilon', 'v_prediction'"):
        EDMPreconditioned(lambda x, s: x, prediction="x0")
