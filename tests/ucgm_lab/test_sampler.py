import math

import pytest
import torch

from tests.gaussian_oracle import COV, MU, GaussianOracle, Net, exact_flow_endpoint
from ucgm_lab.sampler import (
    auto_stochastic_ratio,
    reconstruct,
    sample,
    second_order_correction,
    time_grid,
)
from ucgm_lab.schedules import KumaraswamySchedule
from ucgm_lab.transports import Decomposition, get_transport


def test_order1_no_noise_no_extrapolation_is_euler_on_linear():
    net = Net().double()
    noise = torch.randn(64, 2, dtype=torch.float64)
    out = sample(net, noise, "linear", steps=10)
    times = out.times
    x = noise.clone()
    for i in range(10):
        F = net(x, times[i].expand(64))
        x = x + (times[i + 1] - times[i]) * F  # explicit Euler on dx/dt = F
    torch.testing.assert_close(out.sample, x, rtol=1e-12, atol=1e-12)
    assert out.nfe == 10
    assert out.x_hat.shape == (10, 64, 2) and out.states.shape == (11, 64, 2)


def test_relinear_sampling_equals_linear_sampling_of_the_mirrored_network():
    """A ReLinear network m_re(x, s) = -m_lin(x, 1 - s) samples exactly like m_lin under Linear."""
    net = Net().double()

    def mirrored(x, s, y=None):
        return -net(x, 1 - s)

    noise = torch.randn(32, 2, dtype=torch.float64)
    a = sample(net, noise, "linear", steps=6, order=2, kappa=0.3)
    b = sample(mirrored, noise, "relinear", steps=6, order=2, kappa=0.3)
    torch.testing.assert_close(a.sample, b.sample)
    torch.testing.assert_close(a.x_hat, b.x_hat)


@pytest.mark.parametrize("name", ["linear", "trigflow"])
def test_convergence_order_with_exact_gaussian_model(name):
    """Global error ~ 1/N for order 1 and ~ 1/N^2 for order 2 against the exact PF-ODE map.

    Order 2 divides by gamma(t_0) (Alg. 2 line 11), which is tiny when t_0 is near 1; its
    asymptotic regime starts earlier with a larger noise-end gap, so this test uses 0.05.
    """
    tr = get_transport(name)
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(16, 2, dtype=torch.float64)
    sched = KumaraswamySchedule(gap_noise=0.05, gap_data=0.0)
    t0 = float(sched.time_points(1)[0])
    exact = exact_flow_endpoint(noise, t0, tr.alpha, tr.gamma, MU, COV)

    def error(points, order):
        steps = points if order == 1 else 2 * points - 1
        form = "data" if order == "data" else "noise"
        out = sample(
            oracle,
            noise,
            tr,
            steps=steps,
            order=1 if order == 1 else 2,
            schedule=sched,
            correction=form,
        )
        return (out.sample.double() - exact).norm(dim=1).mean().item()

    e1 = [error(n, 1) for n in (8, 16, 32)]
    e2 = [error(n, 2) for n in (16, 32, 64)]
    e2_data = [error(n, "data") for n in (16, 32, 64)]
    rates_data = [math.log2(e2_data[i] / e2_data[i + 1]) for i in range(2)]
    # the data form divides by alpha(t_i); with the last grid points near t = 0 its asymptotic
    # regime starts later (measured rates 1.6-1.7 on TrigFlow at these sizes, 2 on Linear)
    assert all(1.4 < r < 2.6 for r in rates_data), (e2_data, rates_data)
    rates1 = [math.log2(e1[i] / e1[i + 1]) for i in range(2)]
    rates2 = [math.log2(e2[i] / e2[i + 1]) for i in range(2)]
    assert all(0.8 < r < 1.3 for r in rates1), (e1, rates1)
    assert all(1.7 < r < 2.6 for r in rates2), (e2, rates2)
    assert e2[-1] < e1[-1] / 10


