import pytest
import torch
import torch.nn.functional as F

from ucgm_lab.networks.tit import (
    TIT_SIZES,
    TiT,
    apply_rope,
    rms_norm,
    rope_tables,
    tit_from_name,
    tit_size,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(name="TiT-tiny/2", **kwargs):
    return tit_from_name(name, **{"input_size": 8, "in_channels": 4, "num_classes": 5, **kwargs})


def _inputs(batch=3, channels=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=g), torch.rand(batch, generator=g)


@pytest.mark.parametrize(("size", "millions"), [("B", 130), ("L", 458), ("XL", 675)])
def test_named_sizes_match_the_paper_parameter_counts(size, millions):
    """App. A.1.2: B 130M, L 458M, XL 675M (counted without allocating, on the meta device)."""
    for patch in (1, 2, 4):
        with torch.device("meta"):
            model = tit_from_name(f"TiT-{size}/{patch}", input_size=32, in_channels=4)
        count = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(count - millions) < 1.0, (size, patch, count)
        depth, width, heads = TIT_SIZES[size]
        assert (model.depth, model.hidden_size, model.num_heads, model.patch_size) == (
            depth,
            width,
            heads,
            patch,
        )


def test_unknown_name_and_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="known names"):
        tit_size("TiT-XXL/2")
    with pytest.raises(ValueError, match="divisible by patch_size"):
        TiT(input_size=6, patch_size=4, hidden_size=32, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="divisible by 4"):
        TiT(input_size=8, patch_size=2, hidden_size=24, depth=1, num_heads=4)
    model = _tiny()
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 4, 8, 8\)"):
        model(torch.randn(2, 3, 8, 8), torch.rand(2))
    with pytest.raises(ValueError, match="class ids must lie in"):
        model(torch.randn(2, 4, 8, 8), torch.rand(2), torch.tensor([0, 6]))


def test_fresh_model_is_zero_and_shapes_hold_for_all_patch_sizes(perturb):
    for patch in (1, 2, 4):
        model = _tiny(name=f"TiT-tiny/{patch}")
        x, t = _inputs()
        assert torch.count_nonzero(model(x, t)) == 0  # adaLN-Zero + zero output layer
        perturb(model)
        out = model(x, t, torch.tensor([0, 1, 5]))
        assert out.shape == x.shape and torch.isfinite(out).all() and out.abs().max() > 0


def test_time_class_and_null_class_change_the_output(perturb):
    model = _tiny()
    perturb(model)
    x, t = _inputs()
    y = torch.tensor([0, 1, 2])
    assert model.null_class == model.num_classes == 5
    torch.testing.assert_close(model(x, t), model(x, t, torch.full((3,), 5)))
    assert (model(x, t, y) - model(x, t)).abs().max() > 1e-4
    assert (model(x, t, y) - model(x, 1 - t, y)).abs().max() > 1e-4


def test_batch_rows_are_independent(perturb):
    model = _tiny()
    perturb(model)
    x, t = _inputs(batch=4)
    y = torch.tensor([0, 1, 2, 5])
    full = model(x, t, y)
    single = torch.cat([model(x[i : i + 1], t[i : i + 1], y[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(full, single, rtol=1e-4, atol=1e-5)


def test_rms_norm_is_parameter_free_and_unit_rms():
    x = torch.randn(5, 7, 16) * 3 + 1
    out = rms_norm(x)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(5, 7), rtol=1e-4, atol=1e-4)
    assert rms_norm(x.bfloat16()).dtype == torch.bfloat16


def test_rope_scores_depend_only_on_relative_position():
    """<R(p) q, R(p') k> depends on p - p' only, per axis (2-D RoPE)."""
    grid, dim = 6, 16
    cos, sin = rope_tables(grid, dim)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    n = grid * grid
    rq = apply_rope(q.expand(1, 1, n, dim), cos, sin)[0, 0]
    rk = apply_rope(k.expand(1, 1, n, dim), cos, sin)[0, 0]

    def score(r1, c1, r2, c2):
        return float(rq[r1 * grid + c1] @ rk[r2 * grid + c2])

    assert score(1, 2, 3, 1) == pytest.approx(score(2, 4, 4, 3), abs=1e-5)
    assert score(0, 0, 2, 2) == pytest.approx(score(3, 3, 5, 5), abs=1e-5)
    assert abs(score(0, 0, 2, 2) - score(0, 0, 2, 3)) > 1e-3
    # rotations preserve norms
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(n), rtol=1e-5, atol=1e-5)


def test_attention_matches_naive_softmax_attention(perturb):
    model = _tiny()
    perturb(model)
    attn = model.blocks[0].attn
    x = torch.randn(2, model.grid**2, model.hidden_size)
    out = attn(x, model.rope_cos, model.rope_sin)
    b, n, d = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q = apply_rope(rms_norm(q), model.rope_cos, model.rope_sin)
    k = apply_rope(rms_norm(k), model.rope_cos, model.rope_sin)
    weights = F.softmax(q @ k.transpose(-1, -2) / attn.head_dim**0.5, dim=-1)
    naive = attn.proj((weights @ v).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(out, naive, rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(perturb):
    plain = _tiny()
    perturb(plain)
    ckpt = TiT.from_config({**plain.config, "gradient_checkpointing": True})
    ckpt.load_state_dict(plain.state_dict())
    x, t = _inputs()
    y = torch.tensor([0, 1, 2])
    for model in (plain, ckpt):
        model.train()
        model(x, t, y).pow(2).sum().backward()
    for (name, p1), (_, p2) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_config_rebuilds_the_same_function(perturb):
    model = _tiny(num_classes=None)
    perturb(model)
    assert model.config["kind"] == "tit"
    rebuilt = TiT.from_config(model.config)
    rebuilt.load_state_dict(model.state_dict())
    x, t = _inputs()
    torch.testing.assert_close(rebuilt(x, t), model(x, t))
    with pytest.raises(ValueError, match="without classes"):
        model(x, t, torch.tensor([0, 1, 2]))


def test_bf16_autocast_forward_and_backward(perturb):
    model = _tiny()
    perturb(model)
    x, t = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t, torch.tensor([0, 1, 2]))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_forward_flops_match_a_flop_counter_for_the_matmuls():
    """The analytic count equals torch's FlopCounter plus the attention matmuls it may skip."""
    from torch.utils.flop_counter import FlopCounterMode

    model = _tiny(name="TiT-tiny/1")
    x, t = _inputs(batch=1)
    with FlopCounterMode(display=False) as counter:
        model(x, t)
    counted = counter.get_total_flops()
    n, d = model.grid**2, model.hidden_size
    attention = model.depth * 4 * n * n * d
    assert model.forward_flops() in (counted, counted + attention)
