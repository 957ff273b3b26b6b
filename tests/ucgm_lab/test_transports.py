import math
import warnings

import pytest
import torch

from ucgm_lab.transports import (
    Transport,
    TransportConstraintError,
    TransportConstraintWarning,
    get_transport,
    list_transports,
)

ALL = list_transports()


def test_six_transports_of_table_2():
    assert sorted(ALL) == sorted(["linear", "relinear", "trigflow", "edm", "triglinear", "random"])


@pytest.mark.parametrize("name", ["linear", "LINEAR", "TrigFlow", "tRiGlInEaR", "ReLinear", "edm"])
def test_names_are_case_insensitive(name):
    assert get_transport(name) is get_transport(name.lower())


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError) as err:
        get_transport("cosine")
    for known in ["Linear", "ReLinear", "TrigFlow", "EDM", "TrigLinear", "Random"]:
        assert known in str(err.value)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(7, 2), (3, 2, 4, 4)])
def test_prediction_functions_recover_x_and_z(name, shape):
    tr = get_transport(name)
    x, z = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    t = torch.rand(shape[0], dtype=torch.float64) * 0.98 + 0.01
    x_t = tr.interpolate(x, z, t)
    F = tr.target(x, z, t)
    dec = tr.decompose(F, x_t, t)
    torch.testing.assert_close(dec.x_hat, x)
    torch.testing.assert_close(dec.z_hat, z)
    torch.testing.assert_close(tr.predict_x(F, x_t, t), x)
    torch.testing.assert_close(tr.predict_z(F, x_t, t), z)


@pytest.mark.parametrize("name", ALL)
def test_decomposition_is_consistent_for_any_output(name):
    """alpha f^z + gamma f^x = x_t for any F (eq. 2)."""
    tr = get_transport(name)
    x_t = torch.randn(9, 3, dtype=torch.float64)
    F = torch.randn(9, 3, dtype=torch.float64) * 5
    t = torch.rand(9, dtype=torch.float64) * 0.98 + 0.01
    dec = tr.decompose(F, x_t, t)
    c = tr.coefficients(t, like=x_t)
    torch.testing.assert_close(c.alpha * dec.z_hat + c.gamma * dec.x_hat, x_t)
    # and the network output is recovered too: alpha_hat z^ + gamma_hat x^ = F
    torch.testing.assert_close(c.alpha_hat * dec.z_hat + c.gamma_hat * dec.x_hat, F)


def test_table_2_values_written_out():
    t = torch.tensor([0.3], dtype=torch.float64)
    s = math.sin(math.pi * 0.3 / 2)
    c = math.cos(math.pi * 0.3 / 2)
    expected = {
        "linear": (0.3, 0.7, 1.0, -1.0),
        "trigflow": (s, c, c, -s),
        "triglinear": (s, c, 1.0, -1.0),
        "random": (s, 0.7, 1.0, -1 - math.exp(-1.5)),
    }
    sigma = math.exp(4 * (2.68 * 0.3 - 1.59))
    n = math.sqrt(sigma**2 + 0.25)
    expected["edm"] = (sigma / n, 1 / n, -0.5 / n, 2 * sigma / n)
    for name, values in expected.items():
        co = get_transport(name).coefficients(t)
        got = (co.alpha.item(), co.gamma.item(), co.alpha_hat.item(), co.gamma_hat.item())
        assert got == pytest.approx(values, rel=1e-12), name
    # EDM: D is the constant 2
    assert (
        get_transport("edm").D(torch.linspace(0, 1, 11, dtype=torch.float64)).sub(2).abs().max()
        < 1e-12
    )


def test_relinear_is_table_2_in_flipped_time():
    """ReLinear of Tab. 2 (data at s = 1) is expressed with t = 1 - s and model_time(t) = 1 - t."""
    tr = get_transport("relinear")
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    s = 1 - t
    c = tr.coefficients(t)
    torch.testing.assert_close(c.alpha, 1 - s)
    torch.testing.assert_close(c.gamma, s)
    torch.testing.assert_close(c.alpha_hat, -torch.ones_like(t))
    torch.testing.assert_close(c.gamma_hat, torch.ones_like(t))
    torch.testing.assert_close(tr.model_time(t), s)
    assert tr.model_time(torch.tensor(0.0)) == 1.0  # data end = network time 1


def _derivative(fn, t):
    t = t.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(t).sum(), t)
    return grad


@pytest.mark.parametrize("name", ["linear"])
def test_flow_matching_transports_have_hat_equal_derivative(name):
    tr = get_transport(name)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(_derivative(tr.alpha, t), tr.alpha_hat(t))
    torch.testing.assert_close(_derivative(tr.gamma, t), tr.gamma_hat(t))


