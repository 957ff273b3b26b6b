"""Checks of a zoo ``build`` command line, used by ``python -m ucgm_lab.zoo build``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_build_arguments"]


def check_build_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace, known: Sequence[str]
) -> None:
    """Refuse bad ``build`` arguments before any training starts.

    An ``--out`` that is a file, unknown ``--only`` names and a non-positive ``--steps-scale``
    each end the command with ``parser.error`` (one line naming the option, exit status 2).
    """
    out = Path(args.out) if args.out is not None else None
    if out is not None and out.exists() and not out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder")
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        parser.error(f"unknown name(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if args.steps_scale <= 0:
        parser.error(f"--steps-scale must be > 0, got {args.steps_scale}")
