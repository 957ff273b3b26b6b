"""The search package: one job per module, every name still importable from ``ucgm_lab.search``.

``ucgm_lab.search`` was one module (1460 lines); these are the names it defined (public and private:
tests, benchmarks, notebooks and the zoo import some of the private ones), and the module of
the package that each now lives in.
"""

import importlib
import inspect

import pytest

import ucgm_lab.search as search

PUBLIC_NAMES = {
    "BudgetResult",
    "Choice",
    "SamplerSettings",
    "SearchResult",
    "SearchSpace",
    "SlicedW2",
    "count_nfe",
    "default_metric",
    "robust_choice",
    "search_sampler",
}
HOMES = {
    "settings": {"Rho", "SamplerSettings", "count_nfe"},
    "space": {"SearchSpace", "_is_number", "_is_unit"},
    "results": {"BudgetResult", "SearchResult"},
    "metrics": {"Metric", "SlicedW2", "default_metric"},
    "runner": {"_BudgetSpentError", "_Runner"},
    "budget": {
        "_PATTERN_ROUNDS",
        "_fit",
        "_grid_points",
        "_move_point",
        "_preset_schedules",
        "_proper",
        "_readable_points",
        "_search_budget",
    },
    "choice": {"Choice", "_finalists", "robust_choice"},
    "api": {"_check_budgets", "search_sampler"},
}
PATCH_POINTS = {"_clock", "sample", "robust_choice"}
"""Attributes of the package that tests replace (a fake clock, spies): the runner and
``search_sampler`` look them up there at each call."""


def test_every_public_name_is_served_by_the_package():
    assert set(search.__all__) == PUBLIC_NAMES
    namespace: dict = {}
    exec("from ucgm_lab.search import *", namespace)  # noqa: S102 - our own package
    assert PUBLIC_NAMES <= set(namespace)


def test_every_name_of_the_old_module_imports_from_the_old_path():
    names = set().union(*HOMES.values()) | PATCH_POINTS
    namespace: dict = {}
    exec(f"from ucgm_lab.search import {', '.join(sorted(names))}", namespace)  # noqa: S102
    assert names <= set(namespace)


@pytest.mark.parametrize("module", sorted(HOMES))
def test_each_name_lives_in_one_module_and_the_package_reexports_that_object(module):
    sub = importlib.import_module(f"ucgm_lab.search.{module}")
    assert sub.__doc__, f"ucgm_lab.search.{module} needs a module docstring"
    for name in HOMES[module]:
        assert getattr(search, name) is getattr(sub, name), name
        value = getattr(sub, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == sub.__name__, f"{name} is defined in {value.__module__}"


def test_the_top_level_package_reexports_the_same_objects():
    import ucgm_lab

    for name in ("SamplerSettings", "SearchResult", "SearchSpace", "search_sampler"):
        assert getattr(ucgm_lab, name) is getattr(search, name)


def test_the_patch_points_are_looked_up_in_the_package_at_each_call(monkeypatch):
    """Replacing ``ucgm_lab.search._clock`` reaches the runner and ``search_sampler``."""
    import torch

    from ucgm_lab.search.runner import _package

    assert _package() is search
    ticks = []

    def clock():
        ticks.append(1)
        return float(len(ticks))

    monkeypatch.setattr(search, "_clock", clock)
    model = lambda x, t, y=None: torch.zeros_like(x)  # noqa: E731 - x^ = 0 for Linear
    reference = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    result = search.search_sampler(
        model, "linear", reference, nfe=[1], metric=lambda s, r: float(s.pow(2).mean()),
        space=search.SearchSpace.fast(0.0), validation_streams=1, max_trials=2, progress=False,
    )  # fmt: skip
    assert len(ticks) > 4  # the start, the budget's start and end, and every scored run
    assert result.seconds == len(ticks) - 1  # the last tick ends the search
