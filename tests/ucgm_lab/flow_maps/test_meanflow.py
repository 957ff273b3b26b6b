"""MeanFlow objective and flow-map sampler: against independent computations in float64."""

import pytest
import torch

from ucgm_lab.flow_maps import (
    FlowMapTimeDistribution,
    MeanFlowObjective,
    flow_map_sample,
    flow_map_times,
)
from ucgm_lab.networks import MLP2D, TimeScaled


def _net(seed=0, dim=3, num_classes=None):
    torch.manual_seed(seed)
    model = MLP2D(
        dim=dim,
        hidden=32,
        depth=2,
        time_embed_dim=8,
        time_scale=3.0,
        num_classes=num_classes,
        flow_map=True,
    ).double()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def _batch(batch=7, dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    e = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    t = 0.1 + 0.8 * torch.rand(batch, generator=gen, dtype=torch.float64)
    r = t * torch.rand(batch, generator=gen, dtype=torch.float64)
    r[0] = t[0]  # one pair with r = t
    r[1] = 0.0  # one pair at the consistency end
    return x, e, r, t


def _reference(model, x, e, r, t, p, c, h=1e-5):
    """Independent: linear path by hand, d/dt u by a central difference along the flow."""
    z = (1 - t)[:, None] * x + t[:, None] * e  # MeanFlow's z_t = (1 - t) x + t e
    v = e - x
    with torch.no_grad():
        up = model(z + h * v, t + h, r=r)
        um = model(z - h * v, t - h, r=r)
    du_dt = (up - um) / (2 * h)
    target = v - (t - r)[:, None] * du_dt
    u = model(z, t, r=r)
    err = ((u - target) ** 2).sum(1)
    w = 1 / (err.detach() + c) ** p
    return (w * err).mean(), target, u, w


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_loss_target_and_gradient_match_central_differences(p):
    model = _net()
    x, e, r, t = _batch()
    objective = MeanFlowObjective(adaptive_p=p, adaptive_c=1e-2)
    out = objective(model, x, r=r, t=t, noise=e)
    ref_loss, ref_target, ref_u, ref_w = _reference(model, x, e, r, t, p, 1e-2)
    torch.testing.assert_close(out.target, ref_target, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(out.u, ref_u.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.weight, ref_w, rtol=1e-6, atol=0)
    torch.testing.assert_close(out.loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(out.velocity, e - x)
    # The gradient flows through u only (stop-gradient target and weight).
    grads = torch.autograd.grad(out.loss, list(model.parameters()))
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    for g, g_ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-8)


def test_r_equal_t_gives_the_flow_matching_target():
    model = _net(seed=4)
    x, e, _, t = _batch(seed=4)
    out = MeanFlowObjective(adaptive_p=0.0)(model, x, r=t.clone(), t=t, noise=e)
    torch.testing.assert_close(out.target, e - x, rtol=0, atol=0)
    z = (1 - t)[:, None] * x + t[:, None] * e
    expected = ((model(z, t) - (e - x)) ** 2).sum(1).mean()  # plain flow matching, r = None
    torch.testing.assert_close(out.loss, expected, rtol=1e-12, atol=1e-12)


def test_target_is_a_fixed_point_for_an_exact_flow_map():
    """For data at one point x0 the exact average velocity is (z - x0) / t for every r.

    Any u(z, r, t) = (z - x0) / t satisfies the MeanFlow identity, so the target equals u.
    """
    x0 = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)

    class Exact(torch.nn.Module):
        flow_map = True

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, z, t, y=None, r=None):
            return (z - x0) / t[:, None] + 0 * self.dummy

    _, e, r, t = _batch(seed=2)
    out = MeanFlowObjective()(Exact(), x0.expand(7, 3), r=r, t=t, noise=e)
    torch.testing.assert_close(out.target, out.u, rtol=1e-12, atol=1e-12)
    assert float(out.squared_error.max()) < 1e-20


def test_conditional_and_time_scaled_networks():
    model = _net(seed=1, num_classes=2)
    x, e, r, t = _batch(seed=1)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    out = MeanFlowObjective()(model, x, y, r=r, t=t, noise=e)
    z = (1 - t)[:, None] * x + t[:, None] * e
    torch.testing.assert_close(out.u, model(z, t, y, r=r).detach())
    wrapped = TimeScaled(model, time_scale=0.5)
    out_w = MeanFlowObjective()(wrapped, x, y, r=r, t=t, noise=e)
    torch.testing.assert_close(out_w.u, model(z, 0.5 * t, y, r=0.5 * r).detach())


