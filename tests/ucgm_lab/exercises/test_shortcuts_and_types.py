"""Per exercise: the library's own implementation is refused, and a correct answer in another
form (float32, NumPy, SymPy, a list) is accepted, at its own precision.

Every shortcut below computes the right values: without the guard of ucgm_lab.exercises.guard the
check would accept it.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp
import torch

import ucgm_lab.exercises as ex
from ucgm_lab import KumaraswamySchedule, UCGMObjective, get_transport
from ucgm_lab.exercises import solutions
from ucgm_lab.sampler import auto_stochastic_ratio, extrapolate, reconstruct
from ucgm_lab.transports import Decomposition, Transport


def _pf_shortcut(F, x_t, a, g, ah, gh):
    from ucgm_lab.symbolic import derive_prediction_functions

    pf = derive_prediction_functions()
    args = sp.symbols("F x_t alpha gamma alphahat gammahat", real=True)
    fx, fz = (sp.lambdify(args, e) for e in (pf.x_hat, pf.z_hat))
    return fx(F, x_t, a, g, ah, gh), fz(F, x_t, a, g, ah, gh)


def _solve_eq2_shortcut(x_t, F, x, z, a, g, ah, gh):
    from ucgm_lab.symbolic import derive_prediction_functions

    pf = derive_prediction_functions()
    return pf.x_hat, pf.z_hat


def _factor_shortcut(alpha, D, t):
    from ucgm_lab.objective import target_from_difference

    coeff = SimpleNamespace(alpha=alpha, D=D)
    return target_from_difference(torch.zeros_like(alpha), -torch.ones_like(alpha), coeff, t)


def _alg1_shortcut(model, tr, x, z, t, lam, eps=0.005, clip=1.0):
    return UCGMObjective(tr, lam, clip=clip)(model, x, t=t, noise=z).target


def _constraints_shortcut(alpha, gamma, alpha_hat, gamma_hat, grid, tol=1e-6):
    report = Transport(alpha, gamma, alpha_hat, gamma_hat, validate=False).constraint_report()
    return {name for name, problem in report.items() if problem}


def _epsilon_shortcut(eps, x_t, t):
    lin = get_transport("linear")
    return lin.target((x_t - t * eps) / (1 - t), eps, t)


def _step_shortcut(x_hat, z_hat, px, pz, kappa, a, g):
    est = Decomposition(extrapolate(x_hat, px, kappa), extrapolate(z_hat, pz, kappa))
    return a * est.z_hat + g * est.x_hat


def _stochastic_shortcut(x_hat, z_hat, fresh, rho, a, g):
    lin = get_transport("linear")
    t_next = torch.tensor(a, dtype=torch.float64)  # Linear: alpha(t) = t
    out = reconstruct(lin, Decomposition(x_hat, z_hat), t_next, rho, fresh)
    return out - t_next * 0 + 0 * g


def _rho_shortcut(a_now, a_next, t_now, t_next):
    tr = get_transport("linear")
    return auto_stochastic_ratio(tr, torch.tensor(t_now), torch.tensor(t_next))


def _grid_shortcut(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
    return KumaraswamySchedule(a, b, c, gap_noise, gap_data).time_points(steps)


def _beta_shortcut(theta1, theta2):
    from ucgm_lab.symbolic import beta_mode
    from ucgm_lab.symbolic.schedules import theta1 as t1
    from ucgm_lab.symbolic.schedules import theta2 as t2

    return beta_mode().mode.subs({t1: theta1, t2: theta2})


def _optimum_shortcut(which):
    def answer(mu, t, x_t):
        from ucgm_lab.symbolic import gaussian_optima

        o = gaussian_optima()
        expr = getattr(o, which)
        names = {s.name: s for s in expr.free_symbols}
        f = sp.lambdify([names["mu"], names["varphi"], names["x_t"]], expr)
        return f(mu, math.pi * t / 2, x_t)

    return answer


def _meanflow_shortcut(u, z, r, t, v):
    from ucgm_lab.flow_maps.objective import meanflow_target

    class _Net(torch.nn.Module):  # the library function wants a module called as net(z, t, r=r)
        def forward(self, z_in, t_in, y=None, r=None):
            return u(z_in, t_in if r is None else r, t_in)

    return meanflow_target(_Net(), z, r, t, v)[2]


SHORTCUTS = {
    "meanflow_target": (_meanflow_shortcut, "meanflow_target"),
    "prediction_functions": (_pf_shortcut, "derive_prediction_functions"),
    "solve_eq2": (_solve_eq2_shortcut, "derive_prediction_functions"),
    "flow_matching_target": (
        lambda ah, gh, x, z: get_transport("linear").target(x, z, 0.5) * 0 + ah * z + gh * x,
        "Transport.target",
    ),
    "target_factor": (_factor_shortcut, "target_from_difference"),
    "alg1_target": (_alg1_shortcut, "UCGMObjective.__call__"),
    "constraint_violations": (_constraints_shortcut, "Transport.constraint_report"),
    "epsilon_to_velocity": (_epsilon_shortcut, "Transport.target"),
    "ucgm_s_step": (_step_shortcut, "ucgm_lab.sampler.extrapolate"),
    "stochastic_step": (_stochastic_shortcut, "ucgm_lab.sampler.reconstruct"),
    "euler_maruyama_rho": (_rho_shortcut, "auto_stochastic_ratio"),
    "kumaraswamy_grid": (_grid_shortcut, "KumaraswamySchedule.time_points"),
    "beta_mode": (_beta_shortcut, "ucgm_lab.symbolic.schedules.beta_mode"),
    "flow_matching_optimum": (_optimum_shortcut("flow_matching"), "gaussian_optima"),
    "consistency_optimum": (_optimum_shortcut("consistency"), "gaussian_optima"),
}


def test_every_function_exercise_has_a_shortcut_test():
    function_exercises = {e.name for e in ex.list_exercises() if e.shortcuts}
    assert function_exercises == set(SHORTCUTS)


@pytest.mark.parametrize("name", sorted(SHORTCUTS))
def test_the_library_shortcut_is_refused_and_the_message_says_why(name):
    answer, target = SHORTCUTS[name]
    with pytest.raises(ex.ExerciseError) as info:
        ex.check(name, answer)
    message = str(info.value)
    assert "calls the library's" in message and target in message, message
    assert "cannot tell whether you know it" in message


def test_a_shortcut_cannot_be_hidden_by_catching_the_exception():
    def sly(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
        try:
            return KumaraswamySchedule(a, b, c, gap_noise, gap_data).time_points(steps)
        except Exception:  # noqa: BLE001
            return solutions.kumaraswamy_grid(steps, a, b, c, gap_noise, gap_data)

    with pytest.raises(ex.ExerciseError, match="KumaraswamySchedule.time_points"):
        ex.check("kumaraswamy_grid", sly)


def test_the_guard_is_off_after_the_check():
    import sys

    before = sys.getprofile()
    ex.check("kumaraswamy_grid", solutions.kumaraswamy_grid)
    assert sys.getprofile() is before
    # the library still works outside the answer
    assert KumaraswamySchedule(1.0, 1.0, 1.0).time_points(3).shape == (4,)


def _f32(fn):
    def answer(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(torch.as_tensor(o).float() for o in out)
        return torch.as_tensor(out).float()

    return answer


def _numpy(fn):
    def answer(*args, **kwargs):
        return np.asarray(torch.as_tensor(fn(*args, **kwargs)).detach().numpy())

    return answer


OTHER_FORMS = {
    "prediction_functions": (_f32(solutions.prediction_functions), "float32"),
    "flow_matching_target": (_numpy(solutions.flow_matching_target), None),
    "target_factor": (_f32(solutions.target_factor), "float32"),
    "alg1_target": (_f32(solutions.alg1_target), "float32"),
    "epsilon_to_velocity": (_numpy(solutions.epsilon_to_velocity), None),
    "ucgm_s_step": (_f32(solutions.ucgm_s_step), "float32"),
    "stochastic_step": (_numpy(solutions.stochastic_step), None),
    "euler_maruyama_rho": (lambda *a: np.float32(solutions.euler_maruyama_rho(*a)), "float32"),
    "kumaraswamy_grid": (_f32(solutions.kumaraswamy_grid), "float32"),
    "beta_mode": (lambda a, b: (sp.Float(a) - 1) / (sp.Float(a) + b - 2), None),
    "flow_matching_optimum": (_f32(solutions.flow_matching_optimum), "float32"),
    "consistency_optimum": (_numpy(solutions.consistency_optimum), None),
    "constraint_violations": (
        lambda *a, **k: sorted(solutions.constraint_violations(*a, **k)),
        None,
    ),
    "solve_eq2": (lambda *a: tuple(sp.factor(e) for e in solutions.solve_eq2(*a)), None),
}


@pytest.mark.parametrize("name", sorted(OTHER_FORMS))
def test_a_correct_answer_in_another_form_is_accepted(name, accepts):
    answer, precision = OTHER_FORMS[name]
    result = accepts(name, answer)
    if precision:
        assert f"correct up to {precision}" in repr(result)
    else:
        assert "correct (" in repr(result)


def test_float64_answers_are_not_called_float32(accepts):
    assert "correct (" in repr(accepts("kumaraswamy_grid", solutions.kumaraswamy_grid))


def test_a_sympy_rational_and_a_wrong_float32_answer():
    assert ex.check(
        "beta_mode", lambda a, b: sp.Rational(1, 2) if a == b else (a - 1) / (a + b - 2)
    )
    wrong32 = _f32(lambda *a: solutions.kumaraswamy_grid(*a) * (1 + 1e-3))
    with pytest.raises(ex.ExerciseError, match="largest difference"):
        ex.check("kumaraswamy_grid", wrong32)


def test_a_sympy_expression_with_symbols_is_named():
    theta = sp.Symbol("theta1")
    with pytest.raises(ex.ExerciseError, match="still contains the symbol"):
        ex.check("beta_mode", lambda a, b: (theta - 1) / (a + b - 2))


def test_missing_d_and_the_sign_of_d_get_different_messages():
    def no_division(F, x_t, a, g, ah, gh):
        return a * F - ah * x_t, gh * x_t - g * F

    def sign_flipped(F, x_t, a, g, ah, gh):
        D = ah * g - a * gh
        return (a * F - ah * x_t) / D, (gh * x_t - g * F) / D

    def swapped(F, x_t, a, g, ah, gh):
        return solutions.prediction_functions(F, x_t, a, g, ah, gh)[::-1]

    messages = []
    for wrong, words in (
        (no_division, "forgot to divide by the determinant"),
        (sign_flipped, "wrong sign"),
        (swapped, "the other estimate"),
    ):
        with pytest.raises(ex.ExerciseError) as info:
            ex.check("prediction_functions", wrong)
        assert words in str(info.value)
        messages.append(str(info.value).split("Hint:")[0])
    assert len(set(messages)) == 3


def test_every_shortcut_target_names_a_function_where_the_guard_looks():
    """Every ``"module:qualname"`` target is a function defined in that module under that name.

    The guard matches the running frame's module (its globals' ``__name__``) and its code's
    qualified name, so a function moved to another module (a split module, a package) while its
    target still names the old one would no longer be refused: that fails here.
    """
    import importlib
    import inspect
    import sys

    for e in ex.list_exercises():
        for target in e.shortcuts:
            module_name, _, qualname = target.partition(":")
            obj = importlib.import_module(module_name)
            for part in qualname.split("."):
                assert hasattr(obj, part), f"{e.name}: {target}: no {part!r} there"
                obj = getattr(obj, part)
            fn = inspect.unwrap(getattr(obj, "__func__", obj))
            where = fn.__globals__["__name__"]
            assert where == module_name, f"{e.name}: {target} runs in module {where}"
            code = fn.__code__
            name = code.co_qualname if sys.version_info >= (3, 11) else code.co_name
            assert name == (qualname if sys.version_info >= (3, 11) else qualname.split(".")[-1])
