"""The plain path of `sample` (order 1, kappa = rho = 0): buffers, rounding and the deferred check.

The loop writes every state and output into buffers allocated once and checks finiteness once
after the loop (ucgm_lab/sampler.py, ``_plain_loop``). These tests pin down that this changes
neither a bit of the result nor the error a non-finite state raises.
"""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ucgm_lab import sample
from ucgm_lab.sampler import NonFiniteSampleError, time_grid
from ucgm_lab.transports import get_transport

STEPS = 6


def list_loop_reference(model, noise, transport, steps, state_dtype):
    """The plain loop as it was written before the buffers: per-step tensors kept in lists.

    x' = (x~ or c_x x~) + c_F F with the Python-number coefficients of the tabulated grid,
    then x^ = (alpha F - alpha_hat x~) / D and z^ = (gamma_hat x~ - gamma F) / D per step.
    """
    tr = get_transport(transport)
    net_dtype = next(model.parameters()).dtype
    times = time_grid(steps, 1, "even", None).to(state_dtype)
    c = tr.coefficients(times)
    rows = torch.stack(
        torch.broadcast_tensors(
            *(
                torch.as_tensor(v, dtype=state_dtype)
                for v in (c.alpha, c.gamma, c.alpha_hat, c.gamma_hat, c.D)
            ),
            times,
        )[:5],
        dim=1,
    ).tolist()
    t_net = tr.model_time(times).to(net_dtype)
    state = noise.to(state_dtype)
    states, outputs = [state], []
    for i in range(steps):
        F = model(state.to(net_dtype), t_net[i].expand(noise.shape[0])).to(state_dtype)
        outputs.append(F)
        if i == steps - 1:
            break
        a, g, _, _, d = rows[i]
        a_next, g_next = rows[i + 1][:2]
        c_x = (a_next * rows[i][3] - g_next * rows[i][2]) / d
        c_F = (g_next * a - a_next * g) / d
        state = (state if c_x == 1.0 else c_x * state) + c_F * F
        states.append(state)
    x_hats = [(r[0] * f - r[2] * s) / r[4] for r, f, s in zip(rows, outputs, states, strict=False)]
    z_hats = [(r[3] * s - r[1] * f) / r[4] for r, f, s in zip(rows, outputs, states, strict=False)]
    states.append(x_hats[-1])
    return torch.stack(states), torch.stack(x_hats), torch.stack(z_hats)


def _bits(x):
    return x.view({torch.float32: torch.int32, torch.float64: torch.int64}[x.dtype])


class _Net(nn.Module):
    """A small smooth network: x * (1 + 0.3 sin(3 t)) + 0.2 tanh(x W)."""

    def __init__(self, dtype):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.7, -0.4], [0.2, 0.9]], dtype=dtype))

    def forward(self, x, t):
        return x * (1 + 0.3 * torch.sin(3 * t))[:, None] + 0.2 * torch.tanh(x @ self.w)


@pytest.mark.parametrize("transport", ["linear", "trigflow", "edm"])
@pytest.mark.parametrize(
    "noise_dtype,accumulate_float64",
    [(torch.float32, True), (torch.float64, True), (torch.float32, False)],
)
def test_plain_path_is_bit_identical_to_the_list_loop(transport, noise_dtype, accumulate_float64):
    # the out= operations round as the expressions they replace: every state, estimate and
    # the sample equal, bit for bit, the loop that kept per-step tensors in lists
    torch.manual_seed(0)
    model = _Net(noise_dtype).requires_grad_(False)
    noise = torch.randn(64, 2, dtype=noise_dtype) * 3
    got = sample(model, noise, transport, STEPS, accumulate_float64=accumulate_float64)
    state_dtype = torch.float64 if accumulate_float64 else noise_dtype
    with torch.no_grad():
        states, x_hats, z_hats = list_loop_reference(model, noise, transport, STEPS, state_dtype)
    for name, have, want in (
        ("states", got.states, states),
        ("x_hat", got.x_hat, x_hats),
        ("z_hat", got.z_hat, z_hats),
        ("sample", got.sample, x_hats[-1]),
    ):
        want = want.to(noise_dtype)
        assert have.dtype == noise_dtype, name
        assert torch.equal(_bits(have), _bits(want)), (name, (have - want).abs().max().item())


class _Identity(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x, t, y=None):
        return x