def test_samples_reproduce_gaussian_mean_and_covariance():
    tr = get_transport("linear")
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(20000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    exact = exact_flow_endpoint(noise, 0.999, tr.alpha, tr.gamma, MU, COV)
    # the oracle and the exact map themselves: data statistics up to sampling error
    torch.testing.assert_close(exact.mean(0), MU, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(exact.T), COV, atol=0.03, rtol=0)
    # order 2 starts at t_0 = 0.99 here: with t_0 = 0.999 its first correction, which divides by
    # gamma(t_0), is inaccurate (covariance error 0.13 at 32 NFE against 0.04 for order 1).
    for kwargs in (
        dict(steps=48),
        dict(steps=31, order=2, schedule=KumaraswamySchedule(gap_noise=0.01)),
    ):
        x = sample(oracle, noise, tr, **kwargs).sample
        torch.testing.assert_close(x.mean(0), MU, atol=0.05, rtol=0)
        torch.testing.assert_close(torch.cov(x.T), COV, atol=0.05, rtol=0)


def test_stochastic_sampling_keeps_the_gaussian_marginal():
    tr = get_transport("linear")
    oracle = GaussianOracle(tr, MU, COV)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(20000, 2, dtype=torch.float64, generator=g)
    out = sample(oracle, noise, tr, steps=100, rho="auto", generator=g)
    torch.testing.assert_close(out.sample.mean(0), MU, atol=0.04, rtol=0)
    torch.testing.assert_close(torch.cov(out.sample.T), COV, atol=0.04, rtol=0)


def test_second_order_averages_z_hat_and_reduces_to_first_order_when_estimates_agree():
    tr = get_transport("trigflow")
    t_now, t_next = torch.tensor(0.7, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64)
    x_hat, z_hat = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    c = tr.coefficients(t_now)
    state = c.alpha * z_hat + c.gamma * x_hat
    est = Decomposition(x_hat, z_hat)
    first = reconstruct(tr, est, t_next, 0.0, None)
    for form in ("noise", "data"):
        torch.testing.assert_close(
            second_order_correction(tr, state, t_now, t_next, est, est, form), first
        )
    # the correction moves the state along alpha(t') - gamma(t') alpha(t) / gamma(t) times the mean z^
    other = torch.randn(5, 2, dtype=torch.float64)
    moved = second_order_correction(tr, state, t_now, t_next, est, Decomposition(x_hat, other))
    cn = tr.coefficients(t_next)
    k = cn.alpha - cn.gamma * c.alpha / c.gamma
    torch.testing.assert_close(moved - first, k * (other - z_hat) / 2)
    # the data form moves it along gamma(t') - alpha(t') gamma(t) / alpha(t) times the mean x^
    moved = second_order_correction(
        tr, state, t_now, t_next, est, Decomposition(other, z_hat), "data"
    )
    k = cn.gamma - cn.alpha * c.gamma / c.alpha
    torch.testing.assert_close(moved - first, k * (other - x_hat) / 2)


def test_data_form_correction_is_stable_at_few_steps():
    """The paper's correction divides by gamma(t_0) = 0.001 at t_0 = 0.999; the data form does not."""
    tr = get_transport("linear")
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(2000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    exact = exact_flow_endpoint(noise, 0.999, tr.alpha, tr.gamma, MU, COV)
    err = {}
    for form in ("noise", "data"):
        for nfe in (3, 7):
            out = sample(oracle, noise, tr, steps=nfe, order=2, correction=form)
            err[form, nfe] = (out.sample - exact).norm(dim=1).mean().item()
    # measured: noise form 634 (NFE 3) and 26 (NFE 7); data form 0.79 and 0.22 (Euler at 7: 0.16)
    assert err["data", 3] < 0.01 * err["noise", 3] and err["data", 3] < 1.0, err
    assert err["data", 7] < 0.1 * err["noise", 7] and err["data", 7] < 0.3, err
    with pytest.raises(ValueError, match="correction"):
        sample(oracle, noise, tr, steps=3, order=2, correction="x")


def test_extrapolation_by_hand():
    net = Net().double()
    tr = get_transport("linear")
    noise = torch.randn(8, 2, dtype=torch.float64)
    kappa = 0.5
    out = sample(net, noise, tr, steps=4, kappa=kappa)
    ts = out.times
    x, prev = noise.clone(), None
    for i in range(4):
        F = net(x, ts[i].expand(8))
        t = ts[i]
        xh, zh = x - t * F, x + (1 - t) * F  # eq. 2 for Linear, written out
        raw = (xh, zh)
        if i >= 1:
            xh, zh = xh + kappa * (xh - prev[0]), zh + kappa * (zh - prev[1])
        prev = raw
        x = ts[i + 1] * zh + (1 - ts[i + 1]) * xh
    torch.testing.assert_close(out.sample, x)
    # the reference starts one step later: step 1 is then plain
    late = sample(net, noise, tr, steps=4, kappa=kappa, extrapolation_start=2)
    assert not torch.allclose(late.sample, out.sample)
    torch.testing.assert_close(late.states[2], sample(net, noise, tr, steps=4).states[2])


@pytest.mark.parametrize("name", ["linear", "trigflow"])
def test_multistep_is_second_order_with_exact_gaussian_model(name):
    """The Adams-Bashforth multistep option (docs/paper-notes.md F7) at one evaluation per step.

    Global error against the exact PF-ODE map: order 1 halves per doubling, every multistep
    form quarters (measured on this grid: velocity 2.0-2.2, noise 1.7-1.9, data 1.2-1.9 and
    rising, Euler 0.95-0.99), with the same number of evaluations as Euler.
    """
    tr = get_transport(name)
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sched = KumaraswamySchedule(gap_noise=0.05, gap_data=0.0)
    exact = exact_flow_endpoint(noise, float(sched.time_points(1)[0]), tr.alpha, tr.gamma, MU, COV)

    def errors(form):
        errs = []
        for steps in (16, 32, 64):
            out = sample(oracle, noise, tr, steps=steps, schedule=sched, multistep=form)
            assert out.nfe == steps
            errs.append((out.sample - exact).norm(dim=1).mean().item())
        return errs, [math.log2(errs[i] / errs[i + 1]) for i in range(2)]

    euler, rates1 = errors(None)
    assert all(0.8 < r < 1.2 for r in rates1), (euler, rates1)
    for form, low in (("velocity", 1.8), ("noise", 1.6), ("data", 1.1)):
        errs, rates = errors(form)
        assert all(low < r < 2.5 for r in rates), (form, errs, rates)
        assert rates[1] > 1.5 and errs[-1] < euler[-1] / 2, (form, errs, rates)


def test_velocity_multistep_on_linear_is_adams_bashforth_by_hand():
    """On Linear, F = dx/dt: x_{i+1} = x_i + h_i (F_i + h_i / (2 h_{i-1}) (F_i - F_{i-1}))."""
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64)
    points = [0.999, 0.8, 0.45, 0.3, 0.05]  # uneven steps
    out = sample(net, noise, "linear", time_points=points, multistep="velocity")
    ts = [*points, 0.0]
    x, F_prev, h_prev = noise.clone(), None, 1.0
    for i in range(len(points)):
        F = net(x, torch.full((8,), ts[i], dtype=torch.float64))
        h = ts[i + 1] - ts[i]
        step = F if F_prev is None else F + h / (2 * h_prev) * (F - F_prev)
        x, F_prev, h_prev = x + h * step, F, h
    torch.testing.assert_close(out.sample, x)
    assert out.nfe == len(points)
    # the noise form on the same grid: z^ extrapolated in s = alpha / gamma, x^ re-decomposed
    out_noise = sample(net, noise, "linear", time_points=points, multistep="noise")
    x, prev = noise.clone(), None
    s = [t / (1 - t) for t in ts]
    for i in range(len(points)):
        t = ts[i]
        F = net(x, torch.full((8,), t, dtype=torch.float64))
        zh = x + (1 - t) * F  # eq. 2 for Linear
        raw = zh
        if prev is not None:
            k = (s[i + 1] - s[i]) / (2 * (s[i] - s[i - 1]))
            zh = zh + k * (zh - prev)
        xh = (x - t * zh) / (1 - t)
        prev = raw
        x = ts[i + 1] * zh + (1 - ts[i + 1]) * xh
    torch.testing.assert_close(out_noise.sample, x)


def test_multistep_bad_inputs():
    net = Net().double()
    noise = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="multistep must be None"):
        sample(net, noise, "linear", steps=3, multistep="adams")
    with pytest.raises(ValueError, match="order=1 and kappa=0"):
        sample(net, noise, "linear", steps=3, multistep="velocity", kappa=0.3)
    with pytest.raises(ValueError, match="order=1 and kappa=0"):
        sample(net, noise, "linear", steps=3, multistep="noise", order=2)


