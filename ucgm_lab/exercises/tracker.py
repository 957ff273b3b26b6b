"""What the learner has done: ``progress()`` lists every exercise, its state, and what is next.

The state of each exercise is kept for the running kernel and, outside test mode, in a small JSON
file (``~/.ucgm_lab/progress.json``, or the path in ``UCGM_LAB_PROGRESS_FILE``) so that the
notebooks share it. The file holds plain data (names and states); nothing in it is executed. An
unreadable file is set aside as ``progress.json.bak`` (never deleted) and a fresh one started.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..runtime import test_mode

__all__ = ["PROGRESS_ENV", "Progress", "load_states", "record"]

PROGRESS_ENV = "UCGM_LAB_PROGRESS_FILE"

# the order of the states: a better state is never replaced by a worse one
DONE, DONE_LATE, TRIED, HINTED, REFERENCE, NOT_YET = (
    "done",
    "done (predicted after seeing the result)",
    "tried, not right yet",
    "hints read",
    "reference solution ran (solutions mode)",
    "not yet",
)
_RANK = {NOT_YET: 0, REFERENCE: 1, HINTED: 2, TRIED: 3, DONE_LATE: 4, DONE: 5}

_STATES: dict[str, str] = {}


def _path() -> Path | None:
    explicit = os.environ.get(PROGRESS_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if test_mode():
        return None  # CI: keep the progress of this process only
    return Path.home() / ".ucgm_lab" / "progress.json"


def load_states() -> dict[str, str]:
    """The states of this kernel merged with the ones stored on disk (the better one wins)."""
    path = _path()
    stored: dict[str, str] = {}
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            stored = {str(k): str(v) for k, v in data.get("states", {}).items() if v in _RANK}
        except (OSError, ValueError, AttributeError):
            backup = path.with_suffix(path.suffix + ".bak")
            warnings.warn(
                f"Could not read the exercise progress in {path}; it was moved to {backup} and "
                "a new file started.",
                stacklevel=2,
            )
            try:
                path.replace(backup)
            except OSError:
                pass
    merged = dict(stored)
    for name, state in _STATES.items():
        if _RANK[state] >= _RANK.get(merged.get(name, NOT_YET), 0):
            merged[name] = state
    return merged


def record(name: str, state: str) -> None:
    """Remember ``state`` for exercise ``name`` unless a better state is known."""
    if _RANK[state] >= _RANK.get(_STATES.get(name, NOT_YET), 0):
        _STATES[name] = state
    path = _path()
    if path is None:
        return
    states = load_states()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
        ) as handle:
            json.dump({"states": states}, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError as error:
        warnings.warn(f"Could not save the exercise progress to {path}: {error}", stacklevel=2)


@dataclass(frozen=True)
class Progress:
    """Every exercise with its state, in the order of the notebooks (shown as a table).

    Attributes:
        rows: (notebook, exercise name, title, state) per exercise.
    """

    rows: tuple[tuple[str, str, str, str], ...]

    @property
    def done(self) -> int:
        """How many exercises the learner answered correctly."""
        return sum(state in (DONE, DONE_LATE) for *_, state in self.rows)

    @property
    def next(self) -> tuple[str, str] | None:
        """(notebook, exercise) of the first exercise not done yet, or None."""
        for notebook, name, _, state in self.rows:
            if state not in (DONE, DONE_LATE):
                return notebook, name
        return None

    def __repr__(self) -> str:
        lines = [f"{self.done} of {len(self.rows)} exercises done."]
        notebook = None
        for nb, name, title, state in self.rows:
            if nb != notebook:
                lines.append(f"  {nb}")
                notebook = nb
            mark = "x" if state in (DONE, DONE_LATE) else " "
            lines.append(f"    [{mark}] {name:<26} {state:<22} {title}")
        following = self.next
        lines.append(
            f"Next: {following[1]!r} in {following[0]}."
            if following
            else "Next: nothing; all done."
        )
        return "\n".join(lines)
