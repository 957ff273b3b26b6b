"""One harness for every ratio benchmark: a candidate against a baseline doing the same work.

On a shared machine single timings wander by tens of percent, so a ratio is only meaningful
when both sides see the same load. The harness therefore

* interleaves: every round times the candidate and the baseline back to back, alternating
  which goes first (ABBA), and the ratio of that round is candidate / baseline;
* repeats: at least 5 rounds; each timed block runs the function enough times to last
  ``min_block_s`` (the same count for both sides);
* reports the median of the per-round ratios and their spread (half the interquartile range
  of the per-round ratios; the full range is printed too), plus the median time of each side
  per unit of work;
* records the machine: the load average before and after, torch's thread count, the CPU;
* measures CPU time of the process by default (``time.process_time``; with one torch thread it
  equals the wall time on an idle machine, and time spent waiting for the CPU while other jobs
  run is not counted), or wall time (``time.perf_counter``) on request;
* warns when the spread is larger than the effect (|ratio - 1|), i.e. when the run cannot
  tell the candidate from its baseline, and when the target verdict is inside the spread.

Used by ``run_all.py`` and by each benchmark script run on its own.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Case", "Machine", "Result", "machine_info", "main", "markdown_table", "measure", "run"]

MIN_ROUNDS = 5
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
"""The timers: CPU time of this process (default) or wall time."""
SIZES = ("quick", "small", "full")
"""Problem sizes of the benchmark files: "full" for an idle machine (the default), "small"
(about 4x less work per call) for a loaded one, "quick" for smoke tests."""


@dataclass(frozen=True)
class Case:
    """One ratio benchmark.

    Attributes:
        key: Short identifier (used on the command line and in JSON output).
        label: What is compared, for the table (e.g. "`sample` / bare loop, MLP2D").
        candidate: Runs one unit of the candidate's work.
        baseline: Runs the same unit of the baseline's work.
        target: Upper bound on the ratio the project aims for, or None.
        unit: What one call is, for the per-unit times (e.g. "step", "NFE").
        units_per_call: How many units one call does (times are divided by it).
        note: A sentence for the table (optional).
    """

    key: str
    label: str
    candidate: Callable[[], object]
    baseline: Callable[[], object]
    target: float | None = None
    unit: str = "call"
    units_per_call: int = 1
    note: str = ""


@dataclass(frozen=True)
class Result:
    """The timings of one :class:`Case`.

    Attributes:
        case: The case measured.
        candidate_s: Per-round candidate time per unit, seconds.
        baseline_s: Per-round baseline time per unit, seconds.
        calls_per_block: How many calls each timed block made.
    """

    case: Case
    candidate_s: tuple[float, ...]
    baseline_s: tuple[float, ...]
    calls_per_block: int

    @property
    def ratios(self) -> list[float]:
        """Candidate / baseline of every round."""
        return [c / b for c, b in zip(self.candidate_s, self.baseline_s, strict=True)]

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios."""
        return statistics.median(self.ratios)

    @property
    def spread(self) -> float:
        """Half the interquartile range of the per-round ratios (a robust +- around the median)."""
        q1, _, q3 = statistics.quantiles(self.ratios, n=4, method="inclusive")
        return (q3 - q1) / 2

    @property
    def ratio_range(self) -> tuple[float, float]:
        """Smallest and largest per-round ratio."""
        return min(self.ratios), max(self.ratios)

    @property
    def candidate_median_s(self) -> float:
        """Median candidate time per unit."""
        return statistics.median(self.candidate_s)

    @property
    def baseline_median_s(self) -> float:
        """Median baseline time per unit."""
        return statistics.median(self.baseline_s)

    @property
    def effect(self) -> float:
        """|ratio - 1|: how far the candidate is from its baseline."""
        return abs(self.ratio - 1.0)

    @property
    def within_target(self) -> bool | None:
        """Whether the median ratio meets the target (None without a target)."""
        return None if self.case.target is None else self.ratio <= self.case.target

    def warnings(self) -> list[str]:
        """Reasons not to trust this ratio's difference from 1 or its target verdict."""
        out = []
        if self.spread > self.effect:
            out.append(
                f"spread +-{self.spread:.3f} is larger than the effect |{self.ratio:.3f} - 1| = "
                f"{self.effect:.3f}: this run cannot tell the candidate from its baseline"
            )
        target = self.case.target
        if target is not None and abs(self.ratio - target) <= self.spread:
            out.append(f"the target {target:g} lies inside the spread: the verdict is uncertain")
        return out

    def line(self) -> str:
        """One line for the console."""
        c = self.case
        verdict = ""
        if c.target is not None:
            verdict = f" (target <= {c.target:g}: {'met' if self.within_target else 'MISSED'})"
        return (
            f"{c.label}: {_ms(self.candidate_median_s)} / {_ms(self.baseline_median_s)} ms per "
            f"{c.unit}, ratio {self.ratio:.3f} +- {self.spread:.3f} "
            f"(rounds {self.ratio_range[0]:.3f}-{self.ratio_range[1]:.3f}){verdict}"
        )


