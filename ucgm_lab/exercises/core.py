"""The machinery shared by every exercise: the registry, the check runner, the result.

An exercise is a small function the learner writes in a marked notebook cell. Its check calls
that function on several inputs, compares the answers with an independent computation and,
when one is wrong, raises :class:`ExerciseError` naming the case (transport, t, ...) with the
expected and the received value and a hint.

A cell that still raises ``NotImplementedError`` (the stub) is *unanswered*:

* normally the check reports it and returns (the rest of the notebook still runs);
* in solutions mode (``UCGM_LAB_SOLUTIONS=1``, or ``UCGM_LAB_TEST_MODE=1`` as in CI) the check
  runs the reference solution instead and says so. This is how the notebooks run "with the
  solutions filled in".

An answer that is given is always checked, in every mode.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..runtime import test_mode

__all__ = [
    "SOLUTIONS_ENV",
    "CheckResult",
    "Exercise",
    "ExerciseError",
    "Mismatch",
    "as_tensor",
    "check",
    "compare",
    "get_exercise",
    "list_exercises",
    "register",
    "show_solution",
    "solutions_mode",
]

SOLUTIONS_ENV = "UCGM_LAB_SOLUTIONS"


def solutions_mode() -> bool:
    """True when unanswered exercises fall back to the reference solution.

    Set ``UCGM_LAB_SOLUTIONS=1`` to run the notebooks with the solutions filled in; test mode
    (``UCGM_LAB_TEST_MODE=1``, CI) implies it.
    """
    flag = os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return flag or test_mode()


class Mismatch(Exception):  # noqa: N818 - an internal signal, not an error a user handles
    """Raised by a checker when the learner's answer is wrong; the message says where."""


class ExerciseError(AssertionError):
    """The learner's answer is wrong (or crashed): the message says what, where, and a hint."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of the track.

    Attributes:
        name: Short id used by :func:`check` and :func:`show_solution`.
        title: One line: what to write.
        notebook: The notebook that asks it.
        checker: ``checker(answer) -> int``: raises :class:`Mismatch` when the answer is wrong,
            returns the number of cases checked.
        solution: The reference solution (same signature as the learner's function).
        hint: A hint shown with every failure.
    """

    name: str
    title: str
    notebook: str
    checker: Callable[[Callable[..., Any]], int]
    solution: Callable[..., Any]
    hint: str = field(default="")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a check (shown as one line in a notebook).

    Attributes:
        name: The exercise.
        passed: The checked function (the learner's, or the reference in solutions mode) is right.
        answered: The learner's cell gave an answer (did not raise NotImplementedError).
        used_reference: The reference solution was checked instead (solutions mode).
        cases: Number of cases checked (0 when nothing was checked).
        message: The line shown.
    """

    name: str
    passed: bool
    answered: bool
    used_reference: bool
    cases: int
    message: str

    def __repr__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.passed


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (names are unique)."""
    if exercise.name in _REGISTRY:
        raise ValueError(f"Exercise {exercise.name!r} is registered twice.")
    _REGISTRY[exercise.name] = exercise
    return exercise


def list_exercises() -> list[Exercise]:
    """All exercises, in the order of the notebooks."""
    return sorted(_REGISTRY.values(), key=lambda exercise: exercise.notebook)


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``; a clear error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"No exercise called {name!r}; the exercises are: {', '.join(_REGISTRY)}."
        ) from None


def show_solution(name: str) -> None:
    """Print the reference solution of exercise ``name`` (its source code)."""
    exercise = get_exercise(name)
    print(inspect.getsource(exercise.solution).rstrip())


def _raises_not_implemented(error: BaseException) -> bool:
    return isinstance(error, NotImplementedError)


