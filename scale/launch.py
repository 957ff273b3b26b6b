"""Start a scale/ script on several CPU processes through ``accelerate launch`` (gloo).

The rehearsal (:mod:`scale.rehearse`) and the tests run the real distributed engine this way:
``ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes N -m scale.train ...``
with one intra-op thread per process, no mixed precision, no dynamo and a free local port.
The children import the same ``scale`` and ``ucgm_lab`` as the caller (their folder is put
first on the children's ``PYTHONPATH``), so a checkout that is not the installed one runs its
own code.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["free_port", "launch_on_cpu", "subprocess_env"]

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the ``scale`` package (the repository root of a checkout)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for the process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
) -> subprocess.CompletedProcess[str]:
    """Run ``accelerate launch [--multi_gpu] --num_processes N`` on the CPU and wait for it.

    Args:
        target: A module (``"scale.train"``, run with ``-m``) or a script path ending in
            ``.py`` (run as a file).
        args: The script's own arguments.
        num_processes: Processes of the gloo group.
        timeout: Seconds before the launch is killed (``subprocess.TimeoutExpired``).
        cwd: Working folder of the children (default: the caller's).
        launcher_args: More ``accelerate launch`` options (e.g. ``["--use_fsdp"]``, which the
            trainer refuses).

    Returns:
        The finished process, with ``stdout`` and ``stderr`` captured as text.
    """
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}.")
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
        "--main_process_port",
        str(free_port()),
        *launcher_args,
        *where,
        *args,
    ]
    env = subprocess_env({"ACCELERATE_USE_CPU": "true"})
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