class _Count(TorchDispatchMode):
    """Counts operations that make new tensors (not views, not in place, not out=) and syncs."""

    def __init__(self):
        super().__init__()
        self.allocating = self.host_syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        schema = func._schema
        if func is torch.ops.aten._local_scalar_dense.default:
            self.host_syncs += 1
        elif (
            isinstance(out, torch.Tensor)
            and not schema.is_mutable
            and all(r.alias_info is None for r in schema.returns)
        ):
            self.allocating += 1
        return out


def test_a_plain_step_allocates_only_the_network_input_and_never_syncs():
    # per step: the state cast to the network's dtype is the one new tensor (F and the next
    # state are written into the buffers), and no value is read back to the host (the
    # finiteness check runs once, after the loop). Before: 5 new tensors and 1 sync a step.
    model = _Identity().eval().requires_grad_(False)
    noise = torch.randn(64, 2)

    def counts(steps):
        sample(model, noise, "linear", steps)  # the grid is cached after the first call
        with _Count() as c:
            sample(model, noise, "linear", steps)
        return c.allocating, c.host_syncs

    (alloc_8, sync_8), (alloc_16, sync_16) = counts(8), counts(16)
    assert (alloc_16 - alloc_8) / 8 == 1, (alloc_8, alloc_16)
    assert sync_16 == sync_8 == 1, (sync_8, sync_16)


class _OneBadCall(nn.Module):
    """F = nan_to_num(x) / 2 (finite even on a NaN input), but ``value`` at call ``bad_call``.

    num_classes and null_class make it usable with guidance (which it ignores), so that the
    same run can be checked after every step instead of once after the loop.
    """

    num_classes, null_class = 2, 2

    def __init__(self, bad_call, value, dtype=torch.float32):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5, dtype=dtype))
        self.calls, self.bad_call, self.value = 0, bad_call, value

    def forward(self, x, t, y=None):
        self.calls += 1
        out = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0) * self.w
        if self.calls == self.bad_call:
            out = out + self.value
        return out


POINTS = [0.999, 0.75, 0.5, 0.25]


def _error(model, transport, **kwargs):
    with pytest.raises(NonFiniteSampleError) as info:
        sample(model, torch.randn(6, 2), transport, time_points=POINTS, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("transport", ["linear", "trigflow", "edm"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("bad_call", [2, 3, 4])
def test_a_non_finite_output_at_one_step_is_named_after_the_loop(transport, value, bad_call):
    # the network goes non-finite at one call only and is finite again afterwards (on the
    # NaN state too): the check after the loop names that step, as a check after every step
    # does (guidance with an interval that holds no grid time: same F, checked every step)
    step = bad_call - 1
    deferred = _error(_OneBadCall(bad_call, value), transport)
    assert f"network output went NaN or inf at step {step} (t = {POINTS[step]:g}" in deferred
    y = torch.zeros(6, dtype=torch.long)
    per_step = _error(
        _OneBadCall(bad_call, value), transport, y=y, guidance_scale=2.0, guidance_interval=(0, 0)
    )
    assert deferred == per_step


@pytest.mark.parametrize("transport", ["linear", "trigflow"])  # EDM stays finite here
def test_an_overflowing_state_is_named_as_a_check_after_every_step_would(transport):
    # finite outputs F = -x whose updates grow a float64 state of 1e308 past the largest
    # float64: the deferred check names the step and the cause as the per-step check does
    class Negate(nn.Module):
        num_classes, null_class = 2, 2

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(-1.0, dtype=torch.float64))

        def forward(self, x, t, y=None):
            return torch.nan_to_num(x) * self.w

    noise = torch.full((6, 2), 1e308, dtype=torch.float64)
    y = torch.zeros(6, dtype=torch.long)
    with pytest.raises(NonFiniteSampleError) as deferred:
        sample(Negate(), noise, transport, time_points=POINTS)
    with pytest.raises(NonFiniteSampleError) as per_step:
        sample(
            Negate(), noise, transport, time_points=POINTS, y=y, guidance_scale=2.0,
            guidance_interval=(0, 0),
        )  # fmt: skip
    assert "although the network output is finite" in str(deferred.value)
    assert str(deferred.value) == str(per_step.value)


def test_a_narrowing_cast_is_still_told_apart_from_the_network_output():
    # a float64 network feeding a float32 state: 1e300 is finite in the network's dtype and
    # inf after the cast; the loop checks every step then, with the raw output, as before
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, x, t):
            return x * 0 + 1e300 * self.w

    with pytest.raises(NonFiniteSampleError, match=r"step 0 .*the cast to the state dtype"):
        sample(Wide(), torch.randn(4, 2), "linear", 4, accumulate_float64=False)
