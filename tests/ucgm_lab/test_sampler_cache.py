"""`sample`'s per-grid tables (ucgm_lab/sampler_tables.py) and the velocity form's kept v.

The tables are made once per grid and kept for the built-in transports. These tests pin down
that a cached table gives bit for bit the result of a fresh one on every path, that nothing a
call hands out (or hands to the model) is shared with the cache, that a user's transport is
never served stale coefficients, and how many tensor operations a call costs besides its steps.
"""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D
from ucgm_lab.sampler import transport_rates
from ucgm_lab.sampler_corrector import corrected_state
from ucgm_lab.sampler_steps import multistep_estimates
from ucgm_lab.sampler_tables import CACHE_SIZE, MAX_CACHED_POINTS, _cached_tables
from ucgm_lab.schedules import explicit_time_points
from ucgm_lab.transports import Decomposition, Transport, get_transport

POINTS = [0.999, 0.8, 0.55, 0.3, 0.12, 0.04]

PATHS = {
    "plain": {},
    "kappa-rho": {"kappa": 0.5, "rho": 0.5},
    "rho-auto": {"kappa": 0.3, "rho": "auto"},
    "velocity": {"multistep": "velocity"},
    "velocity-corrector": {"multistep": "velocity", "corrector": True},
    "noise-corrector": {"multistep": "noise", "corrector": True},
    "data-corrector-final": {"multistep": "data", "corrector": True, "lower_order_final": True},
    "order2-data": {"order": 2, "correction": "data"},
    "order2-noise": {"order": 2},
    "guidance": {"guidance_scale": 2.0, "guidance_interval": (0.2, 0.9)},
}


def _copy(tr: Transport) -> Transport:
    """The same coefficient functions in a user's Transport: never cached, tabulated afresh."""
    return Transport(
        alpha=tr.alpha,
        gamma=tr.gamma,
        alpha_hat=tr.alpha_hat,
        gamma_hat=tr.gamma_hat,
        name=tr.name,
        model_time=tr.model_time,
        allowed_deviations=tr.allowed_deviations,
    )


FIELDS = ("sample", "x_hat", "z_hat", "states", "times")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("transport", ["linear", "trigflow", "edm"])
@pytest.mark.parametrize("path", list(PATHS))
def test_cached_tables_give_the_result_of_fresh_tables_bit_for_bit(path, transport, dtype):
    kwargs = dict(PATHS[path])
    torch.manual_seed(0)
    guided = "guidance_scale" in kwargs
    model = MLP2D(hidden=16, depth=1, time_scale=30, num_classes=3 if guided else None)
    model = model.to(dtype).eval().requires_grad_(False)
    noise = torch.randn(16, 2, dtype=dtype)
    if guided:
        kwargs.update(y=torch.randint(0, 3, (16,)), null_class=3)
    tr = get_transport(transport)
    _cached_tables.cache_clear()

    def run(t):
        return sample(model, noise, t, 7, generator=torch.Generator().manual_seed(4), **kwargs)

    first, second, fresh = run(tr), run(tr), run(_copy(tr))
    assert _cached_tables.cache_info().hits >= 1  # the second call used the cached tables
    for name in FIELDS:
        want = getattr(fresh, name)
        for got in (first, second):
            assert getattr(got, name).dtype == want.dtype, name
            assert torch.equal(getattr(got, name), want), name
    assert first.nfe == second.nfe == fresh.nfe


class _Scaled:
    """A coefficient function with a parameter a user may change between calls."""

    def __init__(self, power: float) -> None:
        self.power = power

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t**self.power


