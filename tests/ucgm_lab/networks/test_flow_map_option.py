"""The networks' optional second time r (flow maps, MeanFlow's u(z_t, r, t))."""

import pytest
import torch
import torch.nn.functional as F

from ucgm_lab.networks import MLP2D, TimeScaled, build_network, sinusoidal_embedding


def _inputs(batch=6, dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    t = torch.rand(batch, generator=gen, dtype=torch.float64)
    r = t * torch.rand(batch, generator=gen, dtype=torch.float64)
    return x, t, r


def _manual(sd, parts, depth):
    h = torch.cat(parts, dim=1) @ sd["in_proj.weight"].T + sd["in_proj.bias"]
    for i in range(depth):
        h = h + F.silu(h) @ sd[f"blocks.{i}.linear.weight"].T + sd[f"blocks.{i}.linear.bias"]
    return F.silu(h) @ sd["out_proj.weight"].T + sd["out_proj.bias"]


def test_option_off_keeps_parameters_config_and_outputs():
    torch.manual_seed(3)
    old_default = MLP2D(dim=3, hidden=16, depth=2, time_embed_dim=8)
    torch.manual_seed(3)
    explicit_off = MLP2D(dim=3, hidden=16, depth=2, time_embed_dim=8, flow_map=False)
    assert "flow_map" not in old_default.config
    assert old_default.config == explicit_off.config
    sd_a, sd_b = old_default.state_dict(), explicit_off.state_dict()
    assert sd_a.keys() == sd_b.keys()
    assert sd_a["in_proj.weight"].shape == (16, 3 + 8)
    for key in sd_a:
        assert torch.equal(sd_a[key], sd_b[key]), key
    x, t, _ = _inputs()
    model = old_default.double()
    sd = model.state_dict()
    expected = _manual(sd, [x, sinusoidal_embedding(t, 8)], 2)
    torch.testing.assert_close(model(x, t), expected)


def test_flow_map_embeds_t_minus_r_and_defaults_to_r_equal_t():
    model = MLP2D(dim=3, hidden=16, depth=2, time_embed_dim=8, num_classes=2, flow_map=True)
    model = model.double()
    x, t, r = _inputs()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    sd = model.state_dict()
    assert sd["in_proj.weight"].shape == (16, 3 + 3 * 8)
    cemb = sd["class_embed.table.weight"][y]
    expected = _manual(sd, [x, sinusoidal_embedding(t, 8), cemb, sinusoidal_embedding(t - r, 8)], 2)
    torch.testing.assert_close(model(x, t, y, r=r), expected)
    # r = None is the instantaneous velocity u(z, t, t).
    torch.testing.assert_close(model(x, t, y), model(x, t, y, r=t.clone()))
    assert (model(x, t, y, r=r) - model(x, t, y)).abs().max() > 1e-6
    rebuilt = build_network(model.config).double()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x, t, y, r=r), model(x, t, y, r=r))


def test_r_on_plain_network_is_a_clear_error():
    model = MLP2D(dim=3, hidden=8, depth=1, time_embed_dim=4)
    x, t, r = _inputs()
    with pytest.raises(ValueError, match="flow_map=True"):
        model(x.float(), t.float(), r=r.float())
    with pytest.raises(TypeError, match="flow_map must be True or False"):
        MLP2D(flow_map="yes")


def test_time_scaled_scales_both_times():
    inner = MLP2D(dim=3, hidden=16, depth=1, time_embed_dim=8, flow_map=True).double()
    wrapped = TimeScaled(inner, time_scale=0.03)
    x, t, r = _inputs()
    torch.testing.assert_close(wrapped(x, t, r=r), inner(x, 0.03 * t, r=0.03 * r))
    torch.testing.assert_close(wrapped(x, t), inner(x, 0.03 * t))
    plain = TimeScaled(MLP2D(dim=3, hidden=8, depth=1, time_embed_dim=4).double(), 0.5)
    with pytest.raises(ValueError, match="flow_map=True"):
        plain(x, t, r=r)


def test_small_unet_option_off_unchanged_and_on_uses_the_interval():
    from ucgm_lab.networks import SmallUNet

    torch.manual_seed(5)
    plain = SmallUNet(1, 8, base_channels=8, time_embed_dim=16)
    torch.manual_seed(5)
    flow = SmallUNet(1, 8, base_channels=8, time_embed_dim=16, flow_map=True)
    assert "flow_map" not in plain.config and flow.config["flow_map"] is True
    sd_plain, sd_flow = plain.state_dict(), flow.state_dict()
    extra = set(sd_flow) - set(sd_plain)
    assert extra and all(k.startswith("interval_mlp.") for k in extra)
    for key in sd_plain:  # the option draws its weights last: the others are the same
        assert torch.equal(sd_plain[key], sd_flow[key]), key
    gen = torch.Generator().manual_seed(0)
    for p in flow.parameters():  # conv_out starts at zero: perturb to see the inputs
        p.data.add_(0.1 * torch.randn(p.shape, generator=gen))
    x = torch.randn(3, 1, 8, 8, generator=gen)
    t = torch.tensor([0.9, 0.5, 0.2])
    r = torch.tensor([0.1, 0.5, 0.0])
    torch.testing.assert_close(flow(x, t), flow(x, t, r=t.clone()))
    assert (flow(x, t, r=r) - flow(x, t))[[0, 2]].abs().max() > 1e-5
    torch.testing.assert_close(flow(x, t, r=r)[1], flow(x, t)[1])  # r = t in row 1
    with pytest.raises(ValueError, match="flow_map=True"):
        plain(x, t, r=r)


def test_tit_option_off_unchanged_and_on_uses_the_interval():
    from ucgm_lab.networks.tit import TiT

    kw = dict(input_size=4, in_channels=1, patch_size=2, hidden_size=16, depth=1, num_heads=2)
    torch.manual_seed(5)
    plain = TiT(num_classes=None, **kw)
    torch.manual_seed(5)
    off = TiT(num_classes=None, flow_map=False, **kw)
    assert plain.config == off.config and "flow_map" not in plain.config
    for (k, a), (_, b) in zip(plain.state_dict().items(), off.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    flow = TiT(num_classes=None, flow_map=True, **kw)
    assert flow.config["flow_map"] is True
    assert set(flow.state_dict()) - set(plain.state_dict()) == {
        "r_embedder.0.weight",
        "r_embedder.0.bias",
        "r_embedder.2.weight",
        "r_embedder.2.bias",
    }
    gen = torch.Generator().manual_seed(0)
    for p in flow.parameters():  # the output layers start at zero: perturb
        p.data.add_(0.1 * torch.randn(p.shape, generator=gen))
    x = torch.randn(2, 1, 4, 4, generator=gen)
    t = torch.tensor([0.9, 0.4])
    r = torch.tensor([0.1, 0.4])
    torch.testing.assert_close(flow(x, t), flow(x, t, r=t.clone()))
    assert (flow(x, t, r=r) - flow(x, t))[0].abs().max() > 1e-5
    torch.testing.assert_close(flow(x, t, r=r)[1], flow(x, t)[1])
    with pytest.raises(ValueError, match="flow_map=True"):
        plain(x, t, r=r)
