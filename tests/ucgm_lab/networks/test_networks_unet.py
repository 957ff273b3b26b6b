import json

import pytest
import torch

from ucgm_lab.networks import SmallUNet, build_network


def _images(batch=4, channels=1, size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=gen), torch.rand(batch, generator=gen)


def test_fresh_network_outputs_zero_because_final_conv_is_zero():
    model = SmallUNet(1, 8)
    assert torch.count_nonzero(model.conv_out.weight) == 0
    assert torch.count_nonzero(model.conv_out.bias) == 0
    x, t = _images()
    out = model(x, t)
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize(
    ("channels", "size", "mults", "blocks"),
    [(1, 8, (1, 2), 1), (3, 32, (1, 2, 2), 1), (3, 32, (1, 2), 2), (1, 8, (1,), 1)],
)
def test_shapes(channels, size, mults, blocks, perturb):
    model = SmallUNet(channels, size, base_channels=8, channel_mults=mults, num_res_blocks=blocks)
    perturb(model)
    x, t = _images(channels=channels, size=size)
    out = model(x, t)
    assert out.shape == x.shape
    assert torch.isfinite(out).all() and out.abs().max() > 0


def test_time_and_input_change_output(perturb):
    model = SmallUNet(1, 8, base_channels=16)
    perturb(model)
    x, _ = _images()
    out0 = model(x, torch.zeros(4))
    out1 = model(x, torch.full((4,), 0.5))
    assert (out0 - out1).abs().max() > 1e-4
    assert (model(x + 1.0, torch.zeros(4)) - out0).abs().max() > 1e-4


def test_batch_rows_are_independent(perturb):
    model = SmallUNet(1, 8, base_channels=16, num_classes=3)
    perturb(model)
    x, t = _images()
    y = torch.tensor([0, 1, 2, 3])
    full = model(x, t, y)
    single = torch.cat([model(x[i : i + 1], t[i : i + 1], y[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(full, single, rtol=1e-4, atol=1e-5)


def test_conditional_null_class_used_when_y_is_none(perturb):
    model = SmallUNet(1, 8, base_channels=16, num_classes=10)
    assert model.num_classes == 10 and model.null_class == 10
    perturb(model)
    x, t = _images()
    out_none = model(x, t)
    out_null = model(x, t, torch.full((4,), 10, dtype=torch.long))
    out_class = model(x, t, torch.tensor([1, 2, 3, 4]))
    torch.testing.assert_close(out_none, out_null, rtol=0, atol=0)
    assert (out_none - out_class).abs().max() > 1e-4


def test_gradient_reaches_every_parameter(perturb):
    model = SmallUNet(1, 8, base_channels=8, num_classes=2)
    perturb(model)
    x, t = _images()
    model(x, t, torch.tensor([0, 1, 2, 1])).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_build_network_round_trip_through_json(perturb):
    model = SmallUNet(3, 32, base_channels=8, channel_mults=(1, 2, 2), num_classes=10)
    perturb(model)
    config = json.loads(json.dumps(model.config))
    assert config["kind"] == "small_unet"
    assert config["channel_mults"] == [1, 2, 2]
    rebuilt = build_network(config)
    assert isinstance(rebuilt, SmallUNet)
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    x, t = _images(channels=3, size=32)
    y = torch.tensor([0, 5, 9, 10])
    torch.testing.assert_close(rebuilt(x, t, y), model(x, t, y), rtol=0, atol=0)


def test_image_size_must_be_divisible():
    with pytest.raises(ValueError, match=r"image_size=6 must be divisible by .* = 4"):
        SmallUNet(1, 6, channel_mults=(1, 2, 2))
    SmallUNet(1, 12, channel_mults=(1, 2, 2))  # 12 is divisible by 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel_mults": ()}, "channel_mults"),
        ({"channel_mults": (1, 0)}, "channel_mults"),
        ({"base_channels": 0}, "base_channels"),
        ({"num_classes": 0}, "num_classes"),
        ({"time_embed_dim": 7}, "time_embed_dim"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SmallUNet(1, 8, **kwargs)


def test_bad_call_inputs_give_clear_errors():
    model = SmallUNet(1, 8, base_channels=8)
    x, t = _images()
    with pytest.raises(ValueError, match=r"expects x_t of shape \(B, 1, 8, 8\)"):
        model(torch.randn(4, 3, 8, 8), t)
    with pytest.raises(ValueError, match=r"expects x_t of shape \(B, 1, 8, 8\)"):
        model(torch.randn(4, 1, 16, 16), t)
    with pytest.raises(ValueError, match=r"expects x_t of shape"):
        model(torch.randn(4, 64), t)
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        model(x, torch.rand(3))
    with pytest.raises(ValueError, match="built without classes"):
        model(x, t, torch.zeros(4, dtype=torch.long))


def test_build_network_errors():
    with pytest.raises(ValueError, match="unknown network kind 'transformer'.*mlp2d, small_unet"):
        build_network({"kind": "transformer"})
    with pytest.raises(ValueError, match="no 'kind' key.*mlp2d, small_unet"):
        build_network({"dim": 2})
    with pytest.raises(ValueError, match=r"unknown keys \['widht'\].*allowed"):
        build_network({"kind": "mlp2d", "widht": 3})
    with pytest.raises(ValueError, match="mapping"):
        build_network(["mlp2d"])
    assert isinstance(
        build_network({"kind": "small_unet", "in_channels": 1, "image_size": 8}), SmallUNet
    )


def test_time_scale_multiplies_t_inside_the_embedding(perturb):
    """SmallUNet(time_scale=s)(x, t) equals the default network (1000) at t * s / 1000."""
    fast = SmallUNet(1, 8, base_channels=8, num_classes=3)
    perturb(fast)
    smooth = SmallUNet(1, 8, base_channels=8, num_classes=3, time_scale=30)
    smooth.load_state_dict(fast.state_dict())  # the embedding has no parameters
    x, t = _images()
    y = torch.tensor([0, 1, 2, 3])
    expected = fast(x, (t.double() * 30 / 1000).float(), y)
    torch.testing.assert_close(smooth(x, t, y), expected, rtol=1e-5, atol=1e-6)
    assert smooth.config["time_scale"] == 30.0 and fast.config["time_scale"] == 1000.0
    rebuilt = build_network(json.loads(json.dumps(smooth.config)))
    assert rebuilt.time_embed.scale == 30.0
    legacy = {k: v for k, v in smooth.config.items() if k != "time_scale"}  # saved before the field
    assert build_network(legacy).time_embed.scale == 1000.0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "30"])
def test_bad_time_scale(bad):
    with pytest.raises(ValueError, match="time_scale must be a positive finite number"):
        SmallUNet(1, 8, time_scale=bad)
