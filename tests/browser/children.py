"""Servers the tests start die with the test process, however it ends.

A JupyterLab server (and anything else a test starts with :func:`start`) runs in a new process
group and session of its own, and

* on Linux the kernel sends it SIGTERM when the thread that started it dies
  (``prctl(PR_SET_PDEATHSIG)``, set in the child between fork and exec): this covers a
  SIGKILL of pytest, which no handler can see;
* a SIGTERM or SIGHUP of the test process (a CI timeout, a closed terminal) first stops every
  live child, then ends the process as the signal would have (only when the signal had its
  default action: a handler someone else installed is left alone);
* at interpreter exit (``atexit``) every child still running is stopped;
* Ctrl-C no longer reaches the server directly (other process group): pytest turns it into
  KeyboardInterrupt, the fixtures stop their servers, and ``atexit`` catches the rest.

Stopping sends SIGTERM to the child's process group (a JupyterLab server then shuts its kernels
down; a kernel also exits by itself when its parent dies) and SIGKILL after ``timeout``.

Call :func:`start` from a thread that lives as long as the child should (pytest's main
thread): ``PR_SET_PDEATHSIG`` fires when the starting *thread* ends.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["live_children", "start", "stop"]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIVE: list[subprocess.Popen[bytes]] = []
_LOCK = threading.Lock()
_HANDLED = (signal.SIGTERM, signal.SIGHUP)
_installed = False


def _death_signal_preexec(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent thread dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl  # looked up before fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody will signal
            os._exit(1)

    return preexec


def _stop_all_and_reraise(signum: int, frame: Any) -> None:
    for proc in live_children():
        stop(proc, timeout=10.0)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(lambda: [stop(p, timeout=10.0) for p in live_children()])
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; prctl and atexit remain
    for signum in _HANDLED:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _stop_all_and_reraise)


def start(cmd: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(cmd, **popen_kwargs)`` for a child that must not outlive the tests.

    Raises:
        ValueError: If ``popen_kwargs`` sets ``preexec_fn``, ``start_new_session`` or
            ``process_group`` (this function sets them).
    """
    taken = {"preexec_fn", "start_new_session", "process_group"} & set(popen_kwargs)
    if taken:
        raise ValueError(f"children.start sets {sorted(taken)} itself; do not pass them.")
    _install_handlers()
    proc = subprocess.Popen(
        list(cmd), start_new_session=True, preexec_fn=_death_signal_preexec(), **popen_kwargs
    )
    with _LOCK:
        _LIVE.append(proc)
    return proc


def live_children() -> list[subprocess.Popen[bytes]]:
    """The children started by :func:`start` that have not been stopped."""
    with _LOCK:
        return list(_LIVE)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to ``proc``'s process group, SIGKILL after ``timeout`` seconds; then reap it."""
    with _LOCK:
        if proc in _LIVE:
            _LIVE.remove(proc)
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    _signal_group(proc.pid, signal.SIGKILL)  # whatever else is left in its group


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