@dataclass(frozen=True)
class Machine:
    """Where and when a run was measured.

    Attributes:
        when: UTC time of the start of the run (ISO 8601, minutes).
        cpu: CPU model name.
        cores: Logical CPUs visible to the process.
        torch_threads: ``torch.get_num_threads()`` during the run.
        torch_version: torch version.
        python_version: Python version.
        load_before: 1/5/15-minute load average before the run.
        load_after: The same after the run (filled in by :meth:`finish`).
    """

    when: str
    cpu: str
    cores: int
    torch_threads: int
    torch_version: str
    python_version: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = field(default=None)

    def finish(self) -> Machine:
        """A copy with the load average after the run."""
        return Machine(**{**self.__dict__, "load_after": _load()})

    def describe(self) -> str:
        """One sentence: when, on what, under which load."""
        after = "" if self.load_after is None else f", after {self.load_after[0]:.1f}"
        return (
            f"{self.when} UTC on {self.cpu} ({self.cores} logical CPUs), torch {self.torch_version} "
            f"with {self.torch_threads} thread(s), Python {self.python_version}; 1-minute load "
            f"average before the run {self.load_before[0]:.1f}{after}"
        )


def machine_info() -> Machine:
    """The current machine, torch thread count and load average."""
    import torch

    return Machine(
        when=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        cpu=_cpu_name(),
        cores=os.cpu_count() or 1,
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        load_before=_load(),
    )


def measure(
    case: Case,
    rounds: int = 9,
    min_block_s: float = 0.3,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> Result:
    """Time ``case.candidate`` against ``case.baseline``, interleaved.

    Args:
        case: The case.
        rounds: Number of interleaved rounds (at least 5).
        min_block_s: Each timed block repeats the call until the slower side's block lasts
            about this long (the count is fixed once, after the warm-up, for both sides).
        warmup: Untimed calls of each side first.
        clock: The timer (a parameter for tests).

    Returns:
        A :class:`Result` with per-round times per unit of work.
    """
    if rounds < MIN_ROUNDS:
        raise ValueError(f"rounds must be >= {MIN_ROUNDS} (a median needs repeats), got {rounds}.")
    for _ in range(warmup):
        case.candidate()
        case.baseline()
    single = max(_block(case.candidate, 1, clock), _block(case.baseline, 1, clock))
    calls = max(1, round(min_block_s / max(single, 1e-9)))
    per_unit = calls * case.units_per_call
    cand, base = [], []
    for i in range(rounds):
        if i % 2 == 0:
            c = _block(case.candidate, calls, clock)
            b = _block(case.baseline, calls, clock)
        else:
            b = _block(case.baseline, calls, clock)
            c = _block(case.candidate, calls, clock)
        cand.append(c / per_unit)
        base.append(b / per_unit)
    return Result(case, tuple(cand), tuple(base), calls)


def markdown_table(results: Sequence[Result]) -> str:
    """The README's overhead table: one row per result."""
    rows = [
        "| benchmark | candidate / baseline | ratio | rounds | target | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r.case
        target = (
            ""
            if c.target is None
            else f"<= {c.target:g} ({'met' if r.within_target else 'missed'})"
        )
        notes = [c.note] if c.note else []
        if r.spread > r.effect:
            notes.append("within the noise of this run")
        rows.append(
            f"| {c.label} | {_ms(r.candidate_median_s)} / {_ms(r.baseline_median_s)} ms per {c.unit} "
            f"| {r.ratio:.3f} +- {r.spread:.3f} | {r.ratio_range[0]:.2f}-{r.ratio_range[1]:.2f} "
            f"| {target} | {'; '.join(notes)} |"
        )
    return "\n".join(rows)


def run(
    cases: Sequence[Case],
    rounds: int = 9,
    min_block_s: float = 0.3,
    echo: bool = True,
    clock: str = "cpu",
) -> list[Result]:
    """Measure ``cases`` one after the other (``clock`` "cpu" or "wall"), printing each line."""
    results = []
    for case in cases:
        result = measure(case, rounds=rounds, min_block_s=min_block_s, clock=CLOCKS[clock])
        results.append(result)
        if echo:
            print(result.line(), flush=True)
            for warning in result.warnings():
                print(f"  WARNING: {warning}", flush=True)
    return results


def main(cases_fn: Callable[[str], Sequence[Case]], description: str | None) -> None:
    """Command line of a single benchmark file: ``--threads``, ``--rounds``, ``--size``, ``--quick``."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=9, help=f"interleaved rounds (>= {MIN_ROUNDS})"
    )
    parser.add_argument("--size", choices=SIZES, default="full", help="problem sizes")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="timer")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and blocks: a smoke test")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = machine_info()
    print(machine.describe())
    size = "quick" if args.quick else args.size
    run(
        cases_fn(size),
        rounds=args.rounds,
        min_block_s=0.02 if args.quick else 0.3,
        clock=args.clock,
    )
    print(machine.finish().describe())


def _block(fn: Callable[[], object], calls: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return clock() - start


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # not available on this platform
        return (float("nan"),) * 3


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
