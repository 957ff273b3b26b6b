"""The objective's per-call work: fewer operations, the same bits.

`UCGMObjective` computes D(t) and pi t / 2 once per call, reads the loss back once for its
finite check and draws the training times with one operation after the Beta draw. These
tests hold the loss and the gradients bit-identical to Alg. 1 written out step by step (as
the objective computed it before) and pin down the operation counts.
"""

import math

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ucgm_lab import UCGMObjective
from ucgm_lab.objective import target_from_difference
from ucgm_lab.schedules import BetaTimeDistribution
from ucgm_lab.transports import get_transport

HALF_PI = math.pi / 2


def _bits(x):
    return x.view({torch.float32: torch.int32, torch.float64: torch.int64}[x.dtype])


def _same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


class _Net(nn.Module):
    """A small network with a time input: tanh(x W1 + t w) W2 + x."""

    def __init__(self, dtype):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(2, 16, generator=gen, dtype=dtype))
        self.wt = nn.Parameter(torch.randn(16, generator=gen, dtype=dtype))
        self.w2 = nn.Parameter(torch.randn(16, 2, generator=gen, dtype=dtype) / 4)

    def forward(self, x, t):
        return torch.tanh(x @ self.w1 + t[:, None] * self.wt) @ self.w2 + x


def alg1_lambda0(model, x, z, t, transport):
    """Alg. 1 at lambda = 0, written out as the objective computed it (the reference)."""
    tr = get_transport(transport)
    t_b = t.view(-1, *([1] * (x.ndim - 1)))
    c = tr.coefficients(t_b)
    x_t = c.alpha * z + c.gamma * x
    F = model(x_t, tr.model_time(t))
    F_sg = F.detach()
    with torch.no_grad():
        delta_f = c.alpha * (F_sg - (c.alpha_hat * z + c.gamma_hat * x)) / (c.D * t_b)
        factor = 4 * c.alpha / (c.D * torch.sin(HALF_PI * t_b))
        target = F_sg - factor * delta_f
    dist = (F - target).pow(2).flatten(1).mean(1)
    return (torch.cos(HALF_PI * t) * dist).mean()


@pytest.mark.parametrize("transport", ["linear", "trigflow", "edm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [256, 37])
def test_lambda0_loss_and_gradients_are_bit_identical_to_alg1(transport, dtype, batch):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 2, generator=gen, dtype=dtype)
    z = torch.randn(batch, 2, generator=gen, dtype=dtype)
    t = torch.rand(batch, generator=gen, dtype=dtype).clamp(1e-4, 1.0)
    model = _Net(dtype)
    objective = UCGMObjective(transport, 0.0, check_time_sensitivity=False)
    loss = objective(model, x, t=t, noise=z).loss
    grads = torch.autograd.grad(loss, list(model.parameters()))
    want = alg1_lambda0(model, x, z, t, transport)
    want_grads = torch.autograd.grad(want, list(model.parameters()))
    assert _same_bits(loss.detach(), want.detach()), (loss.item(), want.item())
    for g, w in zip(grads, want_grads, strict=True):
        assert _same_bits(g, w)


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_the_loss_is_assembled_from_the_target_as_written(lam):
    # lambda > 0 shares the target and the weight: loss = mean(cos(pi t / 2) mean((F - T)^2))
    gen = torch.Generator().manual_seed(2)
    x, z = torch.randn(64, 2, generator=gen), torch.randn(64, 2, generator=gen)
    t = torch.rand(64, generator=gen) * 0.9 + 0.05
    model, tr = _Net(torch.float32), get_transport("trigflow")
    out = UCGMObjective(tr, lam, check_time_sensitivity=False)(model, x, t=t, noise=z)
    F = model(tr.coefficients(t, like=x).alpha * z + tr.coefficients(t, like=x).gamma * x, t)
    want = (torch.cos(HALF_PI * t) * (F - out.target).pow(2).flatten(1).mean(1)).mean()
    assert _same_bits(out.loss.detach(), want.detach())
    # and the public target function gives the objective's target at lambda = 0
    out0 = UCGMObjective(tr, 0.0, check_time_sensitivity=False)(model, x, t=t, noise=z)
    c, t_b = tr.coefficients(t, like=x), t[:, None]
    F_sg = model(c.alpha * z + c.gamma * x, t).detach()
    delta_f = c.alpha * (F_sg - (c.alpha_hat * z + c.gamma_hat * x)) / (c.D * t_b)
    assert _same_bits(out0.target, target_from_difference(F_sg, delta_f, c, t_b))


@pytest.mark.parametrize(
    "dist",
    [
        BetaTimeDistribution(),
        BetaTimeDistribution(0.3, 0.3, t_min=0.05, t_max=0.7),  # many draws clamped at both ends
        BetaTimeDistribution(0.2, 1.0, t_min=1 / 3),
        BetaTimeDistribution(2.0, 0.2, t_min=0.0, t_max=0.1 + 0.2),
        BetaTimeDistribution(1.0, 1.0, scale=0.7),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_time_draws_equal_the_float64_clamp_of_the_beta_draw(dist, dtype):
    # the draw clamped in its own dtype equals the old formula: clamp in float64, then round
    for seed in range(3):
        torch.manual_seed(seed)
        got = dist.sample(4096, dtype=dtype)
        torch.manual_seed(seed)
        draw = torch.distributions.Beta(torch.tensor(dist.theta1), torch.tensor(dist.theta2))
        want = (draw.sample((4096,)).double() * dist.scale).clamp(dist.t_min, dist.t_max)
        assert _same_bits(got, want.to(dtype))


def test_clamping_float32_at_rounded_bounds_equals_clamping_in_float64():
    # the argument behind the one-operation draw, on every float32 within 64 ulps of the bounds
    gen = torch.Generator().manual_seed(0)
    bounds = [1e-4, 1 / 3, 0.1 + 0.2, 0.7, 1.0] + torch.rand(20, generator=gen).tolist()
    for lo in bounds:
        for hi in (1.0, min(1.0, lo + 0.25)):
            centres = torch.tensor([lo, hi], dtype=torch.float32)
            ulps = torch.arange(-64, 65, dtype=torch.int32)
            near = (centres.view(torch.int32)[:, None] + ulps).view(torch.float32).flatten()
            want = near.double().clamp(lo, hi).float()
            assert _same_bits(near.clamp(lo, hi), want), (lo, hi)


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def test_a_float32_time_draw_is_the_beta_draw_and_one_clamp():
    dist = BetaTimeDistribution()
    dist.sample(8)
    with _CountOps() as count:
        dist.sample(256)
    # expand, the Dirichlet draw, select its first column; clamp (before: float64, scale,
    # clamp, back to float32)
    assert count.n == 4, count.n


def test_a_lambda0_call_makes_fewer_tensor_operations():
    # besides the network's: 52 before (D(t) twice, pi t / 2 twice, the loss twice, an
    # elementwise finite check of it, four operations after the Beta draw)
    class Identity(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, x, t):
            return x * self.w

    objective = UCGMObjective("linear", 0.0, check_time_sensitivity=False)
    model, x = Identity(), torch.randn(64, 2)
    objective(model, x)
    with _CountOps() as count:
        objective(model, x)
    assert count.n <= 42, count.n