def test_relinear_hat_is_derivative_in_network_time():
    tr = get_transport("relinear")
    s = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    # network time s = 1 - t  =>  d/ds = -d/dt
    torch.testing.assert_close(_derivative(lambda u: tr.alpha(1 - u), s), tr.alpha_hat(1 - s))
    torch.testing.assert_close(_derivative(lambda u: tr.gamma(1 - u), s), tr.gamma_hat(1 - s))


def test_trigflow_hat_is_derivative_up_to_pi_over_2():
    tr = get_transport("trigflow")
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(_derivative(tr.alpha, t), math.pi / 2 * tr.alpha_hat(t))
    torch.testing.assert_close(_derivative(tr.gamma, t), math.pi / 2 * tr.gamma_hat(t))


def test_time_broadcast_per_sample():
    tr = get_transport("linear")
    x = torch.ones(3, 2, 4, 4)
    z = torch.zeros(3, 2, 4, 4)
    x_t = tr.interpolate(x, z, torch.tensor([0.0, 0.5, 1.0]))
    assert x_t.shape == x.shape
    assert torch.equal(x_t[:, 0, 0, 0], torch.tensor([1.0, 0.5, 0.0]))
    assert torch.equal(tr.interpolate(x, z, 0.25), torch.full_like(x, 0.75))
    with pytest.raises(ValueError, match="shape"):
        tr.interpolate(x, z, torch.tensor([0.1, 0.2]))


def test_constraint_c_violation_names_t():
    with pytest.raises(TransportConstraintError, match=r"t = 0\.33|t in \[0\.33"):
        Transport(
            alpha=lambda t: t,
            gamma=lambda t: 1 - t,
            alpha_hat=torch.ones_like,
            gamma_hat=lambda t: 2 * torch.ones_like(t),  # D = 3t - 1 vanishes at 1/3
            name="bad",
        )
    with pytest.raises(TransportConstraintError, match="constraint \\(c\\)"):
        Transport(
            alpha=lambda t: t,
            gamma=lambda t: 1 - t,
            alpha_hat=lambda t: t,
            gamma_hat=lambda t: 1 - t,
        )


def test_non_finite_and_non_tensor_coefficients_are_errors():
    with pytest.raises(TransportConstraintError, match="not finite"):
        Transport(
            alpha=lambda t: t,
            gamma=lambda t: 1 - t,
            alpha_hat=lambda t: 1 / t,
            gamma_hat=lambda t: -torch.ones_like(t),
        )
    with pytest.raises(TransportConstraintError, match="tensor"):
        Transport(
            alpha=lambda t: t,
            gamma=lambda t: 1 - t,
            alpha_hat=lambda t: 1.0,
            gamma_hat=lambda t: -torch.ones_like(t),
        )
    with pytest.raises(TypeError, match="function"):
        Transport(
            alpha=1.0, gamma=lambda t: 1 - t, alpha_hat=torch.ones_like, gamma_hat=torch.ones_like
        )


def test_undeclared_boundary_deviation_warns_and_declared_one_does_not():
    kwargs = dict(
        alpha=lambda t: t,
        gamma=lambda t: 2 * (1 - t),  # gamma(0) = 2, like EDM's data scaling
        alpha_hat=torch.ones_like,
        gamma_hat=lambda t: -2 * torch.ones_like(t),
    )
    with pytest.warns(TransportConstraintWarning, match=r"gamma\(0\)=1"):
        Transport(**kwargs, name="scaled")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Transport(**kwargs, name="scaled", allowed_deviations={"gamma(0)=1"})
        get_transport("edm")  # EDM declares its deviations
    with pytest.raises(ValueError, match="allowed_deviations"):
        Transport(**kwargs, allowed_deviations={"gamma(0)=2"})


def test_non_monotone_alpha_warns():
    with pytest.warns(TransportConstraintWarning, match="alpha decreases"):
        Transport(
            alpha=lambda t: torch.sin(math.pi * t) / 2 + t,  # rises above 1 then falls
            gamma=lambda t: 1 - t,
            alpha_hat=torch.ones_like,
            gamma_hat=lambda t: -torch.ones_like(t),
        )


def test_from_data_at_one_matches_builtin_relinear():
    custom = Transport.from_data_at_one(
        alpha=lambda s: 1 - s,
        gamma=lambda s: s,
        alpha_hat=lambda s: -torch.ones_like(s),
        gamma_hat=torch.ones_like,
    )
    builtin = get_transport("relinear")
    t = torch.rand(20, dtype=torch.float64)
    for field in ("alpha", "gamma", "alpha_hat", "gamma_hat"):
        torch.testing.assert_close(getattr(custom, field)(t), getattr(builtin, field)(t))
    torch.testing.assert_close(custom.model_time(t), 1 - t)


def test_network_time_is_a_deprecated_name_of_model_time():
    tr = get_transport("relinear")  # data at s = 1: model_time(t) = 1 - t
    t = torch.tensor([0.0, 0.25, 1.0])
    with pytest.deprecated_call(match="model_time"):
        torch.testing.assert_close(tr.network_time(t), 1 - t)
