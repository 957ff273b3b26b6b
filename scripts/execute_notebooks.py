"""Execute notebooks in place at full budget, one at a time, and print their wall times.

The stored outputs of the notebooks are what a reader sees on GitHub or nbviewer, so they come
from full-budget runs (test mode, ``UCGM_LAB_TEST_MODE=1``, is only for CI, which re-executes
them with nbval). This script removes ``UCGM_LAB_TEST_MODE`` from the environment, runs
``jupyter nbconvert --to notebook --execute --inplace`` on each notebook in turn (the checkout's
``ucgm_lab`` first on the path), and prints a table of wall times for the README's notebook table.

Run from anywhere::

    python scripts/execute_notebooks.py                      # every notebook in notebooks/
    python scripts/execute_notebooks.py notebooks/20_plug_and_play_sampler.ipynb
    python scripts/execute_notebooks.py --nice 10 --threads 1  # on a shared machine

A notebook that fails is left as it was (nbconvert writes only after a successful run); the
script goes on with the next one and exits with status 1 at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@dataclass(frozen=True)
class Run:
    """One notebook's execution.

    Attributes:
        path: The notebook.
        seconds: Wall time of nbconvert, kernel start included.
        ok: Whether every cell ran.
        error: The last line nbconvert printed when it failed.
        cpu_seconds: CPU time (user + system) of nbconvert and the kernel: on a machine busy
            with other jobs the wall time grows, this much less so.
    """

    path: Path
    seconds: float
    ok: bool
    error: str = ""
    cpu_seconds: float = float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: all of notebooks/")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    parser.add_argument("--nice", type=int, default=0, help="run the kernels with this niceness")
    parser.add_argument(
        "--threads", type=int, default=None, help="set OMP_NUM_THREADS (default: leave as is)"
    )
    args = parser.parse_args(argv)
    if not args.notebooks:
        args.notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"{path} is not a notebook file (expected an existing *.ipynb).")
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}.")
    return args


def full_budget_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a full-budget run: no test mode, this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "UCGM_LAB_TEST_MODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def execute(path: Path, timeout: int, nice: int, env: dict[str, str]) -> Run:
    """Execute one notebook in place with nbconvert and time it."""
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--inplace",
        f"--ExecutePreprocessor.timeout={timeout}",
        str(path),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode == 0:
        return Run(path, seconds, True, cpu_seconds=cpu)
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    print("\n".join(lines[-20:]), file=sys.stderr)
    error = lines[-1] if lines else f"exit status {done.returncode}"
    return Run(path, seconds, False, error, cpu)


def format_table(runs: list[Run]) -> str:
    """A markdown table of the runs: notebook, wall time, CPU time, result."""
    lines = ["| notebook | full-budget wall time | CPU time | result |", "|---|---|---|---|"]
    for run in runs:
        result = "ok" if run.ok else f"FAILED: {run.error}"
        lines.append(
            f"| `{run.path.name}` | {run.seconds:.0f} s | {run.cpu_seconds:.0f} s | {result} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns 0 when every notebook ran."""
    args = parse_args(argv)
    if os.environ.get("UCGM_LAB_TEST_MODE"):
        print("UCGM_LAB_TEST_MODE is set here; it is removed for these runs (full budget).")
    env = full_budget_env(args.threads)
    runs = []
    for path in args.notebooks:
        print(f"executing {path.name} ...", flush=True)
        run = execute(path.resolve(), args.timeout, args.nice, env)
        status = "done" if run.ok else "FAILED"
        print(f"  {status} in {run.seconds:.0f} s (CPU {run.cpu_seconds:.0f} s)", flush=True)
        runs.append(run)
    print(f"\nload average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(format_table(runs))
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
