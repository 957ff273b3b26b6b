"""AdaptedNetwork / AdaptedModel: calling conventions, labels, guidance, errors."""

from types import SimpleNamespace

import pytest
import torch

from ucgm_lab import sample
from ucgm_lab.adapters import AdaptedNetwork, adapt_flow_matching, adapt_vp_diffusion, call_source
from ucgm_lab.adapters.diffusion import DiscreteVPSchedule


def test_call_conventions_and_output_unwrapping():
    x = torch.randn(5, 2)
    t = torch.rand(5)
    expected = x * t[:, None]
    assert torch.equal(call_source(lambda x, t: x * t[:, None], x, t), expected)
    assert torch.equal(call_source(lambda t, x: x * t[:, None], x, t, inputs="t_x"), expected)
    assert torch.equal(
        call_source(lambda xt: xt[:, :2] * xt[:, 2:], x, t, inputs="concat"), expected
    )
    assert torch.equal(
        call_source(lambda x, t: SimpleNamespace(sample=x * t[:, None]), x, t), expected
    )
    assert torch.equal(call_source(lambda x, t: (x * t[:, None],), x, t), expected)
    with pytest.raises(ValueError, match="class labels"):
        call_source(lambda xt: xt, x, t, torch.zeros(5, dtype=torch.long), inputs="concat")
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        call_source(lambda xt: xt, torch.randn(5, 1, 2), t, inputs="concat")
    with pytest.raises(TypeError, match="expected a tensor"):
        call_source(lambda x, t: {"out": x}, x, t)


def test_adapted_network_registers_module_and_forwards_labels(smooth_net):
    net = smooth_net(num_classes=3)
    wrapper = AdaptedNetwork(net)
    assert wrapper.null_class == 3 and wrapper.num_classes == 3
    assert sum(p.numel() for p in wrapper.parameters()) == sum(p.numel() for p in net.parameters())
    x = torch.randn(4, 2, dtype=torch.float64)
    t = torch.rand(4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(wrapper(x, t, y), net(x, t, y))
    assert AdaptedNetwork(lambda x, t: x).null_class is None
    with pytest.raises(TypeError, match="callable"):
        AdaptedNetwork(3)


def test_guidance_through_an_adapter_uses_the_source_null_class(smooth_net):
    net = smooth_net(num_classes=3)
    adapted = adapt_flow_matching(net)
    noise = torch.randn(6, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = adapted.sample(noise, steps=4, y=y, guidance_scale=2.0)
    assert out.nfe == 8 and torch.isfinite(out.sample).all()


def test_adapted_model_sample_matches_core_sampler(smooth_net):
    net = smooth_net(time_scale=1000.0)
    adapted = adapt_vp_diffusion(net, DiscreteVPSchedule.linear(), "v_prediction")
    noise = torch.randn(8, 2, dtype=torch.float64)
    a = adapted.sample(noise, steps=6, kappa=0.3, order=2)
    b = sample(adapted.model, noise, adapted.transport, 6, kappa=0.3, order=2)
    torch.testing.assert_close(a.sample, b.sample)
    assert adapted.describe() in repr(adapted)
    assert "\n" not in adapted.describe()
    with pytest.raises(ValueError, match="native_grid=True needs steps"):
        adapted.sample(noise, native_grid=True)
    with pytest.raises(ValueError, match="not both"):
        adapted.sample(noise, steps=3, native_grid=True, time_points=[0.5])
    with pytest.raises(ValueError, match="positive integer"):
        adapted.time_points(0)


def test_order2_data_correction_through_an_adapter_starts_at_t1(smooth_net):
    """The native flow grid starts at t = 1, where gamma = 0: the paper's correction cannot
    start there, the core's correction='data' can."""
    adapted = adapt_flow_matching(smooth_net())
    noise = torch.randn(8, 2, dtype=torch.float64)
    out = adapted.sample(noise, steps=5, native_grid=True, order=2, correction="data")
    assert out.nfe == 9 and torch.isfinite(out.sample).all()
    with pytest.raises(ValueError, match="gamma"):
        adapted.sample(noise, steps=5, native_grid=True, order=2)
