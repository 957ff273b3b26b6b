"""Run every ratio benchmark in one go and regenerate the overhead table of docs/benchmarks.md.

    python benchmarks/run_all.py            # full run (about 5 minutes on 2 cores), rewrites the table
    python benchmarks/run_all.py --quick    # smoke test: tiny sizes, docs untouched

The table goes into the section ``overheads`` of ``docs/benchmarks.md`` (``docs_writer``), with
when, on what and under which load it was measured. Every ratio comes from ``harness.measure``
(interleaved rounds, median and spread, a warning when the spread is larger than the effect).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from docs_writer import DOCS, write_section  # noqa: E402
from harness import SIZES, Case, Machine, Result, machine_info, markdown_table, run  # noqa: E402

SECTION = "overheads"
MODULES = ("sampler_overhead", "objective_overhead", "training_loop")


def all_cases(size: str) -> list[Case]:
    """Every case of the benchmark files in :data:`MODULES`."""
    import importlib

    out: list[Case] = []
    for name in MODULES:
        out.extend(importlib.import_module(name).cases(size))
    return out


def render_block(
    results: Sequence[Result],
    rounds: int,
    size: str = "full",
    clock: str = "cpu",
) -> str:
    """The section's markdown: title, how it was measured, the table, missed and noisy ratios."""
    noisy = [r for r in results if r.warnings()]
    missed = [r for r in results if r.within_target is False]
    lines = [
        "## Overheads: the library against best-practice PyTorch doing the same work",
        "",
        f"Problem sizes `--size {size}`, "
        + ("CPU time of the process" if clock == "cpu" else "wall time")
        + f" (`--clock {clock}`). Each ratio is the median of {rounds} interleaved rounds "
        "(candidate and baseline back to back, alternating which goes first), +- half the "
        "interquartile range of the rounds; `rounds` is the smallest and largest ratio of a "
        "round; the times are the medians per unit of work.",
        "",
        markdown_table(results),
        "",
    ]
    if missed:
        lines.append(
            "Missed targets: " + "; ".join(f"{r.case.key} {r.ratio:.3f}" for r in missed) + "."
        )
    if noisy:
        lines.append(
            "Uncertain in this run (spread larger than the effect, or the target inside the "
            "spread): " + ", ".join(r.case.key for r in noisy) + "."
        )
    return "\n".join(lines)


def write_docs(path: Path, block: str, machine: Machine, size: str) -> None:
    """Replace the ``overheads`` section of ``path`` with ``block``."""
    command = "python benchmarks/run_all.py" + ("" if size == "full" else f" --size {size}")
    write_section(SECTION, block, path, command=command, machine=machine)


def load_json(path: Path) -> tuple[list[Result], Machine, int, str, str]:
    """The results, machine, rounds, size and clock of a run saved with ``--json``."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    size = saved.get("size", "full")
    machine = Machine(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in saved["machine"].items()}
    )
    cases = {c.key: c for c in all_cases(size)}
    results = [
        Result(
            cases[r["key"]],
            tuple(r["candidate_s"]),
            tuple(r["baseline_s"]),
            int(r.get("calls_per_block", 1)),
        )
        for r in saved["results"]
    ]
    return results, machine, len(results[0].candidate_s), size, saved.get("clock", "wall")


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, short blocks; docs untouched"
    )
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="full",
        help="problem sizes: full (default, for an idle machine) or small (a loaded one)",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: CPU time of this process (default; robust to other jobs), wall: wall time",
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per ratio (>= 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--block", type=float, default=None, help="seconds per timed block")
    parser.add_argument("--only", nargs="*", default=None, help="case keys to run (default all)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the document to write")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the document")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw timings here")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="do not measure: render (and write) the table of a run saved with --json",
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results, machine, rounds, size, clock = load_json(args.from_json)
        block = render_block(results, rounds, size, clock)
        print(machine.describe())
        print(block)
        if not args.no_docs:
            write_docs(args.docs, block, machine, size)
            print(f"\nrewrote the overhead table in {args.docs}")
        return results
    torch.set_num_threads(args.threads)
    block_s = args.block if args.block is not None else (0.02 if args.quick else 0.3)
    machine = machine_info()
    print(machine.describe(), flush=True)
    size = "quick" if args.quick else args.size
    cases = all_cases(size)
    if args.only:
        unknown = set(args.only) - {c.key for c in cases}
        if unknown:
            raise SystemExit(
                f"unknown case keys {sorted(unknown)}; known: {[c.key for c in cases]}"
            )
        cases = [c for c in cases if c.key in args.only]
    start = time.perf_counter()
    results = run(cases, rounds=args.rounds, min_block_s=block_s, clock=args.clock)
    machine = machine.finish()
    print(f"\n{len(results)} ratios in {time.perf_counter() - start:.0f} s")
    block = render_block(results, args.rounds, size, args.clock)
    print()
    print(block)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "size": size,
                    "clock": args.clock,
                    "machine": machine.__dict__,
                    "results": [
                        {
                            "key": r.case.key,
                            "ratio": r.ratio,
                            "spread": r.spread,
                            "ratios": r.ratios,
                            "candidate_s": r.candidate_s,
                            "baseline_s": r.baseline_s,
                            "target": r.case.target,
                            "calls_per_block": r.calls_per_block,
                        }
                        for r in results
                    ],
                },
                indent=1,
            )
        )
    if not (args.quick or args.no_docs or args.only):
        write_docs(args.docs, block, machine, size)
        print(f"\nrewrote the overhead table in {args.docs}")
    return results


if __name__ == "__main__":
    main()
