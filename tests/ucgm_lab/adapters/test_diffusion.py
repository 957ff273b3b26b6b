"""VP diffusion adapters (epsilon, v, sample prediction): schedules and DDIM equivalence."""

import math

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.adapters import (
    ContinuousVPSchedule,
    DiscreteVPSchedule,
    adapt_diffusers,
    adapt_vp_diffusion,
    vp_transport,
)

PREDICTIONS = ("epsilon", "v_prediction", "sample")


def ddim_reference(net, x, timesteps, alphas_cumprod, prediction):
    """Deterministic DDIM (Song et al. 2021, eq. 12 with sigma = 0), written from the paper.

    x_prev = sqrt(abar_prev) x0_pred + sqrt(1 - abar_prev) eps_pred; the last step goes to
    abar = 1 (the clean sample).
    """
    timesteps = [int(k) for k in timesteps]
    for i, k in enumerate(timesteps):
        a_t = alphas_cumprod[k]
        a_prev = (
            alphas_cumprod[timesteps[i + 1]]
            if i + 1 < len(timesteps)
            else torch.tensor(1.0, dtype=x.dtype)
        )
        out = net(x, torch.full((x.shape[0],), float(k), dtype=x.dtype))
        if prediction == "epsilon":
            eps = out
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        elif prediction == "v_prediction":
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out
            eps = a_t.sqrt() * out + (1 - a_t).sqrt() * x
        else:
            x0 = out
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def continuous_ddim_reference(net, x, times, alpha_bar, prediction, time_scale):
    times = [float(t) for t in times] + [0.0]
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        a_t = alpha_bar(torch.tensor(t, dtype=x.dtype))
        a_prev = alpha_bar(torch.tensor(t_next, dtype=x.dtype))
        out = net(x, torch.full((x.shape[0],), time_scale * t, dtype=x.dtype))
        if prediction == "epsilon":
            x0 = (x - (1 - a_t).sqrt() * out) / a_t.sqrt()
            eps = out
        else:
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out
            eps = a_t.sqrt() * out + (1 - a_t).sqrt() * x
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


# ---------------------------------------------------------------------- schedules
def test_discrete_alpha_bar_interpolates_the_table():
    sched = DiscreteVPSchedule.linear()
    T = sched.num_train_timesteps
    k = torch.arange(T)
    torch.testing.assert_close(
        sched.alpha_bar(sched.library_time(k)), sched.alphas_cumprod, rtol=1e-12, atol=0
    )
    assert float(sched.alpha_bar(torch.tensor(0.0, dtype=torch.float64))) == 1.0
    t = torch.linspace(0, 1, 5001, dtype=torch.float64)
    assert (torch.diff(sched.alpha_bar(t)) <= 0).all()
    torch.testing.assert_close(sched.network_time(sched.library_time(k)), k.double())
    # between two nodes log abar is linear
    mid = sched.alpha_bar(torch.tensor(10.5 / T, dtype=torch.float64))
    torch.testing.assert_close(mid, (sched.alphas_cumprod[9] * sched.alphas_cumprod[10]).sqrt())


def test_ddim_timesteps_and_time_points():
    sched = DiscreteVPSchedule.linear()
    assert sched.ddim_timesteps(10, "trailing").tolist() == list(range(999, 0, -100))
    assert sched.ddim_timesteps(10, "leading").tolist() == list(range(900, -1, -100))
    assert sched.ddim_timesteps(10, "leading", steps_offset=1).tolist() == list(range(901, 0, -100))
    # trailing DDIM is the uniform grid in library time
    torch.testing.assert_close(
        sched.time_points(4, "trailing"), torch.tensor([1.0, 0.75, 0.5, 0.25], dtype=torch.float64)
    )


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_presets_match_diffusers(schedule):
    diffusers = pytest.importorskip("diffusers")
    betas = {"beta_start": 0.00085, "beta_end": 0.012} if schedule == "scaled_linear" else {}
    ref = diffusers.DDIMScheduler(beta_schedule=schedule, **betas).alphas_cumprod.double()
    ours = {
        "linear": DiscreteVPSchedule.linear,
        "scaled_linear": DiscreteVPSchedule.scaled_linear,
        "squaredcos_cap_v2": DiscreteVPSchedule.cosine,
    }[schedule]()
    torch.testing.assert_close(ours.alphas_cumprod, ref, rtol=2e-5, atol=1e-9)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_ddim_timesteps_match_diffusers(spacing):
    diffusers = pytest.importorskip("diffusers")
    for steps in (1, 7, 10, 50):
        ref = diffusers.DDIMScheduler(timestep_spacing=spacing)
        ref.set_timesteps(steps)
        assert (
            DiscreteVPSchedule.linear().ddim_timesteps(steps, spacing).tolist()
            == ref.timesteps.tolist()
        )


def test_transport_coefficients_and_D():
    sched = DiscreteVPSchedule.linear()
    t = torch.linspace(0.01, 1, 50, dtype=torch.float64)
    eps = vp_transport(sched, "epsilon").coefficients(t)
    torch.testing.assert_close(eps.alpha**2 + eps.gamma**2, torch.ones_like(t))
    torch.testing.assert_close(eps.D, -eps.gamma)
    v = vp_transport(sched, "v_prediction").coefficients(t)
    torch.testing.assert_close(v.D, -torch.ones_like(t))
    x0 = vp_transport(sched, "sample").coefficients(t)
    torch.testing.assert_close(x0.D, x0.alpha)


