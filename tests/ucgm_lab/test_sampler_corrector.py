"""The Adams-Moulton corrector of the multistep forms (ucgm_lab/sampler_corrector.py)."""

import math
from fractions import Fraction

import pytest
import sympy as sp
import torch

from tests.gaussian_oracle import COV, MU, GaussianOracle, Net, exact_flow_endpoint
from ucgm_lab.sampler import sample
from ucgm_lab.sampler_corrector import adams_moulton_weights
from ucgm_lab.schedules import KumaraswamySchedule
from ucgm_lab.transports import get_transport


def _sympy_weights(s_prev, s_now, s_next):
    """Integral over [s_now, s_next] of each Lagrange basis polynomial, divided by the step."""
    s = sp.Symbol("s")
    nodes = [sp.Rational(v.numerator, v.denominator) for v in (s_prev, s_now, s_next)]
    weights = []
    for j, node in enumerate(nodes):
        basis = sp.Integer(1)
        for k, other in enumerate(nodes):
            if k != j:
                basis *= (s - other) / (node - other)
        weights.append(sp.integrate(basis, (s, nodes[1], nodes[2])) / (nodes[2] - nodes[1]))
    return [float(w) for w in weights]


@pytest.mark.parametrize(
    "nodes",
    [(0.0, 1.0, 2.0), (0.999, 0.8, 0.45), (0.3, 0.2, 0.05), (-3.0, 0.5, 0.6), (0.1, 0.5, 2.5)],
)
def test_weights_integrate_the_parabola_through_the_three_points(nodes):
    nodes = tuple(Fraction(v).limit_denominator(10**6) for v in nodes)
    expected = _sympy_weights(*nodes)
    got = adams_moulton_weights(*(float(v) for v in nodes))
    assert got == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_weights_on_equal_steps_and_the_trapezoid_limit():
    assert adams_moulton_weights(0.0, 1.0, 2.0) == pytest.approx((-1 / 12, 8 / 12, 5 / 12))
    assert adams_moulton_weights(None, 1.0, 1.5) == (0.0, 0.5, 0.5)
    assert adams_moulton_weights(math.inf, 1.0, 1.5) == (0.0, 0.5, 0.5)
    far = adams_moulton_weights(-1e12, 1.0, 1.5)
    assert far == pytest.approx((0.0, 0.5, 0.5), abs=1e-10)


def _errors(tr, form, corrector, steps_list, noise, sched):
    oracle = GaussianOracle(tr, MU, COV)
    exact = exact_flow_endpoint(noise, float(sched.time_points(1)[0]), tr.alpha, tr.gamma, MU, COV)
    errs = []
    for steps in steps_list:
        out = sample(
            oracle, noise, tr, steps=steps, schedule=sched, multistep=form, corrector=corrector
        )
        assert out.nfe == steps  # the corrector costs no evaluation
        errs.append((out.sample - exact).norm(dim=1).mean().item())
    return errs, [math.log2(errs[i] / errs[i + 1]) for i in range(len(errs) - 1)]


@pytest.mark.parametrize("form", ["velocity", "noise"])
def test_the_corrector_raises_the_order_by_one_on_the_exact_gaussian_model(form):
    """Global error against the exact PF-ODE map (Linear, grid gap 0.05 at the noise end).

    Adams-Bashforth alone quarters the error per doubling of the steps (order 2); with the
    corrector it falls about 8-fold (order 3; measured: velocity 2.9-3.0, noise 2.7-2.8 from 16
    to 64 steps), at the same NFE.
    """
    tr = get_transport("linear")
    noise = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sched = KumaraswamySchedule(gap_noise=0.05, gap_data=0.0)
    steps = (16, 32, 64)
    ab2, ab2_rates = _errors(tr, form, False, steps, noise, sched)
    pec, pec_rates = _errors(tr, form, True, steps, noise, sched)
    assert all(1.6 < r < 2.4 for r in ab2_rates), (ab2, ab2_rates)
    assert all(2.5 < r < 3.5 for r in pec_rates), (pec, pec_rates)
    assert pec[-1] < ab2[-1] / 5


