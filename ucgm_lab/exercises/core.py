"""The machinery shared by every exercise: the registry, the check runner, hints, the result.

An exercise is a small function the learner writes in a marked notebook cell (``my_<name>``, so
that it never shadows a library name). Its check calls that function on several inputs, compares
the answers with an independent computation and, when one is wrong, raises
:class:`ExerciseError` naming the case (transport, t, ...) with the expected and the received
value and the first hint.

* **No shortcut.** While the answer runs, the library functions that compute the same thing are
  watched (:mod:`.guard`); an answer that calls one is refused and told why.
* **Hints in tiers.** ``hint(name, 1)`` gives the idea, ``hint(name, 2)`` where to start (which
  equation), ``hint(name, 3)`` the formula, ``show_solution(name)`` the reference code. The
  "not answered yet" line shows none of them.
* **Tolerant.** Tensors, NumPy and SymPy numbers are accepted; a float32 answer is judged at
  float32 precision and the verdict says so (:mod:`.values`).

A cell that still raises ``NotImplementedError`` (the stub) is *unanswered*:

* normally the check reports it and returns (the rest of the notebook still runs);
* in solutions mode (``UCGM_LAB_SOLUTIONS=1``, or ``UCGM_LAB_TEST_MODE=1`` as in CI) the check
  runs the reference solution instead and says so. This is how the notebooks run "with the
  solutions filled in". :func:`answer` then hands the reference to the cells that build on it.

An answer that is given is always checked, in every mode.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..runtime import test_mode
from . import tracker as _progress
from .guard import ShortcutUsed, guarded
from .values import Mismatch, as_tensor, compare, precision_seen, tracking_precision

__all__ = [
    "SOLUTIONS_ENV",
    "CheckResult",
    "Exercise",
    "ExerciseError",
    "Mismatch",
    "answer",
    "as_tensor",
    "check",
    "compare",
    "get_exercise",
    "hint",
    "list_exercises",
    "progress",
    "register",
    "show_solution",
    "solutions_mode",
]

SOLUTIONS_ENV = "UCGM_LAB_SOLUTIONS"
HINT_LEVELS = ("the idea", "where to start", "the formula")


def solutions_mode() -> bool:
    """True when unanswered exercises fall back to the reference solution.

    Set ``UCGM_LAB_SOLUTIONS=1`` to run the notebooks with the solutions filled in; test mode
    (``UCGM_LAB_TEST_MODE=1``, CI) implies it.
    """
    flag = os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return flag or test_mode()


class ExerciseError(AssertionError):
    """The learner's answer is wrong (or crashed): the message says what, where, and a hint."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of the track.

    Attributes:
        name: Short id used by :func:`check`, :func:`hint` and :func:`show_solution`.
        title: One line: what to write.
        notebook: The notebook that asks it.
        checker: ``checker(answer) -> int``: raises :class:`Mismatch` when the answer is wrong,
            returns the number of cases checked.
        solution: The reference solution (same signature as the learner's function).
        hints: Three tiers: the idea, where to start (which equation), the formula.
        shortcuts: ``"module:qualname"`` of the library functions that compute the answer; an
            answer that calls one is refused.
    """

    name: str
    title: str
    notebook: str
    checker: Callable[[Callable[..., Any]], int]
    solution: Callable[..., Any]
    hints: tuple[str, str, str] = field(default=("", "", ""))
    shortcuts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.hints) != 3 or not all(self.hints):
            raise ValueError(f"Exercise {self.name!r} needs three non-empty hints.")

    @property
    def hint(self) -> str:
        """The first hint (the idea), shown with every wrong answer."""
        return self.hints[0]


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
        function: The function that passed (the learner's or the reference), else None.
    """

    name: str
    passed: bool
    answered: bool
    used_reference: bool
    cases: int
    message: str
    function: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

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
    """All exercises, in the order of the notebooks (then of registration)."""
    order = {name: i for i, name in enumerate(_REGISTRY)}
    return sorted(_REGISTRY.values(), key=lambda e: (e.notebook, order[e.name]))


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``; a clear error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"No exercise called {name!r}; the exercises are: {', '.join(_REGISTRY)}."
        ) from None


