"""No shortcut: an answer that calls the library's own implementation of the exercise is refused.

Each exercise names the library functions that compute its answer (``"module:qualname"``, e.g.
``"ucgm_lab.schedules:KumaraswamySchedule.time_points"``). While the learner's function runs, a
profile hook (:func:`sys.setprofile`) watches every Python call; a call into one of those
functions stops the answer with :class:`ShortcutUsed`. Matching on the module and the qualified
name (not on the object) catches every way of reaching the function: an import at the top of the
notebook, an import inside the answer, a bound method, a module imported only then. The hook is
active only while the answer runs, so the check itself may use the library for its expected
values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ShortcutUsed", "guarded"]


class ShortcutUsed(Exception):  # noqa: N818 - the name says what happened
    """The answer called the library's implementation of the exercise."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


_HAS_QUALNAME = sys.version_info >= (3, 11)


def _parse(targets: Iterable[str]) -> dict[tuple[str, str], str]:
    out = {}
    for target in targets:
        module, _, qualname = target.partition(":")
        # Python 3.10 code objects have no co_qualname: match the last part of the name there
        key = qualname if _HAS_QUALNAME else qualname.rpartition(".")[2]
        out[(module, key)] = f"{module}.{qualname}"
    return out


def guarded(answer: Callable[..., Any], targets: Iterable[str]) -> Callable[..., Any]:
    """``answer`` wrapped so that a call into any of ``targets`` raises :class:`ShortcutUsed`.

    The answer cannot hide the shortcut by catching the exception: the call is remembered and
    reported after the answer returns.

    Args:
        answer: The learner's function.
        targets: ``"module:qualname"`` of each library function that computes the answer.
    """
    forbidden = _parse(targets)
    if not forbidden:
        return answer

    def run(*args: Any, **kwargs: Any) -> Any:
        hits: list[str] = []

        def profile(frame, event, arg):  # noqa: ANN001, ARG001 - the sys.setprofile signature
            if event == "call":
                code = frame.f_code
                name = code.co_qualname if _HAS_QUALNAME else code.co_name
                key = (frame.f_globals.get("__name__"), name)
                if key in forbidden:
                    hits.append(forbidden[key])
                    raise ShortcutUsed(forbidden[key])

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            out = answer(*args, **kwargs)
        except ShortcutUsed:
            raise
        except Exception:
            if hits:
                raise ShortcutUsed(hits[0]) from None
            raise
        finally:
            sys.setprofile(previous)
        if hits:
            raise ShortcutUsed(hits[0])
        return out

    return run
