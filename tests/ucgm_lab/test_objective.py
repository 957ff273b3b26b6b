import math

import pytest
import torch

from tests.conftest import TinyNet
from ucgm_lab.objective import UCGMObjective, pseudo_huber_distance, target_from_difference
from ucgm_lab.transports import get_transport

B = 6


def _batch(dtype=torch.float64):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(B, 2, generator=g, dtype=dtype)
    z = torch.randn(B, 2, generator=g, dtype=dtype)
    t = torch.rand(B, generator=g, dtype=dtype) * 0.9 + 0.05
    return x, z, t


def _linear_coeffs(t):  # Linear transport of Tab. 2, written out independently
    return t, 1 - t, torch.ones_like(t), -torch.ones_like(t)


def _fx_linear(F, x_t, t):
    a, g, ah, gh = _linear_coeffs(t)
    D = a * gh - ah * g
    return (a[:, None] * F - ah[:, None] * x_t) / D[:, None]


def test_lambda0_gradient_equals_weighted_flow_matching_gradient():
    net = TinyNet().double()
    x, z, t = _batch()
    obj = UCGMObjective("linear", 0.0, clip=None)
    out = obj(net, x, t=t, noise=z)
    grads = torch.autograd.grad(out.loss, list(net.parameters()))
    # flow matching: regress F(x_t, t) on the velocity z - x with the weight
    # cos(pi t/2) * 4 alpha^2 / (D^2 t sin(pi t/2)) = cos(pi t/2) * 4 t / sin(pi t/2) for Linear
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    F = net(x_t, t)
    w = torch.cos(math.pi * t / 2) * 4 * t / torch.sin(math.pi * t / 2)
    fm = (w * ((F - (z - x)) ** 2).mean(1)).mean()
    fm_grads = torch.autograd.grad(fm, list(net.parameters()))
    for a, b in zip(grads, fm_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_lambda0_loss_value_is_the_flow_matching_mse_times_the_documented_weight():
    """The loss scale of the docstring: w(t) = 16 t^2 cos(pi t/2) / sin(pi t/2)^2 (issue 30)."""
    net = TinyNet().double()
    x, z, t = _batch()
    out = UCGMObjective("linear", 0.0)(net, x, t=t, noise=z)
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    mse = ((net(x_t, t) - (z - x)) ** 2).mean(1)
    w = 16 * t**2 * torch.cos(math.pi * t / 2) / torch.sin(math.pi * t / 2) ** 2
    torch.testing.assert_close(out.per_sample_loss, w * mse)
    # the documented figures: 64 / pi^2 at t -> 0 and a mean of 4.94 over uniform t
    grid = torch.linspace(1e-6, 1, 200001, dtype=torch.float64)
    weight = 16 * grid**2 * torch.cos(math.pi * grid / 2) / torch.sin(math.pi * grid / 2) ** 2
    assert float(torch.trapezoid(weight, grid)) == pytest.approx(4.94, abs=0.005)
    assert float(weight[0]) == pytest.approx(64 / math.pi**2, rel=1e-6)


def test_lambda0_with_clip_gives_clipped_residual_gradient():
    net = TinyNet().double()
    x, z, t = _batch()
    with torch.no_grad():
        net.out.bias.fill_(3.0)  # residuals above 1: the clip is active
    out = UCGMObjective("linear", 0.0, clip=1.0)(net, x, t=t, noise=z)
    assert out.clipped_fraction > 0
    assert UCGMObjective("linear", 0.0).clip is None  # "auto": no clip at lambda = 0 (reference)
    assert UCGMObjective("linear", 0.5).clip == 1.0
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    F = net(x_t, t).detach()
    expected = F - 4 * t[:, None] / torch.sin(math.pi * t[:, None] / 2) * (F - (z - x)).clamp(-1, 1)
    torch.testing.assert_close(out.target, expected)


def test_trigflow_factor_is_minus_four():
    tr = get_transport("trigflow")
    t = torch.linspace(0.01, 1.0, 37, dtype=torch.float64)
    like = torch.zeros(37, 3, dtype=torch.float64)
    c = tr.coefficients(t, like=like)
    target = target_from_difference(torch.zeros_like(like), torch.ones_like(like), c, t[:, None])
    torch.testing.assert_close(target, torch.full_like(like, 4.0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lam", [0.3, 0.75])
def test_intermediate_lambda_target_by_hand(lam):
    net = TinyNet().double()
    x, z, t = _batch()
    out = UCGMObjective("linear", lam, clip=None)(net, x, t=t, noise=z)
    # Alg. 1 lines 9, 10, 15 written out for Linear
    r = lam * t
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    x_r = r[:, None] * z + (1 - r[:, None]) * x
    with torch.no_grad():
        F_t, F_r = net(x_t, t), net(x_r, r)
    delta = (_fx_linear(F_t, x_t, t) - _fx_linear(F_r, x_r, r)) / (t - r)[:, None]
    expected = F_t - (4 * t / (-1.0 * torch.sin(math.pi * t / 2)))[:, None] * delta
    torch.testing.assert_close(out.target, expected)
    per_sample = torch.cos(math.pi * t / 2) * ((F_t - expected) ** 2).mean(1)
    torch.testing.assert_close(out.per_sample_loss.detach(), per_sample)


def test_lambda_one_central_difference_by_hand():
    net = TinyNet().double()
    x, z, t = _batch()
    eps = 0.005
    out = UCGMObjective("trigflow", 1.0)(net, x, t=t, noise=z)
    s, c = torch.sin, torch.cos
    h = math.pi / 2

    def fx(tt):  # TrigFlow: D = -1, f^x = (alpha F - alpha_hat x_t) / D
        x_tt = s(h * tt)[:, None] * z + c(h * tt)[:, None] * x
        with torch.no_grad():
            F = net(x_tt, tt)
        return -(s(h * tt)[:, None] * F - c(h * tt)[:, None] * x_tt)

    delta = (fx(t + eps) / (2 * eps) - fx(t - eps) / (2 * eps)).clamp(-1, 1)
    x_t = s(h * t)[:, None] * z + c(h * t)[:, None] * x
    with torch.no_grad():
        F_t = net(x_t, t)
    torch.testing.assert_close(out.target, F_t + 4 * delta)


def test_lambda_one_tends_to_total_derivative():
    """As epsilon -> 0 the central difference tends to d f^x / dt along the path (App. B.1.2)."""
    net = TinyNet().double()
    x, z, t = _batch()
    tr = get_transport("linear")

    def fx_along(tt):
        x_tt = tr.interpolate(x, z, tt)
        return tr.predict_x(net(x_tt, tt), x_tt, tt)

    tt = t.clone().requires_grad_(True)
    deriv = torch.stack([torch.autograd.grad(fx_along(tt)[:, k].sum(), tt)[0] for k in range(2)], 1)
    out = UCGMObjective("linear", 1.0, clip=None, epsilon=1e-4)(net, x, t=t, noise=z)
    with torch.no_grad():
        F_t = net(tr.interpolate(x, z, t), t)
    implied = (F_t - out.target) * torch.sin(math.pi * t / 2)[:, None] * (-1.0) / (4 * t[:, None])
    torch.testing.assert_close(implied, deriv.detach(), rtol=1e-5, atol=1e-6)


def test_relinear_training_equals_linear_training_of_the_mirrored_network():
    """docs/paper-notes.md, R10: lambda > 0 must be right for ReLinear (data at network time 1)."""
    net = TinyNet().double()

    def mirrored(x_in, s, y=None):
        return -net(x_in, 1 - s)

    x, z, t = _batch()
    for lam in (0.0, 0.5, 1.0):
        t_use = t.clamp(0.01, 0.99)
        a = UCGMObjective("linear", lam)(net, x, t=t_use, noise=z)
        b = UCGMObjective("relinear", lam)(mirrored, x, t=t_use, noise=z)
        torch.testing.assert_close(a.per_sample_loss, b.per_sample_loss)
        torch.testing.assert_close(a.target, -b.target)


def test_pseudo_huber_and_cosine_term():
    F = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    T = torch.zeros(2, 2)
    # sqrt(mean(d^2) + c^2) - c with mean(d^2) = 12.5 for the first sample
    torch.testing.assert_close(
        pseudo_huber_distance(F, T, 0.0), torch.tensor([math.sqrt(12.5), 0.0])
    )
    torch.testing.assert_close(
        pseudo_huber_distance(F, T, 2.0), torch.tensor([math.sqrt(16.5) - 2, 0.0])
    )
    G = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    H = torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    torch.testing.assert_close(
        pseudo_huber_distance(G, H, 0.0, cosine_term=True) - pseudo_huber_distance(G, H, 0.0),
        torch.tensor([1.0, 0.0]),
    )


def test_enhanced_target_lambda0_by_hand():
    net = TinyNet(num_classes=3).double()
    x, z, t = _batch()
    t = t * 0.7  # all inside [0, 0.75]
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    zeta = 0.5
    obj = UCGMObjective("linear", 0.0, enhancement_ratio=zeta, label_dropout=0.0, clip=None)
    out = obj(net, x, y, t=t, noise=z)
    # the first call's EMA teacher is an exact copy of the model (decay starts at 0)
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    with torch.no_grad():
        F_c, F_u = net(x_t, t, y), net(x_t, t, torch.full_like(y, 3))
    fx = lambda F: x_t - t[:, None] * F  # noqa: E731  (Linear: f^x = x_t - t F)
    fz = lambda F: x_t + (1 - t[:, None]) * F  # noqa: E731
    x_star = x + zeta * (fx(F_c) - fx(F_u))
    z_star = z + zeta * (fz(F_c) - fz(F_u))
    k = 4 * t / torch.sin(math.pi * t / 2)
    expected = F_c - k[:, None] * (F_c - (z_star - x_star))
    torch.testing.assert_close(out.target, expected)
    # t above s = 0.75: the halfway rule x* = (x + x^) / 2
    t_hi = torch.full((B,), 0.9, dtype=torch.float64)
    out_hi = obj(net, x, y, t=t_hi, noise=z)
    x_t = 0.9 * z + 0.1 * x
    with torch.no_grad():
        F_c = net(x_t, t_hi, y)
    x_star = 0.5 * (x + (x_t - 0.9 * F_c))
    z_star = 0.5 * (z + (x_t + 0.1 * F_c))
    k = 4 * 0.9 / math.sin(math.pi * 0.9 / 2)
    torch.testing.assert_close(out_hi.target, F_c - k * (F_c - (z_star - x_star)))


def test_label_dropout_is_a_random_mask_and_inputs_are_unchanged():
    net = TinyNet(num_classes=4).double()
    x, z, t = _batch()
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    keep = (x.clone(), y.clone(), z.clone(), t.clone())
    obj = UCGMObjective("linear", 0.5, label_dropout=0.5, enhancement_ratio=1.5)
    out = obj(net, x, y, t=t, noise=z, generator=torch.Generator().manual_seed(0))
    for a, b in zip((x, y, z, t), keep, strict=True):
        assert torch.equal(a, b)
    dropped = out.labels == 4
    assert dropped.any() and (~dropped).any()
    assert torch.equal(out.labels[~dropped], y[~dropped])
    # a batch of one works (the reference nulls the whole batch when round(0.1 B) = 0)
    obj(net, x[:1], y[:1])


def test_same_seed_same_result_and_global_rng_untouched():
    net = TinyNet(num_classes=3).double()
    x, _, _ = _batch()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    obj = UCGMObjective("linear", 0.5, enhancement_ratio=1.2)
    state = torch.get_rng_state()
    a = obj(net, x, y, generator=torch.Generator().manual_seed(3))
    assert torch.equal(state, torch.get_rng_state())
    b = obj(net, x, y, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.t, b.t)


def test_teacher_state_round_trip():
    net = TinyNet(num_classes=3).double()
    x, z, t = _batch()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    obj = UCGMObjective("linear", 0.0, enhancement_ratio=0.5, teacher_decay=0.9)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        obj(net, x, y).loss.backward()
        opt.step()
    state = obj.state_dict()
    assert state["ema_teacher"]["num_updates"] == 3
    fresh = UCGMObjective("linear", 0.0, enhancement_ratio=0.5, teacher_decay=0.9)
    fresh.load_state_dict(state)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(
        obj(net, x, y, t=t, noise=z, generator=g1).loss,
        fresh(net, x, y, t=t, noise=z, generator=g2).loss,
    )


def test_ema_teacher_warmup_schedule():
    from ucgm_lab.ema import ExponentialMovingAverage

    net = TinyNet()
    ema = ExponentialMovingAverage(net, 0.999, warmup=True)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay)
        ema.update(net)
    d = [0.0]
    for _ in range(2):
        d.append(d[-1] + (1 - d[-1]) * (0.999 - d[-1]) * 0.5)
    assert decays == pytest.approx(d)


def test_frozen_teacher_for_few_step_enhancement():
    net = TinyNet(num_classes=3).double()
    teacher = TinyNet(num_classes=3).double()
    x, z, t = _batch()
    t = t * 0.7
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    zeta = 2.0
    out = UCGMObjective(
        "linear", 0.5, enhancement_ratio=zeta, teacher=teacher, label_dropout=0.0, clip=None
    )(net, x, y, t=t, noise=z)
    x_t = t[:, None] * z + (1 - t[:, None]) * x
    with torch.no_grad():
        F_T = teacher(x_t, t, y)
    x_star = x + zeta * ((x_t - t[:, None] * F_T) - x)
    z_star = z + zeta * ((x_t + (1 - t[:, None]) * F_T) - z)
    r = 0.5 * t
    x_r = r[:, None] * z + (1 - r[:, None]) * x
    with torch.no_grad():
        F_t, F_r = net(x_t, t, y), net(x_r, r, y)
    xs_t = t[:, None] * z_star + (1 - t[:, None]) * x_star
    xs_r = r[:, None] * z_star + (1 - r[:, None]) * x_star
    delta = (_fx_linear(F_t, xs_t, t) - _fx_linear(F_r, xs_r, r)) / (t - r)[:, None]
    expected = F_t + (4 * t / torch.sin(math.pi * t / 2))[:, None] * delta
    torch.testing.assert_close(out.target, expected)


def test_bad_inputs_have_clear_errors():
    net = TinyNet()
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"lambda\) must lie in \[0, 1\]"):
        UCGMObjective("linear", 1.5)
    with pytest.raises(ValueError, match=r"lambda\) must lie in \[0, 1\]"):
        UCGMObjective("linear", -0.1)
    with pytest.raises(ValueError, match="Unknown transport"):
        UCGMObjective("sigmoid")
    with pytest.raises(ValueError, match=r"zeta\) must lie in \[0, 1\)"):
        UCGMObjective("linear", 0.0, enhancement_ratio=1.5)
    with pytest.raises(ValueError, match="label_dropout"):
        UCGMObjective("linear", label_dropout=1.0)
    obj = UCGMObjective("linear")
    with pytest.raises(ValueError, match="shape"):
        obj(net, torch.randn(4))
    with pytest.raises(ValueError, match="noise must have the shape"):
        obj(net, x, noise=torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(4,\)"):
        obj(net, x, t=torch.rand(3))
    with pytest.raises(ValueError, match="t must lie"):
        obj(net, x, t=torch.zeros(4))
    with pytest.raises(ValueError, match="t must lie"):
        UCGMObjective("linear", 1.0)(net, x, t=torch.full((4,), 0.999))
    with pytest.raises(ValueError, match="unconditional"):
        obj(net, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="needs class labels"):
        UCGMObjective("linear", enhancement_ratio=0.5, null_class=3)(net, x)
    with pytest.raises(ValueError, match="model must return"):
        obj(lambda a, b: a[:, :1], x)


def test_sampled_times_stay_in_range_for_lambda_one():
    net = TinyNet()
    out = UCGMObjective("linear", 1.0)(net, torch.randn(512, 2))
    assert out.t.min() >= 0.005 and out.t.max() <= 0.995