def test_the_corrector_helps_on_trigflow_and_the_data_form_stays_convergent():
    """TrigFlow's velocity form with the corrector: far below Adams-Bashforth at 32 and 64
    steps (its error changes sign there, so no clean rate); the data form converges."""
    noise = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sched = KumaraswamySchedule(gap_noise=0.05, gap_data=0.0)
    tr = get_transport("trigflow")
    ab2, _ = _errors(tr, "velocity", False, (32, 64), noise, sched)
    pec, _ = _errors(tr, "velocity", True, (32, 64), noise, sched)
    assert pec[0] < ab2[0] / 5 and pec[1] < ab2[1] / 5, (ab2, pec)
    data, rates = _errors(get_transport("linear"), "data", True, (16, 32, 64), noise, sched)
    assert all(r > 1.5 for r in rates), (data, rates)


def test_velocity_corrector_on_linear_is_a_hand_written_predictor_corrector_loop():
    """On Linear, F = dx/dt. Predict x^P_{i+1} = x_i + h_i (F_i + h_i / (2 h_{i-1}) (F_i - F_{i-1}))
    (Euler at the first step), evaluate F_{i+1} = F(x^P_{i+1}), correct
    x_{i+1} = x_i + integral of the parabola through F_{i-1}, F_i, F_{i+1} (the trapezoid at the
    first step), and go on from x_{i+1} with F_{i+1}; the last step (to t = 0) is not corrected.
    """
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    points = [0.999, 0.8, 0.45, 0.3, 0.05]  # uneven steps
    out = sample(net, noise, "linear", time_points=points, multistep="velocity", corrector=True)
    ts = [*points, 0.0]

    def F_at(x, t):
        return net(x, torch.full((8,), t, dtype=torch.float64))

    x, Fs, corrected = noise.clone(), [], [noise.clone()]
    for i in range(len(points)):
        F = F_at(x, ts[i])  # evaluated at the predicted state
        if i >= 1:  # correct x_i from x_{i-1}
            nodes = ts[max(i - 2, 0) : i + 1]
            if i == 1:
                w = [0.5, 0.5]
            else:
                w = _sympy_weights(*(Fraction(v) for v in nodes))  # exact, then rounded
            values = [*Fs[-len(w) + 1 :], F]
            x = corrected[-2] + (ts[i] - ts[i - 1]) * sum(
                wk * v for wk, v in zip(w, values, strict=True)
            )
            corrected[-1] = x
        Fs.append(F)
        h = ts[i + 1] - ts[i]
        slope = F if i == 0 else F + h / (2 * (ts[i] - ts[i - 1])) * (F - Fs[-2])
        x = x + h * slope
        corrected.append(x)
    assert out.nfe == len(points)
    torch.testing.assert_close(out.sample, x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.states, torch.stack(corrected), rtol=1e-12, atol=1e-12)


def test_reported_estimates_stay_raw_and_the_first_step_is_unchanged():
    """x_hat / z_hat are each evaluation's own estimates: the first two evaluations (at t_0, and
    at the state predicted by the same Euler step) match the sampler without the corrector, and
    every x_hat decomposes the network output at the predicted, not the corrected, state."""
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    plain = sample(net, noise, "linear", steps=5, multistep="velocity")
    corr = sample(net, noise, "linear", steps=5, multistep="velocity", corrector=True)
    assert torch.equal(plain.x_hat[:2], corr.x_hat[:2]) and torch.equal(
        plain.z_hat[:2], corr.z_hat[:2]
    )
    assert not torch.allclose(plain.states[2], corr.states[2])
    # on Linear x^ = x~ - t F and z^ = x~ + (1 - t) F: x^ + t (z^ - x^) is the evaluated state
    t = corr.times[:-1, None, None]
    evaluated = corr.x_hat + t * (corr.z_hat - corr.x_hat)
    assert not torch.allclose(evaluated[2], corr.states[2])  # the state was corrected after


def test_the_noise_form_keeps_its_first_predicted_state_and_corrects_the_next():
    """The noise form's first corrected step (a trapezoid from s = alpha / gamma near 1000) is
    skipped: x~_1 is the Euler step's; x~_2 on is corrected."""
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    plain = sample(net, noise, "linear", steps=5, multistep="noise")
    corr = sample(net, noise, "linear", steps=5, multistep="noise", corrector=True)
    assert torch.equal(plain.states[:2], corr.states[:2])
    assert torch.equal(plain.x_hat[:3], corr.x_hat[:3])  # the evaluation at x~_2 is shared too
    assert not torch.allclose(plain.states[2], corr.states[2])


