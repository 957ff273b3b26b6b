"""Predict-then-check items: the learner commits to a guess, the notebook runs, the run judges.

In an explorer notebook the learner first writes a guess (``my_guess = ...``) and records it with
``predict(name, my_guess)``; the cells below run the experiment; ``check_prediction(name,
outcome)`` then compares the guess with the notebook's own results (never a stored number) and
explains what happened. Wrong guesses get a message that names the guess and the measured
values.

No shortcut: a guess recorded after the result was revealed (a learner who changes the guess
once the check has shown the answer) is marked "predicted after seeing the result" in the
verdict and in :func:`~ucgm_lab.exercises.progress`.

In solutions mode (CI) an empty guess (None) is not an error: the check reports the run's
answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import tracker
from .core import ExerciseError, solutions_mode

__all__ = ["Prediction", "check_prediction", "list_predictions", "predict", "register_prediction"]


@dataclass(frozen=True)
class Prediction:
    """One predict-then-check item.

    Attributes:
        name: Short id.
        title: The question, one line.
        notebook: The notebook that asks it.
        choices: The allowed guesses.
        truth: ``truth(outcome) -> choice``: the right answer according to the run.
        explain: ``explain(outcome) -> str``: what the run shows (the measured values).
        hints: Three tiers: the idea, where to look, the reasoning.
        wrong: Per wrong guess, a sentence on the reasoning that leads to it (optional).
    """

    name: str
    title: str
    notebook: str
    choices: tuple[Any, ...]
    truth: Callable[[Any], Any]
    explain: Callable[[Any], str]
    hints: tuple[str, str, str]
    wrong: dict[Any, str] = field(default_factory=dict)

    @property
    def hint(self) -> str:
        """The first hint (the idea)."""
        return self.hints[0]


class Verdict(str):
    """A line of text that a notebook shows without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_PREDICTIONS: dict[str, Prediction] = {}
_GUESSES: dict[str, tuple[Any, bool]] = {}  # name -> (guess, made after the reveal)
_REVEALED: set[str] = set()


def register_prediction(item: Prediction) -> Prediction:
    """Add a prediction item (names are unique)."""
    if item.name in _PREDICTIONS:
        raise ValueError(f"Prediction {item.name!r} is registered twice.")
    if len(item.hints) != 3 or not all(item.hints):
        raise ValueError(f"Prediction {item.name!r} needs three non-empty hints.")
    _PREDICTIONS[item.name] = item
    return item


def list_predictions() -> list[Prediction]:
    """All predict-then-check items, in the order of the notebooks."""
    order = {name: i for i, name in enumerate(_PREDICTIONS)}
    return sorted(_PREDICTIONS.values(), key=lambda p: (p.notebook, order[p.name]))


def get_prediction(name: str) -> Prediction:
    """The item called ``name``; a clear error lists the valid names."""
    try:
        return _PREDICTIONS[name]
    except KeyError:
        raise KeyError(
            f"No prediction called {name!r}; they are: {', '.join(_PREDICTIONS)}."
        ) from None


def _normalise(item: Prediction, guess: Any) -> Any:
    for choice in item.choices:
        try:
            if guess == choice or (isinstance(choice, float) and abs(float(guess) - choice) < 1e-9):
                return choice
        except (TypeError, ValueError):
            continue
    raise ExerciseError(
        f"Prediction {item.name!r}: {guess!r} is not one of the choices {list(item.choices)}."
    )


def predict(name: str, guess: Any) -> Verdict:
    """Record the learner's guess for item ``name`` before the run (None: not guessed yet).

    Returns:
        A line saying what was recorded.

    Raises:
        ExerciseError: The guess is not one of the item's choices.
    """
    item = get_prediction(name)
    if guess is None:
        _GUESSES.pop(name, None)
        return Verdict(
            f"Prediction {name!r}: no guess yet. {item.title} Set the my_guess variable above "
            f"to one of {list(item.choices)} and run this cell before the experiment below."
        )
    choice = _normalise(item, guess)
    late = name in _REVEALED
    _GUESSES[name] = (choice, late)
    note = " (made after the result was shown: it will not count as a prediction)" if late else ""
    return Verdict(f"Prediction {name!r}: recorded {choice!r}{note}. Now run the experiment.")


def check_prediction(name: str, outcome: Any) -> Verdict:
    """Judge the recorded guess against the notebook's own ``outcome`` and explain the run.

    Returns:
        The verdict (one paragraph).

    Raises:
        ExerciseError: The guess was wrong (the message gives the measured values), or no
            guess was recorded and solutions mode is off.
    """
    item = get_prediction(name)
    right = item.truth(outcome)
    explanation = item.explain(outcome)
    recorded = _GUESSES.get(name)
    _REVEALED.add(name)
    if recorded is None:
        if solutions_mode():
            tracker.record(name, tracker.REFERENCE)
            return Verdict(
                f"Prediction {name!r}: no guess recorded (solutions mode): the run says "
                f"{right!r}. {explanation}"
            )
        tracker.record(name, tracker.NOT_YET)
        raise ExerciseError(
            f"Prediction {name!r}: no guess recorded. Set my_guess and run the ex.predict cell "
            "above first; then run the experiment and this cell."
        )
    guess, late = recorded
    if guess == right:
        tracker.record(name, tracker.DONE_LATE if late else tracker.DONE)
        prefix = "right, but predicted after seeing the result" if late else "right"
        return Verdict(f"Prediction {name!r}: {prefix} ({guess!r}). {explanation}")
    tracker.record(name, tracker.TRIED)
    reason = item.wrong.get(guess, "")
    raise ExerciseError(
        f"Prediction {name!r}: you predicted {guess!r}, the run says {right!r}. {explanation}"
        + (f" {reason}" if reason else "")
        + f"\nHint: {item.hint} (ex.hint({name!r}, 2) for more.)"
    )


def pick_lowest(values: dict[Any, float]) -> Any:
    """The key with the lowest value (ties: the first)."""
    return min(values, key=values.get)


def table(values: dict[Any, float], label: str, fmt: str = ".3f") -> str:
    """``"label: k1 = v1, k2 = v2"`` for an explanation."""
    return f"{label}: " + ", ".join(f"{k} -> {v:{fmt}}" for k, v in values.items())
