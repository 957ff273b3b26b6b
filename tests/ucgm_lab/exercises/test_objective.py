import math

import sympy as sp
import torch

from ucgm_lab.exercises import solutions


def test_prediction_functions(accepts, rejects):
    accepts("prediction_functions", solutions.prediction_functions)

    def sign_of_d_flipped(F, x_t, a, g, ah, gh):
        D = ah * g - a * gh
        return (a * F - ah * x_t) / D, (gh * x_t - g * F) / D

    rejects("prediction_functions", sign_of_d_flipped, "transport Linear", "t = 0.05", "x_hat")

    def alpha_gamma_swapped(F, x_t, a, g, ah, gh):
        D = a * gh - ah * g
        return (g * F - gh * x_t) / D, (ah * x_t - a * F) / D

    rejects("prediction_functions", alpha_gamma_swapped, "x_hat = f^x", "expected")
    rejects("prediction_functions", lambda *args: args[0], "pair (x_hat, z_hat)")


def test_solve_eq2(accepts, rejects):
    accepts("solve_eq2", solutions.solve_eq2)

    def swapped(x_t, F, x, z, a, g, ah, gh):
        sol = sp.solve([sp.Eq(x_t, a * z + g * x), sp.Eq(F, ah * z + gh * x)], [x, z], dict=True)[0]
        return sol[z], sol[x]

    rejects("solve_eq2", swapped, "the x solution", "expected")

    def one_equation_only(x_t, F, x, z, a, g, ah, gh):
        return sp.solve(sp.Eq(x_t, a * z + g * x), x)[0], sp.solve(sp.Eq(F, ah * z + gh * x), z)[0]

    rejects("solve_eq2", one_equation_only, "still contains x or z")


def test_flow_matching_target(accepts, rejects):
    accepts("flow_matching_target", solutions.flow_matching_target)
    rejects(
        "flow_matching_target", lambda ah, gh, x, z: ah * x + gh * z, "transport Linear", "t = 0.05"
    )
    rejects("flow_matching_target", lambda ah, gh, x, z: -(ah * z + gh * x), "expected", "got")


def test_target_factor(accepts, rejects):
    accepts("target_factor", solutions.target_factor)
    rejects("target_factor", lambda a, D, t: 4 * a / (D * torch.sin(t)), "transport Linear")
    rejects("target_factor", lambda a, D, t: -4 * a / (D * torch.sin(math.pi * t / 2)), "expected")
    message = rejects("target_factor", lambda a, D, t: a / (D * torch.sin(math.pi * t / 2)), "got")
    assert "-4" not in message  # the formula is hint 3, not part of the first answer


def _alg1(
    model,
    tr,
    x,
    z,
    t,
    lam,
    eps=0.005,
    clip=1.0,
    *,
    no_grad=True,
    central=True,
    sine=None,
    do_clip=True,
):
    sine = sine or (lambda s: torch.sin(math.pi * s / 2))
    tb = t[:, None]
    c = tr.coefficients(tb)
    x_t = c.alpha * z + c.gamma * x

    def body():
        F = model(x_t, t)
        if lam < 1:
            r = lam * t
            cr = tr.coefficients(r[:, None])
            x_r = cr.alpha * z + cr.gamma * x
            d = (tr.predict_x(F, x_t, tb) - tr.predict_x(model(x_r, r), x_r, r[:, None])) / (
                tb - r[:, None]
            )
        else:
            lo = t - eps if central else t
            hi = t + eps
            fs = []
            for s in (hi, lo):
                cs = tr.coefficients(s[:, None])
                xs = cs.alpha * z + cs.gamma * x
                fs.append(tr.predict_x(model(xs, s), xs, s[:, None]))
            d = (fs[0] - fs[1]) / (hi - lo)[:, None]
        if do_clip:
            d = d.clamp(-clip, clip)
        return F - 4 * c.alpha / (c.D * sine(tb)) * d

    if no_grad:
        with torch.no_grad():
            return body()
    return body()


def test_alg1_target(accepts, rejects):
    accepts("alg1_target", solutions.alg1_target)
    accepts("alg1_target", _alg1)  # the test's own independent version agrees
    rejects(
        "alg1_target",
        lambda *a, **k: _alg1(*a, **k, no_grad=False),
        "carries a gradient",
        "transport Linear",
    )
    rejects(
        "alg1_target", lambda *a, **k: _alg1(*a, **k, do_clip=False), "transport", "Wrong at t ="
    )
    rejects(
        "alg1_target", lambda *a, **k: _alg1(*a, **k, central=False), "lambda = 1.0", "Wrong at t ="
    )
    rejects(
        "alg1_target",
        lambda *a, **k: _alg1(*a, **k, sine=torch.sin),
        "transport Linear",
        "lambda = 0.5",
    )