def test_time_distribution_draws():
    dist = FlowMapTimeDistribution(equal_fraction=0.75)
    r, t = dist.sample(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert r.shape == t.shape == (4000,)
    assert bool((r <= t).all()) and bool((r > 0).all()) and bool((t < 1).all())
    equal = (r == t).double().mean()
    assert abs(float(equal) - 0.75) < 0.03  # binomial sd 0.007
    logit = torch.logit(t[r == t])  # the max of two N(-0.4, 1) draws has mean -0.4 + 1/sqrt(pi)
    assert abs(float(logit.mean()) - (-0.4 + 1 / torch.pi**0.5)) < 0.06
    r2, t2 = dist.sample(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(r, r2) and torch.equal(t, t2)
    r0, t0 = FlowMapTimeDistribution(equal_fraction=0.0).sample(50)
    assert bool((r0 < t0).all())


def test_one_step_is_noise_minus_u_and_two_steps_compose():
    model = _net(seed=3)
    e = torch.randn(5, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ones, zeros = torch.ones(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    with torch.no_grad():
        one = e - model(e, ones, r=zeros)
        half = torch.full((5,), 0.5, dtype=torch.float64)
        mid = e - 0.5 * model(e, ones, r=half)
        two = mid - 0.5 * model(mid, half, r=zeros)
    torch.testing.assert_close(flow_map_sample(model, e, steps=1), one, rtol=0, atol=0)
    torch.testing.assert_close(flow_map_sample(model, e, steps=2), two, rtol=0, atol=0)
    torch.testing.assert_close(flow_map_sample(model, e, times=[1.0, 0.5, 0.0]), two)
    assert flow_map_times(4) == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_bad_inputs_give_clear_errors():
    model = _net()
    x, e, r, t = _batch()
    obj = MeanFlowObjective()
    with pytest.raises(ValueError, match="flow_map=True"):
        obj(MLP2D(dim=3, hidden=8, depth=1).double(), x)
    with pytest.raises(ValueError, match="r <= t"):
        obj(model, x, r=t + 0.05, t=t)
    with pytest.raises(ValueError, match="both r and t"):
        obj(model, x, t=t)
    with pytest.raises(ValueError, match="shape"):
        obj(model, x, r=r[:3], t=t[:3])
    with pytest.raises(ValueError, match="noise must have the shape"):
        obj(model, x, noise=e[:2])
    with pytest.raises(ValueError, match="velocity"):
        MeanFlowObjective("trigflow")
    with pytest.raises(ValueError, match="network time"):
        MeanFlowObjective("relinear")
    with pytest.raises(ValueError, match="adaptive_p must be >= 0"):
        MeanFlowObjective(adaptive_p=-1)
    with pytest.raises(ValueError, match="adaptive_c must be > 0"):
        MeanFlowObjective(adaptive_c=0)
    with pytest.raises(ValueError, match="equal_fraction"):
        FlowMapTimeDistribution(equal_fraction=1.5)
    with pytest.raises(ValueError, match="std must be > 0"):
        FlowMapTimeDistribution(std=0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        flow_map_sample(model, e, steps=0)
    with pytest.raises(ValueError, match="decrease strictly from 1 to 0"):
        flow_map_sample(model, e, times=[1.0, 0.6, 0.7, 0.0])


def test_image_networks_train_as_flow_maps():
    """The JVP runs through SmallUNet and TiT (attention on the math kernel) and backpropagates."""
    from ucgm_lab.networks import SmallUNet
    from ucgm_lab.networks.tit import TiT

    torch.manual_seed(0)
    nets = [
        (SmallUNet(1, 8, base_channels=8, time_embed_dim=16, flow_map=True), (4, 1, 8, 8)),
        (
            TiT(
                input_size=4,
                in_channels=1,
                patch_size=2,
                hidden_size=16,
                depth=1,
                num_heads=2,
                num_classes=None,
                flow_map=True,
            ),
            (4, 1, 4, 4),
        ),
    ]
    for net, shape in nets:
        out = MeanFlowObjective()(net, torch.randn(shape))
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