def test_a_user_transport_whose_parameter_changes_is_never_served_stale_tables():
    # Transport's hash and equality see the function object, not its parameter: a cache keyed
    # by them would give the old coefficients after the change
    alpha = _Scaled(1.0)
    tr = Transport(alpha=alpha, gamma=lambda t: 1 - t, alpha_hat=torch.ones_like,
                   gamma_hat=lambda t: -torch.ones_like(t), validate=False)  # fmt: skip
    torch.manual_seed(0)
    model = MLP2D(hidden=16, depth=1).eval().requires_grad_(False)
    noise = torch.randn(16, 2)
    before = sample(model, noise, tr, 5)
    alpha.power = 0.5
    after = sample(model, noise, tr, 5)
    rebuilt = Transport(alpha=_Scaled(0.5), gamma=tr.gamma, alpha_hat=tr.alpha_hat,
                        gamma_hat=tr.gamma_hat, validate=False)  # fmt: skip
    want = sample(model, noise, rebuilt, 5)
    assert not torch.equal(before.sample, want.sample)  # the change matters
    for name in FIELDS:
        assert torch.equal(getattr(after, name), getattr(want, name)), name


class _MutatesItsInputs(nn.Module):
    """A network that writes into its time input (allowed: the tensor is its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MLP2D(hidden=16, depth=1)

    def forward(self, x, t):
        out = self.net(x, t)
        t.mul_(0.0)
        return out


def test_nothing_a_call_hands_out_is_shared_with_the_cache():
    torch.manual_seed(0)
    model = _MutatesItsInputs().eval().requires_grad_(False)
    noise = torch.randn(8, 2)
    first = sample(model, noise, "linear", 4)
    times = first.times.clone()
    first.times.add_(1.0)  # a user's edit of the returned grid
    second = sample(model, noise, "linear", 4)
    assert torch.equal(second.times, times)
    assert torch.equal(second.sample, first.sample)  # the time inputs were fresh both times


def test_the_cache_is_bounded_and_skips_long_grids():
    assert _cached_tables.cache_info().maxsize == CACHE_SIZE
    model = _Identity().eval().requires_grad_(False)
    _cached_tables.cache_clear()
    sample(model, torch.randn(2, 2), "linear", MAX_CACHED_POINTS + 1)
    assert _cached_tables.cache_info().currsize == 0
    sample(model, torch.randn(2, 2), "linear", MAX_CACHED_POINTS)
    assert _cached_tables.cache_info().currsize == 1


class _Identity(nn.Module):
    """A network with no work of its own (F = x_t): what remains is the sampler's."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x, t, y=None):
        return x


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _ops(fn) -> list[str]:
    with torch.no_grad(), _Count() as count:
        fn()
    return count.ops


@pytest.mark.parametrize("transport,most", [("linear", 26), ("trigflow", 34), ("edm", 34)])
def test_a_repeated_call_makes_few_operations_besides_its_steps(transport, most):
    # per call, besides the steps: the buffers, the time inputs, the decomposition after the
    # loop (more on transports whose alpha_hat, gamma_hat, D vary), the finite check and the
    # casts of the outputs. Before the tables were kept, a call also evaluated the transport,
    # stacked its coefficients and tabulated the decomposition's columns: 38 operations on
    # Linear, 44 on TrigFlow, 78 on EDM (torch 2.13); now 24, 32 and 32
    model = _Identity().eval().requires_grad_(False)
    noise = torch.randn(64, 2)

    def run(steps):
        return lambda: sample(model, noise, transport, steps)

    run(8)(), run(16)()  # the tables are made by the first calls
    short, long = _ops(run(8)), _ops(run(16))
    per_step = (len(long) - len(short)) / 8
    fixed = len(short) - 8 * per_step
    assert fixed <= most, (fixed, short)
    # the coefficient functions are not evaluated again (TrigFlow's sin and cos, EDM's exp)
    assert not {"aten.sin.default", "aten.cos.default", "aten.exp.default"} & set(short)


def test_the_velocity_corrector_computes_each_velocity_once():
    # v = alpha' z^ + gamma' x^ (3 operations) of an evaluation was recomputed at each of its
    # five uses (the Adams-Bashforth step at t_i and t_{i+1}, the corrector at t_i, t_{i+1}
    # and t_{i+2}); kept, the corrector adds only its own combination per step,
    # w_{i-1} e_{i-1} + w_i e_i + w_{i+1} e_{i+1} and y_i + h increment (7 operations; 16 before)
    model = _Identity().eval().requires_grad_(False)
    noise = torch.randn(64, 2)

    def per_step(**kwargs):
        def run(steps):
            return lambda: sample(model, noise, "trigflow", steps, multistep="velocity", **kwargs)

        run(8)(), run(16)()
        return (len(_ops(run(16))) - len(_ops(run(8)))) / 8

    assert per_step(corrector=True) - per_step() <= 8