# ---------------------------------------------------------------------- DDIM equivalence
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("spacing", ["trailing", "leading"])
def test_ucgm_order1_equals_ddim_discrete(smooth_net, prediction, spacing):
    net = smooth_net(time_scale=1000.0)
    sched = DiscreteVPSchedule.scaled_linear(spacing=spacing)
    noise = torch.randn(64, 2, dtype=torch.float64)
    steps = 8
    ref = ddim_reference(net, noise, sched.ddim_timesteps(steps), sched.alphas_cumprod, prediction)
    adapted = adapt_vp_diffusion(net, sched, prediction)
    with torch.no_grad():
        out = sample(
            adapted.model,
            noise,
            adapted.transport,
            time_points=adapted.time_points(steps),
            kappa=0.0,
            rho=0.0,
        )
    torch.testing.assert_close(out.sample, ref.detach(), rtol=1e-10, atol=1e-10)
    assert out.nfe == steps


def test_network_receives_the_ddim_timesteps(smooth_net):
    seen = []
    net = smooth_net(time_scale=1000.0)

    def spy(x, k):
        seen.append(k[0].item())
        return net(x, k)

    sched = DiscreteVPSchedule.linear()
    adapt_vp_diffusion(spy, sched, round_timesteps=True).sample(
        torch.randn(4, 2, dtype=torch.float64), steps=5, native_grid=True
    )
    assert seen == sched.ddim_timesteps(5).double().tolist()


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_ucgm_order1_equals_ddim_continuous(smooth_net, prediction):
    net = smooth_net(time_scale=1.0)
    sched = ContinuousVPSchedule.linear(network_time_scale=999.0)
    net.time_scale = 999.0
    noise = torch.randn(64, 2, dtype=torch.float64)
    grid = torch.tensor([1.0, 0.8, 0.55, 0.3, 0.12, 0.03], dtype=torch.float64)
    ref = continuous_ddim_reference(net, noise, grid, sched.alpha_bar, prediction, 999.0)
    out = adapt_vp_diffusion(net, sched, prediction).sample(noise, time_points=grid)
    torch.testing.assert_close(out.sample, ref.detach(), rtol=1e-10, atol=1e-10)
    abar = sched.alpha_bar(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert abar[0] == 1.0 and math.isclose(float(abar[1]), math.exp(-(0.1 + 9.95)), rel_tol=1e-12)


def test_continuous_cosine_native_grid_avoids_zero_snr(smooth_net):
    net = smooth_net()
    adapted = adapt_vp_diffusion(net, ContinuousVPSchedule.cosine())
    out = adapted.sample(torch.randn(8, 2, dtype=torch.float64), steps=10, native_grid=True)
    assert torch.isfinite(out.sample).all()
    assert float(out.times[0]) == pytest.approx(0.999)


# ---------------------------------------------------------------------- against diffusers
def _diffusers_ddim_loop(scheduler, net, noise, steps):
    scheduler.set_timesteps(steps)
    x = noise
    for k in scheduler.timesteps:
        out = net(x, k.to(x.dtype).expand(x.shape[0]))
        x = scheduler.step(out, k, x, eta=0.0).prev_sample
    return x


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize(("spacing", "offset"), [("leading", 0), ("leading", 1), ("trailing", 0)])
def test_ucgm_order1_equals_diffusers_ddim(smooth_net, prediction, spacing, offset):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type=prediction,
        timestep_spacing=spacing,
        steps_offset=offset,
        clip_sample=False,
        set_alpha_to_one=True,
    )
    net = smooth_net(time_scale=1000.0).float()
    noise = torch.randn(64, 2)
    steps = 10
    with torch.no_grad():
        ref = _diffusers_ddim_loop(scheduler, net, noise, steps)
    adapted = adapt_diffusers(net, scheduler)
    out = adapted.sample(noise, steps=steps, native_grid=True)
    torch.testing.assert_close(out.sample, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ucgm_order1_equals_diffusers_euler_discrete(smooth_net):
    """diffusers' EulerDiscreteScheduler (Euler in sigma on x / sqrt(abar)) is DDIM's step."""
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_schedule="linear", timestep_spacing="trailing"
    )
    net = smooth_net(time_scale=1000.0).float()
    noise = torch.randn(64, 2)
    steps = 12
    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        for k in scheduler.timesteps:
            x_in = scheduler.scale_model_input(x, k)
            x = scheduler.step(net(x_in, k.expand(x.shape[0]).float()), k, x).prev_sample
    sigma_max = float(scheduler.sigmas[0])
    adapted = adapt_diffusers(net, scheduler)
    assert (
        adapted.time_points(steps).tolist()
        == DiscreteVPSchedule.linear().time_points(steps, "trailing").tolist()
    )
    # diffusers starts from x_sigma = sigma_max z; the UCGM state is x_sigma / sqrt(1 + sigma^2).
    out = adapted.sample(
        noise * float(scheduler.init_noise_sigma) / math.sqrt(1 + sigma_max**2),
        steps=steps,
        native_grid=True,
    )
    torch.testing.assert_close(out.sample, x, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError, match="'epsilon', 'v_prediction', 'sample'"):
        adapt_vp_diffusion(lambda x, t: x, DiscreteVPSchedule.linear(), "eps")
    with pytest.raises(ValueError, match="'leading', 'trailing', 'linspace'"):
        DiscreteVPSchedule.linear(spacing="uniform")
    with pytest.raises(ValueError, match="non-increasing"):
        DiscreteVPSchedule(torch.tensor([0.9, 0.95, 0.5]))
    with pytest.raises(ValueError, match="steps"):
        DiscreteVPSchedule.linear().ddim_timesteps(0)