@pytest.mark.parametrize("transport", ["linear", "trigflow"])
def test_the_noise_corrector_beats_adams_bashforth_at_few_steps(transport):
    """Exact Gaussian model, the default grid (t_0 = 0.999), 4 / 8 / 16 steps: with the noise
    form's first correction (a trapezoid over s from about 1000 to a few units) the corrected
    sample was 90x, 10x, 3x further from the exact PF-ODE endpoint than Adams-Bashforth's on
    Linear; without it, it is closer at every step count (measured: 0.82x, 0.52x, 0.30x on
    Linear; 0.43x, 0.28x, 0.21x on TrigFlow)."""
    tr = get_transport(transport)
    noise = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sched = KumaraswamySchedule()
    ab2, _ = _errors(tr, "noise", False, (4, 8, 16), noise, sched)
    pec, _ = _errors(tr, "noise", True, (4, 8, 16), noise, sched)
    assert pec[0] < 0.95 * ab2[0], (ab2, pec)
    assert pec[1] < ab2[1] / 1.5 and pec[2] < ab2[2] / 2, (ab2, pec)


@pytest.mark.parametrize("multistep", [None, "velocity", "noise"])
def test_corrector_false_is_bit_identical_to_the_default(multistep):
    net = Net().double()
    noise = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a = sample(net, noise, "linear", steps=6, multistep=multistep)
    b = sample(net, noise, "linear", steps=6, multistep=multistep, corrector=False)
    for field in ("sample", "x_hat", "z_hat", "states", "times"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.nfe == b.nfe == 6


def test_bad_corrector_combinations_are_refused_in_one_line():
    net = Net().double()
    noise = torch.randn(4, 2, dtype=torch.float64)
    cases = [
        ({"corrector": True}, ValueError, "use it with multistep='velocity', 'noise' or 'data'"),
        (
            {"corrector": True, "multistep": "velocity", "rho": 0.5},
            ValueError,
            r"rho=0 \(got rho=0.5\)",
        ),
        ({"corrector": True, "multistep": "noise", "rho": "auto"}, ValueError, "got rho=auto"),
        ({"corrector": "yes", "multistep": "noise"}, TypeError, "True or False"),
        ({"corrector": True, "order": 2}, ValueError, "multistep"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match) as info:
            sample(net, noise, "linear", steps=4, **kwargs)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"multistep": "velocity", "corrector": True},
        {"multistep": "noise"},
        {"kappa": 0.4},
    ],
)
def test_lower_order_final_returns_the_last_evaluations_own_data_estimate(kwargs):
    """lower_order_final=True: every step as before except the last, which does not
    extrapolate: the sample is x^_{N-1}, the decomposition of the last network output at the
    state it was evaluated at (on Linear x~ - t F)."""
    net = Net().double()
    noise = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    points = [0.999, 0.7, 0.4, 0.2]
    plain = sample(net, noise, "linear", time_points=points, **kwargs)
    final = sample(net, noise, "linear", time_points=points, lower_order_final=True, **kwargs)
    assert final.nfe == plain.nfe == len(points)
    assert torch.equal(final.states[:-1], plain.states[:-1])
    assert torch.equal(final.sample, final.x_hat[-1])
    assert not torch.allclose(plain.sample, final.sample)
    # the data estimate of the last evaluation, by hand: the state the network saw at t = 0.2
    seen = final.x_hat[-1] + 0.2 * (final.z_hat[-1] - final.x_hat[-1])
    F = net(seen, torch.full((8,), 0.2, dtype=torch.float64))
    torch.testing.assert_close(final.sample, seen - 0.2 * F, rtol=1e-12, atol=1e-12)


def test_lower_order_final_needs_an_extrapolation():
    net = Net().double()
    noise = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="use it with multistep='velocity'.*or kappa > 0"):
        sample(net, noise, "linear", steps=4, lower_order_final=True)
    with pytest.raises(TypeError, match="lower_order_final must be True or False"):
        sample(net, noise, "linear", steps=4, multistep="velocity", lower_order_final=1)
