"""Run-time switches shared by notebooks, the demo and the tests.

Test mode (environment variable ``UCGM_LAB_TEST_MODE=1``, set by CI and by the README's test
command) shrinks every long computation in the notebooks (training steps, sample counts,
sweeps) so that the whole notebook suite runs in minutes on a 2-core CPU. A notebook cell that
shrinks or skips work in test mode says so in its output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TEST_MODE_ENV", "pick", "single_thread", "test_mode"]

TEST_MODE_ENV = "UCGM_LAB_TEST_MODE"


def test_mode() -> bool:
    """True when ``UCGM_LAB_TEST_MODE`` is set to 1/true/yes."""
    return os.environ.get(TEST_MODE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def pick(full, test):
    """Return ``test`` in test mode and ``full`` otherwise (e.g. ``steps = pick(2000, 50)``)."""
    return test if test_mode() else full


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored afterwards).

    The toy networks are tiny: one thread is fastest for them and keeps a notebook
    responsive on a busy machine, where several threads mostly wait for each other.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
