"""One-line error reports for the ``scale/`` scripts (``--debug`` shows the traceback).

A mistake in a config, a missing file or a checkpoint that does not fit the run is reported as
``<script>: error: <message>`` on one line with exit status 2; the messages name the file, the
key and what is allowed. Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from scale.config import ConfigError
from ucgm_lab.objective import NonFiniteError
from ucgm_lab.sampler import NonFiniteSampleError
from ucgm_lab.training.checkpoint import CheckpointError
from ucgm_lab.training.latents import LatentShardError
from ucgm_lab.training.trainer import NonFiniteLossError, ResumeMismatchError

__all__ = ["USER_ERRORS", "report_user_errors"]

USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CheckpointError,
    LatentShardError,
    ResumeMismatchError,
    NonFiniteLossError,
    NonFiniteError,
    NonFiniteSampleError,
    OSError,
    ImportError,
    ValueError,
)
"""Errors that describe a problem of the user's input, printed without a traceback."""


def report_user_errors(prog: str, run: Callable[[], int], debug: bool) -> int:
    """Run ``run()``; print a user error on one line (exit status 2) unless ``debug``."""
    try:
        return run()
    except USER_ERRORS as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 2
