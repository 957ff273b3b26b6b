import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ucgm_lab.networks import MLP2D, build_network, sinusoidal_embedding


def _inputs(batch=16, dim=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=gen), torch.rand(batch, generator=gen)


def test_unconditional_shape_and_two_argument_call():
    model = MLP2D()
    x, t = _inputs()
    out = model(x, t)
    assert out.shape == x.shape
    assert model.num_classes is None and model.null_class is None
    wide = MLP2D(dim=5, hidden=32, depth=2)
    x5, t5 = _inputs(dim=5)
    assert wide(x5, t5).shape == (16, 5)


def test_forward_matches_manual_recomputation():
    model = MLP2D(dim=3, hidden=32, depth=2, time_embed_dim=8, num_classes=4).double()
    x, t = _inputs(batch=6, dim=3)
    x, t = x.double(), t.double()
    y = torch.tensor([0, 1, 2, 3, 4, 1])
    sd = model.state_dict()
    temb = sinusoidal_embedding(t, 8)
    cemb = sd["class_embed.table.weight"][y]
    h = torch.cat([x, temb, cemb], dim=1) @ sd["in_proj.weight"].T + sd["in_proj.bias"]
    for i in range(2):
        h = h + F.silu(h) @ sd[f"blocks.{i}.linear.weight"].T + sd[f"blocks.{i}.linear.bias"]
    expected = F.silu(h) @ sd["out_proj.weight"].T + sd["out_proj.bias"]
    torch.testing.assert_close(model(x, t, y), expected)


def test_time_changes_output():
    model = MLP2D(hidden=64, depth=2)
    x, _ = _inputs()
    out0 = model(x, torch.zeros(16))
    out1 = model(x, torch.full((16,), 0.5))
    assert (out0 - out1).abs().max() > 1e-4


def test_conditional_null_class_used_when_y_is_none():
    model = MLP2D(hidden=64, depth=2, num_classes=3)
    assert model.num_classes == 3 and model.null_class == 3
    x, t = _inputs()
    out_none = model(x, t)
    out_null = model(x, t, torch.full((16,), 3, dtype=torch.long))
    out_class = model(x, t, torch.zeros(16, dtype=torch.long))
    torch.testing.assert_close(out_none, out_null, rtol=0, atol=0)
    assert (out_none - out_class).abs().max() > 1e-4
    # int32 ids are accepted too
    torch.testing.assert_close(model(x, t, torch.zeros(16, dtype=torch.int32)), out_class)


def test_gradient_reaches_every_parameter():
    model = MLP2D(hidden=32, depth=3, num_classes=2)
    x, t = _inputs()
    y = torch.tensor([0, 1, 2, 0] * 4)
    model(x, t, y).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_build_network_round_trip_through_json():
    model = MLP2D(dim=4, hidden=48, depth=3, time_embed_dim=16, num_classes=5, activation="gelu")
    config = json.loads(json.dumps(model.config))
    assert config["kind"] == "mlp2d"
    rebuilt = build_network(config)
    assert isinstance(rebuilt, MLP2D)
    assert rebuilt.config == model.config
    x, t = _inputs(dim=4)
    y = torch.arange(16) % 6
    assert (rebuilt(x, t, y) - model(x, t, y)).abs().max() > 0  # fresh init differs
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x, t, y), model(x, t, y), rtol=0, atol=0)


def test_activation_by_class_or_name():
    assert MLP2D(activation=nn.ReLU).config["activation"] == "relu"
    assert MLP2D(activation="SiLU").config["activation"] == "silu"
    assert MLP2D().config["activation"] == "silu"
    with pytest.raises(ValueError, match="unknown activation.*allowed"):
        MLP2D(activation="swish42")
    with pytest.raises(ValueError, match="unknown activation"):
        MLP2D(activation=nn.Linear)


def test_bad_call_inputs_give_clear_errors():
    model = MLP2D(hidden=16, depth=1)
    cond = MLP2D(hidden=16, depth=1, num_classes=3)
    x, t = _inputs()
    with pytest.raises(ValueError, match=r"expects x_t of shape \(B, 2\)"):
        model(torch.randn(16, 3), t)
    with pytest.raises(ValueError, match=r"expects x_t of shape"):
        model(torch.randn(16, 2, 1), t)
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        model(x, t[:, None])
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        model(x, torch.tensor(0.5))
    with pytest.raises(TypeError, match="floating-point"):
        model(x, torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match="built without classes"):
        model(x, t, torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\]"):
        cond(x, t, torch.full((16,), 4))
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\]"):
        cond(x, t, torch.full((16,), -1))
    with pytest.raises(TypeError, match="integer"):
        cond(x, t, torch.zeros(16))
    with pytest.raises(ValueError, match=r"y must have shape \(B,\)"):
        cond(x, t, torch.zeros(8, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 0}, "dim must be"),
        ({"hidden": 2.5}, "hidden must be"),
        ({"depth": -1}, "depth must be"),
        ({"num_classes": 0}, "num_classes must be"),
        ({"time_embed_dim": 15}, "time_embed_dim"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP2D(**kwargs)
