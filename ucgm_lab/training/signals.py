"""SIGTERM and SIGINT stop training at the end of the current step, on every rank at once.

Clusters preempt jobs with SIGTERM (and ``accelerate launch`` forwards it to every rank);
Ctrl-C and a notebook's interrupt send SIGINT. While :meth:`Trainer.fit
<ucgm_lab.training.Trainer.fit>` runs, :class:`StopSignals` turns either into a request that is
looked at after each optimizer step: the ranks agree with one all-reduce (maximum of the signal
numbers received) so that all of them stop after the same step, the trainer writes a checkpoint
of that step and ``fit`` returns with ``TrainResult.stopped_by`` set. A second SIGINT while a
stop is pending raises ``KeyboardInterrupt`` at once (the way out of a step that hangs). The
previous handlers are restored when ``fit`` returns.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import torch

from .collectives import all_reduce

__all__ = ["STOP_SIGNALS", "StopSignals", "agree_to_stop", "signal_name"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that stop training cleanly."""


class StopSignals:
    """Context manager: record SIGTERM / SIGINT instead of dying (main thread only).

    Attributes:
        received: The first signal number received, or 0.
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.received = self.received or signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def agree_to_stop(received: int, accelerator: Any) -> int:
    """The signal that stops every rank after this step (0: go on); a collective on several.

    Every rank calls it after every step; the maximum of the signal numbers received by any rank
    is returned on all of them, so the ranks stop after the same step.
    """
    if getattr(accelerator, "num_processes", 1) <= 1:
        return received
    flag = torch.tensor([received], dtype=torch.int64, device=accelerator.device)
    return int(all_reduce(flag, "max").item())


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
