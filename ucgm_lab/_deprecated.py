"""One deprecation path for moved modules and names: thin aliases that warn and forward."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["forward_module", "forward_names", "warn_moved"]


def warn_moved(old: str, new: str, stacklevel: int = 3) -> None:
    """Emit the DeprecationWarning of a moved module or name.

    A deprecated module calls it at import with ``stacklevel=2``: the warning is then
    attributed to the deprecated module itself, so that test runs (which show every warning)
    and ``python -W default`` report it while a notebook that still imports the old path keeps
    its stored output (IPython shows deprecation warnings only of code in ``__main__``).
    """
    warnings.warn(
        f"{old} is deprecated: use {new} (the old path will be removed).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def forward_module(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the deprecated module ``old`` that forwards to module ``new``.

    The module warns once when it is imported (call :func:`warn_moved` at its top); every
    attribute is then read from ``new``.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(new), name)

    return __getattr__


def forward_names(
    old: str, names: Mapping[str, str], warn: bool = True, stacklevel: int = 3
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that forwards each listed name (warning on each use if ``warn``).

    A deprecated *module* warns once when imported and forwards silently (``warn=False``); a
    package whose names moved warns on each use of an old name.

    Args:
        old: The deprecated module's name (for the message).
        names: Old attribute name -> "new.module:new_name".
        warn: Warn on each use of a name.
        stacklevel: Of the warning: 3 names the caller's line; 2 attributes it to this
            library, so that a notebook that still uses the old name keeps its stored output
            (IPython shows deprecation warnings of ``__main__`` only) while tests report it.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        module, _, attr = names[name].partition(":")
        if warn:
            warn_moved(f"{old}.{name}", f"{module}.{attr}", stacklevel=stacklevel)
        return getattr(importlib.import_module(module), attr)

    return __getattr__
