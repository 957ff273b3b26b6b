"""UCGM-T in modules with one job: every name still importable from ``ucgm_lab.objective``.

``ucgm_lab/objective.py`` was one module; these are the names it defined, the module each now
lives in, and the methods of ``UCGMObjective`` (some now from its mixins).
"""

import importlib
import inspect

import pytest

import ucgm_lab.objective as objective

PUBLIC_NAMES = {
    "ENHANCEMENT_RATIO_MAX",
    "LAMBDA0_RECHECK_CALL",
    "NonFiniteError",
    "ObjectiveOutput",
    "UCGMObjective",
    "enhance",
    "pseudo_huber_distance",
    "squared_l2_distance",
    "target_from_difference",
}
HOMES = {
    "objective": {
        "ENHANCEMENT_RATIO_MAX",
        "LAMBDA0_RECHECK_CALL",
        "ObjectiveOutput",
        "UCGMObjective",
    },
    "objective_terms": {
        "HALF_PI",
        "_target",
        "enhance",
        "pseudo_huber_distance",
        "squared_l2_distance",
        "target_from_difference",
    },
    "objective_checks": {"NonFiniteError", "_check_number"},
}
METHODS = {
    "__init__": "objective",
    "__call__": "objective",
    "settings": "objective",
    "uses_ema_teacher": "objective_teachers",
    "uses_frozen_teacher": "objective_teachers",
    "state_dict": "objective_teachers",
    "load_state_dict": "objective_teachers",
    "_no_grad_context": "objective_teachers",
    "_forward": "objective_teachers",
    "_model_dtype": "objective_teachers",
    "_ensure_teachers": "objective_teachers",
    "_difference_net": "objective_teachers",
    "_drop_labels": "objective_targets",
    "_enhanced_pair": "objective_targets",
    "_finite_difference": "objective_targets",
    "_check_time_sensitivity": "objective_checks",
    "_raise_non_finite": "objective_checks",
    "_check_times": "objective_checks",
}


def test_every_public_name_is_served_by_the_old_path():
    assert set(objective.__all__) == PUBLIC_NAMES
    names = set().union(*HOMES.values())
    namespace: dict = {}
    exec(f"from ucgm_lab.objective import {', '.join(sorted(names))}", namespace)  # noqa: S102
    assert names <= set(namespace)


@pytest.mark.parametrize("module", sorted(HOMES))
def test_each_name_lives_in_one_module_and_the_old_path_serves_that_object(module):
    sub = importlib.import_module(f"ucgm_lab.{module}")
    assert sub.__doc__, f"ucgm_lab.{module} needs a module docstring"
    for name in HOMES[module]:
        value = getattr(sub, name)
        assert getattr(objective, name) is value, name
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == sub.__name__, f"{name} is defined in {value.__module__}"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_objective_has_every_method_it_had(method):
    """Each method of the old class, defined once, in the module that has its job."""
    cls = objective.UCGMObjective
    owner = next(k for k in cls.__mro__ if method in vars(k))
    assert owner.__module__ == f"ucgm_lab.{METHODS[method]}", (method, owner)
    for other in cls.__mro__:
        if other is not owner and other is not object:
            assert method not in vars(other), f"{method} is defined twice ({other.__name__})"
