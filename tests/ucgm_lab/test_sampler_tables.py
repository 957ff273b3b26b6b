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


def per_step_histories(model, noise, transport):
    """Alg. 2 (order 1, kappa = rho = 0) in the noise dtype with every estimate kept."""
    tr = get_transport(transport)
    times = explicit_time_points(POINTS).to(noise.dtype)
    state, states, x_hats, z_hats = noise, [noise], [], []
    ones = torch.ones(noise.shape[0], dtype=noise.dtype)
    for i in range(len(POINTS)):
        F = model(state, tr.model_time(times[i]) * ones)
        raw = tr.decompose(F, state, times[i])
        x_hats.append(raw.x_hat)
        z_hats.append(raw.z_hat)
        if i == len(POINTS) - 1:
            states.append(raw.x_hat)
            break
        state = reconstruct(tr, raw, times[i + 1], 0.0, None)
        states.append(state)
    return torch.stack(states), torch.stack(x_hats), torch.stack(z_hats)


@pytest.mark.parametrize("transport", ["linear", "relinear", "trigflow", "edm", "triglinear"])
def test_plain_loop_histories_equal_per_step_estimates_float64(transport):
    # kappa = rho = 0 at order 1 updates the state as c_x x + c_F F and computes every x^, z^
    # after the loop: states, estimates and sample must equal the per-step Alg. 2 in float64
    torch.manual_seed(1)
    model = MLP2D(hidden=16, depth=1, time_scale=30).double().eval().requires_grad_(False)
    noise = torch.randn(32, 2, dtype=torch.float64)
    got = sample(model, noise, transport, time_points=POINTS)
    with torch.no_grad():
        states, x_hats, z_hats = per_step_histories(model, noise, transport)
    scale = states.abs().max().item()
    for name, have, want in (
        ("states", got.states, states),
        ("x_hat", got.x_hat, x_hats),
        ("z_hat", got.z_hat, z_hats),
        ("sample", got.sample, x_hats[-1]),
    ):
        assert have.dtype == torch.float64, name
        err = (have - want).abs().max().item()
        assert err <= 1e-13 * max(scale, 1.0), (name, err)


def test_combine_folds_signs_exactly():
    # the decomposition skips multiplications and divisions by +-1: bit-identical to the
    # full expression (c1 f - c2 s) / d for every combination of special and generic values
    from ucgm_lab.sampler import _combine

    gen = torch.Generator().manual_seed(0)
    f = torch.randn(4096, dtype=torch.float64, generator=gen) * 10 ** torch.randint(
        -8, 8, (4096,), generator=gen
    )
    s = torch.randn(4096, dtype=torch.float64, generator=gen)
    values = (1.0, -1.0, 0.3, -0.7, 2.0)
    for c1 in values:
        for c2 in values:
            for d in (1.0, -1.0, 0.37, -2.5):
                want = (c1 * f - c2 * s) / d
                assert torch.equal(_combine(c1, f, c2, s, d), want), (c1, c2, d)
                # per-step columns (tensors) as the plain loop passes them: never folded
                cols = [torch.tensor(c, dtype=torch.float64) for c in (c1, c2, d)]
                got = _combine(cols[0], f, cols[1], s, cols[2])
                assert torch.equal(got, want), ("tensor", c1, c2, d)


class _Identity(torch.nn.Module):
    """A network with no work of its own (F = x_t): what remains is the sampler's."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, t, y=None):
        return x


def _aten_ops(fn):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def test_plain_step_costs_no_more_than_a_bare_euler_step():
    # per step, sample(kappa = rho = 0) on Linear makes at most the operations of a bare Euler
    # loop (select the time row, cast in, cast out, multiply, add): it casts in, writes F into
    # its buffer, multiplies and adds into the next state's row (4); the finite check runs
    # once after the loop. Before: the Euler loop's 5 and a per-step check (sum, read-out)
    from ucgm_lab.sampler import time_grid

    model = _Identity().eval().requires_grad_(False)
    noise = torch.randn(64, 2)

    def euler(steps):
        times = time_grid(steps, 1, "even", None)
        t_rows = times[:-1].float()[:, None].expand(steps, 64).contiguous()
        dts = (times[1:] - times[:-1]).tolist()

        def loop():
            x = noise.double()
            for i in range(steps):
                x = x + dts[i] * model(x.float(), t_rows[i]).double()

        return loop

    def per_step(make):
        long, short = make(16), make(8)
        long(), short()  # the grids are computed once, then cached
        return (_aten_ops(long) - _aten_ops(short)) / 8

    with torch.no_grad():
        bare = per_step(euler)
        ucgm = per_step(lambda n: lambda: sample(model, noise, "linear", n))
    assert ucgm <= bare, (ucgm, bare)
