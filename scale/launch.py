"""Start a scale/ script on several CPU processes through ``accelerate launch`` (gloo).

The rehearsal (:mod:`scale.rehearse`) and the tests run the real distributed engine this way:
``ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes N -m scale.train ...``
with one intra-op thread per process, no mixed precision, no dynamo and a free local port.
A free port is only free when it is picked: another program (another launch) may bind it before
the rendezvous does. Such a launch fails before any worker starts, and :func:`launch_on_cpu`
then launches again on a fresh port (:data:`PORT_TRIES` times in all, one line on stderr each
time; :func:`port_was_taken` tells that failure from others, which are never retried).
The children import the same ``scale`` and ``ucgm_lab`` as the caller (their folder is put
first on the children's ``PYTHONPATH``), so a checkout that is not the installed one runs its
own code. A launch never outlives its caller (:func:`run_tied`): killed, interrupted or timed
out, the caller takes the launcher and its workers down with it.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "PORT_TRIES",
    "STOP_GRACE_S",
    "free_port",
    "launch_on_cpu",
    "port_was_taken",
    "run_tied",
    "subprocess_env",
]

PORT_TRIES = 3
"""Launches on fresh ports when the rendezvous finds its port taken, the first one included."""

STOP_GRACE_S = 40.0
"""Seconds a stopped launch gets to checkpoint and exit after SIGTERM (accelerate's own
launcher gives its workers 30 s) before SIGKILL."""

_PR_SET_PDEATHSIG = 1

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the ``scale`` package (the repository root of a checkout)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for the process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The rendezvous store could not listen on its port: torch's c10d TCPStore, as torch >= 2.3
# ("... port: 29500, ... name: EADDRINUSE ...") and before ("... bind to [::]:29500 (errno: 98 -
# Address already in use)") word it.
_SERVER_SOCKET = "server socket has failed to"
_IN_USE = re.compile(r"EADDRINUSE|address already in use", re.I)


def port_was_taken(result: subprocess.CompletedProcess[str], port: int) -> bool:
    """Whether a launch failed because its rendezvous could not listen on ``port``.

    That failure comes before any worker starts, so the launch can be repeated on another port.
    Any other failure (a worker's own socket error included) is the script's and is reported.
    """
    if result.returncode == 0 or _SERVER_SOCKET not in result.stderr:
        return False
    return any(
        _IN_USE.search(line) and re.search(rf"(?<!\d){port}(?!\d)", line)
        for line in result.stderr.splitlines()
        if _SERVER_SOCKET in line
    )


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: one thread, the hub offline, this checkout first on the path."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH")) if p),
    )
    env.update(extra or {})
    return env


def launch_on_cpu(
    target: str,
    args: Sequence[str],
    num_processes: int = 2,
    timeout: float = 300,
    cwd: str | Path | None = None,
    launcher_args: Sequence[str] = (),
    port_tries: int = PORT_TRIES,
) -> subprocess.CompletedProcess[str]:
    """Run ``accelerate launch [--multi_gpu] --num_processes N`` on the CPU and wait for it.

    The rendezvous gets a free local port; when another program binds it first (the launch
    then fails before any worker starts, :func:`port_was_taken`), the launch is repeated on a
    fresh port, ``port_tries`` launches in all within ``timeout``, with one line on stderr.

    Args:
        target: A module (``"scale.train"``, run with ``-m``) or a script path ending in
            ``.py`` (run as a file).
        args: The script's own arguments.
        num_processes: Processes of the gloo group.
        timeout: Seconds before the launch is killed (``subprocess.TimeoutExpired``).
        cwd: Working folder of the children (default: the caller's).
        launcher_args: More ``accelerate launch`` options (e.g. ``["--use_fsdp"]``, which the
            trainer refuses).
        port_tries: Launches in all when the rendezvous port is taken (at least 1).

    Returns:
        The finished process, with ``stdout`` and ``stderr`` captured as text (the last
        launch's; when its port was taken on every try, its ``stderr`` starts with a line that
        says so).
    """
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}.")
    if not isinstance(port_tries, int) or port_tries < 1:
        raise ValueError(f"port_tries must be a positive integer, got {port_tries!r}.")
    where = ["--module", target] if not target.endswith(".py") else [target]
    # accelerate takes one of --multi_gpu, --use_fsdp, --use_deepspeed
    sharded = any(a in ("--use_fsdp", "--use_deepspeed") for a in launcher_args)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *(["--multi_gpu"] if num_processes > 1 and not sharded else []),
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    tail = [*launcher_args, *where, *args]
    env = subprocess_env({"ACCELERATE_USE_CPU": "true"})
    deadline = time.monotonic() + timeout
    taken: list[int] = []
    while True:
        port = free_port()
        result = run_tied(
            [*cmd, "--main_process_port", str(port), *tail],
            env=env,
            cwd=cwd,
            timeout=max(deadline - time.monotonic(), 1.0),
        )
        if not port_was_taken(result, port):
            return result
        taken.append(port)
        if len(taken) >= port_tries:
            note = (
                f"scale.launch: the rendezvous port was taken before the launch could listen on "
                f"it, {len(taken)} times (ports {taken}): another program is binding local "
                "ports; the launch did not start.\n"
            )
            print(note, end="", file=sys.stderr, flush=True)
            result.stderr = note + result.stderr
            return result
        print(
            f"scale.launch: port {port} was taken before the rendezvous could listen on it "
            f"(another launch?); launching again on a fresh port ({len(taken) + 1} of "
            f"{port_tries}).",
            file=sys.stderr,
            flush=True,
        )


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when the process that started it dies (Linux)."""

    def set_death_signal() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # not Linux: the group kill below still applies
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


def stop_process_group(proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to a child's whole process group, SIGKILL to what is left after ``grace`` s.

    SIGTERM lets training ranks checkpoint and stop (:mod:`ucgm_lab.training.signals`);
    ``accelerate launch`` forwards it to its workers.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the launcher, so that only live members keep the group
            if not _group_alive(proc.pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_tied(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` whose child and its workers never outlive the caller.

    The child runs in its own process group (session) and is told by the kernel to get SIGTERM
    when the caller dies (``PR_SET_PDEATHSIG``: even a ``kill -9`` of the caller); on a timeout,
    Ctrl-C or any other exception in the caller the whole group gets SIGTERM, then SIGKILL
    after :data:`STOP_GRACE_S` seconds. Output is captured as text.

    Raises:
        subprocess.TimeoutExpired: After ``timeout`` seconds (the group is stopped first). Any
            exception raised while waiting carries the child's output so far as
            ``launch_output``.
    """
    proc = subprocess.Popen(
        list(cmd),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - no threads start children here
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:
        stop_process_group(proc)
        out, err = proc.communicate()
        exc.launch_output = out + err  # type: ignore[attr-defined]  # what it said until then
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