def test_auto_rho_formula_and_clipping():
    tr = get_transport("linear")
    rho = auto_stochastic_ratio(tr, torch.tensor(0.8), torch.tensor(0.7))
    assert rho.item() == pytest.approx(2 * 0.1 * 0.8 / 0.7**2, rel=1e-6)
    assert auto_stochastic_ratio(tr, torch.tensor(0.1), torch.tensor(0.0)).item() == 1.0


def test_rho_one_replaces_noise_estimate_by_fresh_noise():
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64)
    out = sample(net, noise, "linear", steps=2, rho=1.0, generator=torch.Generator().manual_seed(5))
    fresh = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    t1 = out.times[1]
    torch.testing.assert_close(out.states[1], t1 * fresh + (1 - t1) * out.x_hat[0])
    again = sample(
        net, noise, "linear", steps=2, rho=1.0, generator=torch.Generator().manual_seed(5)
    )
    torch.testing.assert_close(out.sample, again.sample)


def test_nfe_counts():
    net = Net().double()
    noise = torch.randn(4, 2, dtype=torch.float64)
    assert sample(net, noise, "linear", steps=7).nfe == 7
    assert sample(net, noise, "linear", steps=7, order=2).nfe == 7  # 4 points -> 4 + 3
    assert sample(net, noise, "linear", steps=8, order=2).nfe == 7
    assert sample(net, noise, "linear", steps=1, order=2).nfe == 1
    assert sample(net, noise, "linear", time_points=[1.0, 0.3]).nfe == 2