def check(name: str, answer: Callable[..., Any]) -> CheckResult:
    """Check the learner's ``answer`` to exercise ``name``.

    Args:
        name: The exercise id.
        answer: The learner's function.

    Returns:
        :class:`CheckResult` (its repr is the one-line verdict).

    Raises:
        ExerciseError: The answer is wrong (message: the case, expected versus got, a hint),
            or it raised an exception other than NotImplementedError.
    """
    exercise = get_exercise(name)
    if not callable(answer):
        raise ExerciseError(
            f"Exercise {name!r}: pass your function itself (e.g. check_{name}({name})), "
            f"got a {type(answer).__name__}."
        )
    try:
        cases = exercise.checker(answer)
    except Mismatch as wrong:
        raise ExerciseError(
            f"Exercise {name!r}: {wrong}\nHint: {exercise.hint}\n"
            f"(ucgm_lab.exercises.show_solution({name!r}) prints a reference solution.)"
        ) from None
    except Exception as error:  # noqa: BLE001 - report any crash of the learner's code
        if not _raises_not_implemented(error):
            raise ExerciseError(
                f"Exercise {name!r}: your function raised {type(error).__name__}: {error}\n"
                f"Hint: {exercise.hint}"
            ) from error
    else:
        return CheckResult(
            name, True, True, False, cases, f"Exercise {name!r}: correct ({cases} cases checked)."
        )
    # The learner's cell still raises NotImplementedError.
    if not solutions_mode():
        return CheckResult(
            name,
            False,
            False,
            False,
            0,
            f"Exercise {name!r}: not answered yet. Replace `raise NotImplementedError` in the "
            f"cell above by your answer and run it again. Hint: {exercise.hint}",
        )
    cases = exercise.checker(exercise.solution)
    return CheckResult(
        name,
        True,
        False,
        True,
        cases,
        f"Exercise {name!r}: no answer in the cell; solutions mode is on ({SOLUTIONS_ENV}=1, as "
        f"in CI), so the reference solution was checked instead: correct ({cases} cases). "
        f"ucgm_lab.exercises.show_solution({name!r}) prints it.",
    )


# ---------------------------------------------------------------------- helpers for checkers
def _short(value: Any) -> str:
    if torch.is_tensor(value):
        if value.ndim == 0:
            return f"{float(value):.5g}"
        flat = value.detach().flatten()
        shown = ", ".join(f"{float(v):.5g}" for v in flat[:4])
        more = ", ..." if flat.numel() > 4 else ""
        return f"[{shown}{more}] (shape {tuple(value.shape)})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def as_tensor(value: Any, where: str) -> Tensor:
    """Convert an answer to a float64 tensor, or raise :class:`Mismatch` saying what came back."""
    if torch.is_tensor(value):
        return value.detach().to(torch.float64)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    raise Mismatch(f"{where}: expected a number or a tensor, got {type(value).__name__}.")


def compare(got: Any, expected: Tensor | float, where: str, atol: float = 1e-8) -> None:
    """Raise :class:`Mismatch` unless ``got`` equals ``expected`` (shape and values, to ``atol``).

    Args:
        got: The learner's value.
        expected: The correct value.
        where: The case, e.g. "transport Linear, t = 0.3, x_hat".
        atol: Absolute tolerance (plus the same relative tolerance).
    """
    got_t = as_tensor(got, where)
    exp_t = as_tensor(expected, where)
    if got_t.shape != exp_t.shape:
        raise Mismatch(
            f"{where}: expected shape {tuple(exp_t.shape)}, got shape {tuple(got_t.shape)} "
            f"(expected {_short(exp_t)}, got {_short(got_t)})."
        )
    if not torch.isfinite(got_t).all():
        raise Mismatch(f"{where}: your answer has non-finite entries: {_short(got_t)}.")
    if not torch.allclose(got_t, exp_t, rtol=atol, atol=atol):
        err = (got_t - exp_t).abs()
        k = int(err.flatten().argmax())
        raise Mismatch(
            f"{where}: expected {_short(exp_t)}, got {_short(got_t)} "
            f"(largest difference {float(err.flatten()[k]):.3g} at entry {k})."
        )
