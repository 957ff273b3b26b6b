"""Formulas are parsed into a checked expression tree: nothing in them runs as Python."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ucgm_lab.widgets import CustomTransportEditor, coefficient_from_expression
from ucgm_lab.widgets.formula import ALLOWED, MAX_LENGTH

# Formulas of notebook 10, Tab. 2 and the tests: the evaluation must not change for them.
SHIPPED = [
    "t",
    "1 - t",
    "1",
    "-1",
    "sin(pi * t / 2)",
    "cos(pi * t / 2)",
    "-sin(pi * t / 2)",
    "1 - t / 2",
    "t ** 2",
    "2 ** 3",
    "exp(-t) * sqrt(t + 1) / (1 + t ** 2)",
    "log(1 + t) - tanh(t) + sigmoid(t) * abs(t - 0.5) + tan(t / 3) + e",
    "minimum(t, 0.5) + maximum(t, 0.25)",
    "where(t < 0.5, t, 1 - t)",
    "clamp(t, 0.2, 0.8)",
    "1e-3 + -t + +t",
]


def _old_evaluation(expression: str, t: torch.Tensor) -> torch.Tensor:
    """The evaluation before the parser (Python eval with a name table), for trusted strings."""
    names = {
        "pi": math.pi,
        "e": math.e,
        "sin": torch.sin,
        "cos": torch.cos,
        "tan": torch.tan,
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "abs": torch.abs,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "minimum": lambda a, b: torch.minimum(a, torch.as_tensor(b, dtype=t.dtype)),
        "maximum": lambda a, b: torch.maximum(a, torch.as_tensor(b, dtype=t.dtype)),
        "where": torch.where,
        "clamp": torch.clamp,
    }
    value = eval(expression, {"__builtins__": {}}, {**names, "t": t})  # noqa: S307 - fixed strings
    return torch.as_tensor(value, dtype=t.dtype) + torch.zeros_like(t)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("formula", SHIPPED)
def test_shipped_formulas_evaluate_as_before(formula, dtype):
    t = torch.linspace(0, 1, 101, dtype=dtype)
    new = coefficient_from_expression(formula, "alpha")(t)
    assert new.dtype == dtype and new.shape == t.shape
    assert torch.equal(new, _old_evaluation(formula, t))


ATTACKS = [
    "torch.serialization.os.system('touch {marker}')*0+t",
    "torch.hub.os.system('touch {marker}')*0+t",
    "__import__('os').system('touch {marker}')",
    "t.__class__.__mro__[1].__subclasses__()",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "[c for c in ().__class__.__base__.__subclasses__()][0]",
    "open('{marker}', 'w')",
    "exec('import os')",
    "eval('1')",
    "getattr(t, 'numpy')()",
    "sin.__self__",
    "t[0]",
    "'touch {marker}'",
    "f'{{t}}'",
    "sin(input=t)",
    "sin(*[t])",
    "(t := 1)",
    "t if t else 1",
    "t and 1",
    "{{1: t}}",
    "[t]",
    "(t, t)",
    "~t",
    "t // 2",
    "t % 2",
    "t @ t",
    "0 < t < 1",
    "t in t",
    "True + t",
    "None",
    "1j * t",
    "torch",
    "os",
    "sin",
    "9 ** 1000",
    "t ** -500",
    "1e999 * t",
    "exp(t, t)",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_formulas_that_are_not_arithmetic_are_refused_and_run_nothing(
    attack, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    text = attack.format(marker=marker)
    with pytest.raises(ValueError, match="alpha: ") as info:
        coefficient_from_expression(text, "alpha")(torch.rand(3))
    message = str(info.value)
    assert "\n" not in message
    if "which a formula may not use" in message:
        assert ALLOWED in message
    assert not marker.exists() and not list(Path(tmp_path).iterdir())


def test_the_issue_reproduction_no_longer_creates_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for attack in (
        "torch.serialization.os.system('touch marker')*0+t",
        "torch.hub.os.system('touch marker')*0+t",
    ):
        with pytest.raises(ValueError, match=r"attribute \(\.system\)"):
            coefficient_from_expression(attack)(torch.rand(3))
        editor = CustomTransportEditor(alpha=attack)
        assert editor.level == "error" and editor.transport is None
        assert "attribute (.system)" in editor.message
    assert not (tmp_path / "marker").exists()


def test_long_deep_and_huge_formulas_are_refused_quickly():
    with pytest.raises(ValueError, match=f"at most {MAX_LENGTH}"):
        coefficient_from_expression("t + " * 200 + "t")
    t = torch.rand(3)
    assert torch.equal(coefficient_from_expression("(" * 150 + "t" + ")" * 150)(t), t)
    with pytest.raises(ValueError, match="parts|nested too deeply|not a valid formula"):
        coefficient_from_expression("-(" * 120 + "t" + ")" * 120)
    with pytest.raises(ValueError, match="parts"):
        coefficient_from_expression("+".join(["t"] * 150))
    # a constant that overflows while evaluated (not a literal exponent): a ValueError naming it
    with pytest.raises(ValueError, match="overflows or divides by zero"):
        coefficient_from_expression("9 ** 9 ** 9 * t", "gamma")(torch.rand(3))
    with pytest.raises(ValueError, match="must be a string"):
        coefficient_from_expression(3, "gamma")  # type: ignore[arg-type]