def test_classifier_free_guidance_matches_a_guided_network():
    from tests.conftest import TinyNet

    net = TinyNet(num_classes=3).double()
    y = torch.tensor([0, 1, 2, 1])
    w = 2.5

    def guided(x, t, labels):
        return net(x, t, torch.full_like(labels, 3)) + w * (
            net(x, t, labels) - net(x, t, torch.full_like(labels, 3))
        )

    noise = torch.randn(4, 2, dtype=torch.float64)
    a = sample(net, noise, "linear", steps=5, y=y, guidance_scale=w)
    b = sample(guided, noise, "linear", steps=5, y=y)
    torch.testing.assert_close(a.sample, b.sample)
    assert a.nfe == 10
    c = sample(net, noise, "linear", steps=5, y=y, guidance_scale=w, guidance_interval=(0.0, 0.5))
    assert c.nfe == 5 + sum(1 for t in c.times[:-1] if t <= 0.5)


def test_even_schedule_has_no_evaluation_at_the_data_end():
    net = Net().double()
    out = sample(net, torch.randn(3, 2, dtype=torch.float64), "linear", 2, schedule="even")
    torch.testing.assert_close(out.times, torch.tensor([0.999, 0.4995, 0.0], dtype=torch.float64))
    uniform = sample(net, torch.randn(3, 2, dtype=torch.float64), "linear", 2, schedule="uniform")
    assert uniform.times.tolist() == pytest.approx([0.999, 0.001, 0.0])


