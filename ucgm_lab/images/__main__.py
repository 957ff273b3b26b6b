"""Deprecated: ``python -m ucgm_lab.zoo {list,build}`` lists and builds the digits models too."""

from __future__ import annotations

import sys

from .._deprecated import warn_moved


def main(argv: list[str] | None = None) -> None:
    """Forward to ``python -m ucgm_lab.zoo`` (``build`` without ``--only``: the digits names)."""
    from ..zoo.__main__ import main as zoo_main
    from .zoo import _NAMES

    warn_moved("python -m ucgm_lab.images", "python -m ucgm_lab.zoo", stacklevel=2)
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"] and "--only" not in args:
        args += ["--only", *_NAMES]
    zoo_main(args)


if __name__ == "__main__":
    main()