def _item(name: str) -> Any:
    """An exercise or a predict-then-check item (both have ``hints``)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    from .predictions import _PREDICTIONS

    if name in _PREDICTIONS:
        return _PREDICTIONS[name]
    return get_exercise(name)  # the KeyError listing the names


def hint(name: str, level: int = 1) -> None:
    """Print hint ``level`` of exercise ``name``: 1 the idea, 2 where to start, 3 the formula."""
    exercise = _item(name)
    if level not in (1, 2, 3):
        raise ValueError(f"hint level must be 1, 2 or 3 ({', '.join(HINT_LEVELS)}), got {level!r}.")
    _progress.record(name, _progress.HINTED)
    more = (
        f" (ex.hint({name!r}, {level + 1}) for {HINT_LEVELS[level]})"
        if level < 3
        else f" (ex.show_solution({name!r}) prints a reference solution)"
    )
    print(
        f"Hint {level}/3 for {name!r}, {HINT_LEVELS[level - 1]}: {exercise.hints[level - 1]}{more}"
    )


def show_solution(name: str) -> None:
    """Print the reference solution of exercise ``name`` (its source code)."""
    exercise = get_exercise(name)
    print(inspect.getsource(exercise.solution).rstrip())


def progress() -> _progress.Progress:
    """Every exercise with its state (done, tried, hints read, not yet) and the next one to do."""
    from .predictions import list_predictions

    states = _progress.load_states()
    items = sorted(
        [*list_exercises(), *list_predictions()], key=lambda e: e.notebook
    )  # stable: registration order within a notebook
    return _progress.Progress(
        tuple((e.notebook, e.name, e.title, states.get(e.name, _progress.NOT_YET)) for e in items)
    )


def _shortcut_message(name: str, target: str) -> str:
    return (
        f"Exercise {name!r}: your function calls the library's {target}, which computes this "
        "very answer, so the check cannot tell whether you know it. Write it yourself from the "
        f"inputs (ex.hint({name!r}, 1) gives the idea)."
    )


def check(name: str, answer: Callable[..., Any]) -> CheckResult:
    """Check the learner's ``answer`` to exercise ``name``.

    Args:
        name: The exercise id.
        answer: The learner's function.

    Returns:
        :class:`CheckResult` (its repr is the one-line verdict).

    Raises:
        ExerciseError: The answer is wrong (message: the case, expected versus got, the first
            hint), calls the library's implementation of the same thing, or raised an
            exception other than NotImplementedError.
    """
    exercise = get_exercise(name)
    if not callable(answer):
        raise ExerciseError(
            f"Exercise {name!r}: pass your function itself (e.g. check_{name}(my_{name})), "
            f"got a {type(answer).__name__}."
        )
    more = f"(ex.hint({name!r}, 2) says where to start, ex.hint({name!r}, 3) gives the formula.)"
    try:
        with tracking_precision() as dtypes:
            cases = exercise.checker(guarded(answer, exercise.shortcuts))
    except ShortcutUsed as used:
        _progress.record(name, _progress.TRIED)
        raise ExerciseError(_shortcut_message(name, used.target)) from None
    except Mismatch as wrong:
        _progress.record(name, _progress.TRIED)
        raise ExerciseError(f"Exercise {name!r}: {wrong}\nHint: {exercise.hint}\n{more}") from None
    except Exception as error:  # noqa: BLE001 - report any crash of the learner's code
        if not isinstance(error, NotImplementedError):
            _progress.record(name, _progress.TRIED)
            raise ExerciseError(
                f"Exercise {name!r}: your function raised {type(error).__name__}: {error}\n"
                f"Hint: {exercise.hint}\n{more}"
            ) from error
    else:
        _progress.record(name, _progress.DONE)
        low = precision_seen(dtypes)
        verdict = f"correct up to {str(low).replace('torch.', '')}" if low else "correct"
        return CheckResult(
            name,
            True,
            True,
            False,
            cases,
            f"Exercise {name!r}: {verdict} ({cases} cases checked).",
            answer,
        )
    # The learner's cell still raises NotImplementedError.
    if not solutions_mode():
        _progress.record(name, _progress.NOT_YET)
        return CheckResult(
            name,
            False,
            False,
            False,
            0,
            f"Exercise {name!r}: not answered yet. Replace `raise NotImplementedError` in "
            f"my_{name} above by your answer and run the cell again. Stuck? ex.hint({name!r}, 1) "
            "gives the idea, then levels 2 and 3.",
        )
    cases = exercise.checker(exercise.solution)
    _progress.record(name, _progress.REFERENCE)
    return CheckResult(
        name,
        True,
        False,
        True,
        cases,
        f"Exercise {name!r}: no answer in the cell; solutions mode is on ({SOLUTIONS_ENV}=1, as "
        f"in CI), so the reference solution was checked instead: correct ({cases} cases). "
        f"ucgm_lab.exercises.show_solution({name!r}) prints it.",
        exercise.solution,
    )


def answer(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The function later cells build on: the learner's answer once its check passes.

    In solutions mode an unanswered stub is replaced by the reference solution, so the notebook
    still runs end to end.

    Raises:
        ExerciseError: The answer is wrong, or not given and solutions mode is off.
    """
    result = check(name, function)
    if result.function is None:
        exercise = get_exercise(name)
        raise ExerciseError(
            f"Exercise {name!r} ({exercise.notebook}) is not answered yet, and the cells below "
            f"run your my_{name}: answer it first (or set {SOLUTIONS_ENV}=1 to use the reference)."
        )
    return result.function