def test_default_grid_spends_every_evaluation():
    """sample(steps=N) uses the even grid: N distinct times 0.999 - 0.999 i / N, none at 0.001."""
    net = Net().double()
    noise = torch.randn(3, 2, dtype=torch.float64)
    expected = {
        1: [0.999, 0.0],
        2: [0.999, 0.4995, 0.0],
        3: [0.999, 0.666, 0.333, 0.0],
        4: [0.999, 0.74925, 0.4995, 0.24975, 0.0],
    }
    for steps, times in expected.items():
        out = sample(net, noise, "linear", steps)
        assert out.times.tolist() == pytest.approx(times, abs=1e-12), steps
        assert out.nfe == steps
    for steps in (1, 2, 3, 4, 8, 16, 32, 100):
        t = sample(net, noise, "linear", steps).times
        gaps = -torch.diff(t)
        assert gaps.min() >= 0.999 / steps - 1e-12, steps  # no two evaluations nearly together
        # the last evaluation is at about 1/N, not at 0.001
        assert float(t[-2]) == pytest.approx(0.999 / steps), steps
        torch.testing.assert_close(t, KumaraswamySchedule.even().time_points(steps), rtol=0, atol=0)
    # 2 NFE are no longer 1 NFE in disguise: the second evaluation changes the sample
    one = sample(net, noise, "linear", 1).sample
    two = sample(net, noise, "linear", 2).sample
    assert (one - two).abs().max() > 1e-3
    # the reference's grid and the named schedules stay available, explicit grids win
    assert sample(net, noise, "linear", 2, schedule="uniform").times[1] == pytest.approx(0.001)
    auto = sample(net, noise, "linear", 4, schedule="auto").times
    torch.testing.assert_close(auto, KumaraswamySchedule.auto().time_points(4))
    assert sample(net, noise, "linear", time_points=[0.9, 0.2]).times.tolist() == [0.9, 0.2, 0.0]
    # order 2 halves the points of the same grid
    assert sample(net, noise, "linear", 5, order=2).times.tolist() == pytest.approx(
        [0.999, 0.666, 0.333, 0.0]
    )


def test_explicit_time_points_two_step():
    net = Net().double()
    out = sample(net, torch.randn(3, 2, dtype=torch.float64), "linear", time_points=[1.0, 0.3])
    assert out.times.tolist() == [1.0, 0.3, 0.0]


def test_edm_final_sample_is_the_data_estimate():
    tr = get_transport("edm")
    oracle = GaussianOracle(tr, MU, COV)
    noise = torch.randn(2000, 2, dtype=torch.float64) * float(tr.alpha(torch.tensor(0.999)))
    out = sample(oracle, noise, tr, steps=40, order=2, schedule="auto")
    torch.testing.assert_close(out.sample.mean(0), MU, atol=0.08, rtol=0)  # not 2 * MU


