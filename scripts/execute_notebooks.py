"""Execute notebooks in place at full budget, one at a time, and print their wall times.

The stored outputs of the notebooks are what a reader sees on GitHub or nbviewer, so they come
from full-budget runs (test mode, ``UCGM_LAB_TEST_MODE=1``, is only for CI, which re-executes
them with nbval). This script removes ``UCGM_LAB_TEST_MODE`` from the environment, sets
``UCGM_LAB_SOLUTIONS=1`` (unanswered exercises check the reference solutions, as in CI), runs
``jupyter nbconvert --to notebook --execute --inplace`` on each notebook in turn (the checkout's
``ucgm_lab`` first on the path), prints a table of wall and CPU times, and writes each
executed notebook's row into the run-time table of ``notebooks/README.md`` (between the
``notebook-times`` marker comments), with the date, the machine's CPU model and the load
average, so the table always describes the stored outputs. Rows of notebooks not executed this
time are kept; a notebook that failed keeps its old row (its stored outputs are unchanged).

Run from anywhere::

    python scripts/execute_notebooks.py                      # every notebook in notebooks/
    python scripts/execute_notebooks.py notebooks/20_plug_and_play_sampler.ipynb
    python scripts/execute_notebooks.py --nice 10 --threads 1  # on a shared machine
    python scripts/execute_notebooks.py --no-table notebooks/12_sampler.ipynb  # README untouched

A notebook that fails is left as it was (nbconvert writes only after a successful run); the
script goes on with the next one and exits with status 1 at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TABLE_FILE = NOTEBOOKS / "README.md"
TABLE_START = "<!-- notebook-times:start (written by scripts/execute_notebooks.py; do not edit) -->"
TABLE_END = "<!-- notebook-times:end -->"
TABLE_HEADER = (
    "| notebook | CPU time | wall time | load average (start, end) | threads | measured on |\n"
    "|---|---|---|---|---|---|"
)
NOT_MEASURED = "not measured by this script yet"


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
        load: The 1-minute load average of the machine when the run started and ended.
    """

    path: Path
    seconds: float
    ok: bool
    error: str = ""
    cpu_seconds: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: all of notebooks/")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    parser.add_argument("--nice", type=int, default=0, help="run the kernels with this niceness")
    parser.add_argument(
        "--threads", type=int, default=None, help="set OMP_NUM_THREADS (default: leave as is)"
    )
    parser.add_argument(
        "--no-table",
        action="store_true",
        help=f"do not write the run times into {TABLE_FILE.relative_to(ROOT)}",
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
    # unanswered exercises check the reference solutions, as in CI (test mode implies it), so
    # the stored check lines are the ones nbval compares against
    env["UCGM_LAB_SOLUTIONS"] = "1"
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
    load_start = os.getloadavg()[0]
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
    load = (load_start, os.getloadavg()[0])
    if done.returncode == 0:
        return Run(path, seconds, True, cpu_seconds=cpu, load=load)
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    print("\n".join(lines[-20:]), file=sys.stderr)
    error = lines[-1] if lines else f"exit status {done.returncode}"
    return Run(path, seconds, False, error, cpu, load)


def format_table(runs: list[Run]) -> str:
    """A markdown table of the runs: notebook, wall time, CPU time, result."""
    lines = ["| notebook | full-budget wall time | CPU time | result |", "|---|---|---|---|"]
    for run in runs:
        result = "ok" if run.ok else f"FAILED: {run.error}"
        lines.append(
            f"| `{run.path.name}` | {run.seconds:.0f} s | {run.cpu_seconds:.0f} s | {result} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    """The machine's CPU model and core count, e.g. "AMD EPYC 7B13, 2 cores"."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = " ".join((name or platform.processor() or platform.machine() or "unknown CPU").split())
    return f"{name}, {os.cpu_count()} cores"


def table_row(run: Run, threads: int | None, machine: str, day: datetime.date) -> str:
    """One row of the run-time table for a successful run."""
    load = f"{run.load[0]:.1f}, {run.load[1]:.1f}"
    return (
        f"| `{run.path.name}` | {run.cpu_seconds:.0f} s | {run.seconds:.0f} s | {load} "
        f"| {threads if threads is not None else 'default'} | {day.isoformat()}, {machine} |"
    )


def update_times_table(
    text: str,
    runs: list[Run],
    names: list[str],
    threads: int | None,
    machine: str,
    day: datetime.date,
) -> str:
    """``text`` with the table between the marker comments updated by ``runs``.

    Args:
        text: The markdown file's text; it must contain ``TABLE_START`` and ``TABLE_END``.
        runs: This invocation's runs: each successful one replaces its notebook's row.
        names: The notebooks that exist (file names): one row each, in this order; rows of
            notebooks that no longer exist are dropped.
        threads: The ``--threads`` value of this invocation.
        machine: ``cpu_model()``.
        day: The date of the runs.

    Raises:
        ValueError: When the markers are missing or out of order.
    """
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(
            f"the run-time table's markers are missing: put {TABLE_START!r} and {TABLE_END!r} "
            "on their own lines where the table should go."
        )
    rows: dict[str, str] = {}
    for line in text[start + len(TABLE_START) : end].splitlines():
        match = re.match(r"\|\s*`([^`]+\.ipynb)`", line)
        if match:
            rows[match.group(1)] = line.strip()
    for run in runs:
        if run.ok:
            rows[run.path.name] = table_row(run, threads, machine, day)
    lines = [rows.get(name, f"| `{name}` | | | | | {NOT_MEASURED} |") for name in names]
    table = "\n".join([TABLE_START, TABLE_HEADER, *lines, ""])
    return text[:start] + table + text[end:]


def write_times_table(runs: list[Run], threads: int | None, path: Path = TABLE_FILE) -> None:
    """Write the successful runs' rows into the run-time table of ``path``."""
    names = [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    text = path.read_text(encoding="utf-8")
    day = datetime.datetime.now(datetime.timezone.utc).date()
    path.write_text(
        update_times_table(text, runs, names, threads, cpu_model(), day), encoding="utf-8"
    )
    print(f"run times written to {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns 0 when every notebook ran."""
    args = parse_args(argv)
    if not args.no_table:  # check before the long work starts
        update_times_table(
            TABLE_FILE.read_text(encoding="utf-8"), [], [], None, "", datetime.date.today()
        )
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
    if not args.no_table:
        write_times_table(runs, args.threads)
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