def _trio(table, first, i):
    """The entries at t_{i-2} (None without e_{i-2}), t_{i-1} and t_i."""
    return (None if first is None else table[first], table[i - 1], table[i])


def multistep_reference(model, noise, transport, form, corrector):
    """The multistep loop from the public pieces, without kept velocities (each use recomputes v).

    The coefficients are tabulated as the sampler tabulates them (one vectorised evaluation in
    float64, read out as numbers), the state is float64 and the network runs in float32.
    """
    tr = get_transport(transport)
    times = explicit_time_points(POINTS).to(torch.float64)
    c = tr.coefficients(times)
    rows = torch.stack(
        torch.broadcast_tensors(
            *(torch.as_tensor(v, dtype=torch.float64)
              for v in (c.alpha, c.gamma, c.alpha_hat, c.gamma_hat, c.D)),
            times,
        )[:5],
        dim=1,
    ).tolist()  # fmt: skip
    ts = times.tolist()
    rates = transport_rates(tr, times) if form == "velocity" else None
    t_net = tr.model_time(times).float()
    state, previous, before, state_before = noise.double(), None, None, None
    for i in range(len(POINTS)):
        F = model(state.float(), t_net[i].expand(noise.shape[0])).double()
        r = rows[i]
        raw = Decomposition((r[0] * F - r[2] * state) / r[4], (r[3] * state - r[1] * F) / r[4])
        if corrector and previous is not None:
            first = None if before is None else i - 2  # None: the trapezoid
            fixed = corrected_state(form, state_before, (before, previous, raw),
                                    _trio(rows, first, i), _trio(ts, first, i),
                                    None if rates is None else _trio(rates, first, i))  # fmt: skip
            state = state if fixed is None else fixed
        est = raw
        if previous is not None:
            est = multistep_estimates(form, state, raw, previous, (rows[i - 1], rows[i], rows[i + 1]),
                                      (ts[i - 1], ts[i], ts[i + 1]),
                                      None if rates is None else (rates[i - 1], rates[i]))  # fmt: skip
        before, previous, state_before = previous, raw, state
        if i == len(POINTS) - 1:
            return est.x_hat
        state = rows[i + 1][0] * est.z_hat + rows[i + 1][1] * est.x_hat


@pytest.mark.parametrize("transport", ["linear", "trigflow", "edm"])
@pytest.mark.parametrize("form", ["velocity", "noise", "data"])
@pytest.mark.parametrize("corrector", [False, True])
def test_multistep_paths_equal_the_loop_of_public_pieces_bit_for_bit(transport, form, corrector):
    torch.manual_seed(2)
    model = MLP2D(hidden=16, depth=1, time_scale=30).eval().requires_grad_(False)
    noise = torch.randn(16, 2)
    got = sample(model, noise, transport, time_points=POINTS, multistep=form, corrector=corrector)
    with torch.no_grad():
        want = multistep_reference(model, noise, transport, form, corrector)
    assert torch.equal(got.sample, want.float())


@pytest.mark.parametrize("path", ["plain", "velocity-corrector", "order2-data", "rho-auto"])
def test_tables_made_in_inference_mode_serve_calls_outside_it_and_back(path):
    # tensors made under torch.inference_mode() are inference tensors; the cached tables must
    # serve both modes (and the velocity form's rates, taken by autograd, used to fail there)
    kwargs = PATHS[path]
    torch.manual_seed(0)
    model = MLP2D(hidden=16, depth=1).eval()
    noise = torch.randn(8, 2)

    def run():
        return sample(model, noise, "trigflow", 6, generator=torch.Generator().manual_seed(1),
                      **kwargs)  # fmt: skip

    _cached_tables.cache_clear()
    with torch.inference_mode():
        inside = run()
    outside = run()
    _cached_tables.cache_clear()
    fresh = run()
    with torch.inference_mode():
        inside_again = run()
    for got in (inside, outside, inside_again):
        assert torch.equal(got.sample, fresh.sample)