def test_inputs_unchanged_and_bad_inputs():
    net = Net().double()
    noise = torch.randn(4, 2, dtype=torch.float64)
    keep = noise.clone()
    sample(net, noise, "linear", steps=3, rho=0.5, kappa=0.2)
    assert torch.equal(noise, keep)
    with pytest.raises(ValueError, match="rho"):
        sample(net, noise, "linear", steps=3, rho=1.5)
    with pytest.raises(ValueError, match="rho"):
        sample(net, noise, "linear", steps=3, rho="sde")
    with pytest.raises(ValueError, match="kappa"):
        sample(net, noise, "linear", steps=3, kappa=-0.1)
    with pytest.raises(ValueError, match="order"):
        sample(net, noise, "linear", steps=3, order=3)
    with pytest.raises(ValueError, match="order must be 1 or 2, got True"):
        sample(net, noise, "linear", steps=3, order=True)  # True == 1, but not an order
    with pytest.raises(ValueError, match="steps"):
        sample(net, noise, "linear", steps=0)
    with pytest.raises(ValueError, match="decreasing"):
        sample(net, noise, "linear", time_points=[0.3, 1.0])
    with pytest.raises(ValueError, match="gamma"):
        sample(net, noise, "linear", time_points=[1.0, 0.5, 0.2], order=2)
    with pytest.raises(ValueError, match="shape"):
        sample(net, torch.randn(4), "linear", steps=3)
    with pytest.raises(ValueError, match="Unknown transport"):
        sample(net, noise, "nope", steps=3)
    with pytest.raises(ValueError, match="labels"):
        sample(net, noise, "linear", steps=3, guidance_scale=2.0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        sample(net, noise, "linear", steps=3, y=torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize(
    "steps, order, schedule, points",
    [
        (2, 1, "even", None),
        (5, 2, "uniform", None),
        (4, 1, "auto", None),
        (7, 1, KumaraswamySchedule(a=1.2, b=0.8, c=1.0), None),
        (None, 1, "even", [0.9, 0.5, 0.1]),
    ],
)
def test_time_grid_is_the_grid_sample_walks(steps, order, schedule, points):
    """The search and the zoo predict grids with time_grid: it must be what sample() uses."""
    grid = time_grid(steps, order, schedule, points)
    out = sample(
        lambda x, t, y=None: torch.zeros_like(x),
        torch.zeros(3, 2),
        "linear",
        steps,
        order=order,
        schedule=schedule,
        time_points=points,
    )
    assert torch.equal(out.times.to(grid), grid)
    assert grid[0] < 1 and grid[-1] == 0 and bool((grid[:-1] > grid[1:]).all())
    if points is not None:
        assert grid.tolist()[:-1] == pytest.approx(points)
    elif order == 2:
        assert grid.numel() - 1 == (steps + 1) // 2


def test_time_grid_refuses_disagreeing_or_missing_steps():
    with pytest.raises(ValueError, match="disagrees with time_points"):
        time_grid(3, 1, "even", [0.9, 0.5])
    with pytest.raises(ValueError, match="Give steps"):
        time_grid(None, 1, "even", None)
    with pytest.raises(ValueError, match="schedule must be"):
        time_grid(4, 1, "cosine", None)


@pytest.mark.parametrize("accumulate_float64", [True, False])
def test_the_divisor_check_holds_in_the_state_dtype(accumulate_float64):
    # issue 24: in float32, cos(pi / 2) = -4.4e-8 passed the 1e-8 tolerance and the sample
    # was finite garbage (|x| up to 1.45e6)
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2)
    noise = torch.randn(64, 2)

    def model(x, t, y=None):
        return net(x) + t[:, None]

    with pytest.raises(ValueError, match=r"divides by gamma\(t_i\).*at t_i = 1 "):
        sample(model, noise, "trigflow", time_points=[1.0, 0.5, 0.2], order=2,
               accumulate_float64=accumulate_float64)  # fmt: skip
    # a valid grid is not refused, and float32 agrees with float64
    ok = [sample(model, noise, "trigflow", time_points=[0.999, 0.5, 0.2], order=2,
                 accumulate_float64=a).sample for a in (True, False)]  # fmt: skip
    torch.testing.assert_close(ok[0], ok[1], rtol=1e-3, atol=1e-3)


def test_divisor_tolerance_scales_with_the_square_root_of_eps():
    from ucgm_lab.sampler import DIVISOR_TOLERANCE, divisor_tolerance

    assert divisor_tolerance(torch.float64) == DIVISOR_TOLERANCE
    for dtype in (torch.float32, torch.float16):
        ratio = torch.finfo(dtype).eps / torch.finfo(torch.float64).eps
        assert divisor_tolerance(dtype) == pytest.approx(DIVISOR_TOLERANCE * math.sqrt(ratio))
    # float32's cos(pi / 2) is refused, the float32 value at t = 0.999 is not
    half_pi = torch.tensor(math.pi / 2, dtype=torch.float32)
    assert abs(float(torch.cos(half_pi))) < divisor_tolerance(torch.float32)
    assert float(torch.cos(half_pi * 0.999)) > divisor_tolerance(torch.float32)


def test_an_extrapolation_start_beyond_the_last_step_is_refused():
    # issue 24: kappa=0.5, extrapolation_start=99, steps=4 was bit-identical to kappa=0
    noise = torch.randn(8, 2)

    def model(x, t, y=None):
        return x * t[:, None]

    with pytest.raises(
        ValueError, match=r"extrapolation_start=99 is beyond the last step of this 4-step grid"
    ):
        sample(model, noise, "linear", steps=4, kappa=0.5, extrapolation_start=99)
    sample(model, noise, "linear", steps=4, kappa=0.5, extrapolation_start=3)  # the last step
    sample(model, noise, "linear", steps=1, kappa=0.5)  # the default start on a one-step grid
    sample(model, noise, "linear", steps=4, extrapolation_start=99)  # kappa = 0: nothing to start
