"""The sampler-settings search: today's full search against the fast one, time and quality.

On one model (default: the zoo's ``checkerboard-linear-lam0``) and three budgets (4, 8, 16 NFE):

* ``full``: ``search_sampler`` with the default :class:`~ucgm_lab.SearchSpace`, 4000 selection
  points against a reference 16 times larger, 4 validation streams (what
  ``benchmarks/sampler_frontier.py`` runs);
* ``fast``: ``SearchSpace.fast(lambda)`` started from :func:`ucgm_lab.recommended_settings`
  (``consistency_ratio=lambda``), 2000 selection points, 2 validation streams (no
  ``max_seconds``: on a loaded machine a wall-time budget would cut the search short, and the
  CPU time is the figure to compare).

Both run in the same process, one after the other, and are timed (wall and CPU time of this
process, the 1-minute load average before and after each; the machine is shared, so compare
CPU times) and their settings scored on one held-out noise of 10000 points against 80000 data
points, beside the recommendation and diffusers' DPM-Solver++ 2M and UniPC.
``--full-max-seconds S`` gives the full search ``max_seconds=S`` (wall time): the table then
says that it was cut and whether it stopped early.

Run: ``python benchmarks/search_speed.py [--which fast,full] [--full-max-seconds S]``; results
in ``runs/search_speed/*.json``, then the section "search-speed" of docs/benchmarks.md (only
from the searches of this run; ``--report-only`` rewrites it from the saved files).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_writer import write_section  # noqa: E402

from toy_data import sample_2d  # noqa: E402
from ucgm_lab import SearchSpace, recommended_settings, sample, search_sampler  # noqa: E402
from ucgm_lab.peers.diffusers_solvers import diffusers_sample  # noqa: E402
from ucgm_lab.search import SlicedW2  # noqa: E402
from ucgm_lab.zoo import load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "search_speed"
NFES = [4, 8, 16]


def run(which: str, zm, metric, full_max_seconds: float | None = None) -> dict:
    lam = zm.consistency_ratio
    if which == "full":
        ref = sample_2d(zm.dataset, 4000 * 16, seed=30_000).points
        kwargs = {"num_samples": 4000, "validation_streams": 4, "max_seconds": full_max_seconds}
    else:
        ref = sample_2d(zm.dataset, 2000 * 16, seed=30_000).points
        kwargs = {
            "num_samples": 2000,
            "validation_streams": 2,
            "space": SearchSpace.fast(lam),
            "consistency_ratio": lam,
        }
    load1 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    found = search_sampler(
        zm.model, zm.transport, ref, nfe=NFES, metric=metric, seed=1, progress=False, **kwargs
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall": wall,
        "cpu": cpu,
        "trials": found.trials,
        "stopped_early": found.stopped_early,
        "max_seconds": kwargs.get("max_seconds"),
        "load": [load1, os.getloadavg()[0]],
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "settings": {b.budget: b.settings.describe() for b in found.budgets},
        "kwargs": {b.budget: b.settings for b in found.budgets},
    }


def row(which: str, r: dict | None) -> str:
    """One table row of a search (or "not measured")."""
    if r is None:
        return f"| {which} | not measured in this run | | | | | | |"
    label = which
    if r.get("max_seconds") is not None:
        if r["stopped_early"]:
            label = f"{which} (cut: `max_seconds={r['max_seconds']:g}`, stopped early)"
        else:
            label = f"{which} (`max_seconds={r['max_seconds']:g}` not reached: complete)"
    if r.get("when"):
        label += f", ended {r['when']} UTC"
    cells = " | ".join(f"{v:.4f}" for v in r["held_out"])
    load_text = f"{r['load'][0]:.1f}-{r['load'][1]:.1f}"
    return f"| {label} | {r['wall']:.0f} | {r['cpu']:.0f} | {load_text} | {r['trials']} | {cells} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="checkerboard-linear-lam0")
    parser.add_argument("--which", default="fast,full")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--full-max-seconds",
        type=float,
        default=None,
        help="max_seconds (wall) of the full search; the table says it was cut",
    )
    args = parser.parse_args(argv)
    if args.full_max_seconds is not None and not args.full_max_seconds > 0:
        parser.error(f"--full-max-seconds must be positive, got {args.full_max_seconds}")
    which_list = [] if args.report_only else args.which.split(",")
    unknown = set(which_list) - {"fast", "full"}
    if unknown:
        parser.error(f"--which takes fast and/or full, got {sorted(unknown)}")
    torch.set_num_threads(1)
    zm = load(args.model)
    metric = SlicedW2(256, seed=0)
    noise = torch.randn(10000, 2, generator=torch.Generator().manual_seed(7))
    held = sample_2d(zm.dataset, 80000, seed=10_000).points
    OUT.mkdir(parents=True, exist_ok=True)
    measured: dict[str, dict] = {}
    for which in which_list:
        rec = run(which, zm, metric, args.full_max_seconds if which == "full" else None)
        scores = []
        for n in NFES:
            out = sample(
                zm.model,
                noise,
                zm.transport,
                generator=torch.Generator().manual_seed(99),
                **rec["kwargs"][n].as_kwargs(),
            )
            scores.append(metric(out.sample, held))
        rec["held_out"] = scores
        del rec["kwargs"]
        (OUT / f"{args.model}-{which}.json").write_text(json.dumps(rec, indent=1))
        measured[which] = rec
        print(which, rec, flush=True)
    if args.report_only:  # the saved files of an earlier run
        for which in ("full", "fast"):
            path = OUT / f"{args.model}-{which}.json"
            if path.exists():
                measured[which] = json.loads(path.read_text())
    base = {}
    lam = zm.consistency_ratio
    gen = torch.Generator().manual_seed(99)
    base["recommended (no search)"] = [
        metric(
            sample(
                zm.model, noise, zm.transport, generator=gen,
                **recommended_settings(n, lam, zm.transport).as_kwargs(),
            ).sample,
            held,
        )
        for n in NFES
    ]  # fmt: skip
    for label, key in (("DPM-Solver++ 2M", "dpm++2m"), ("UniPC", "unipc")):
        base[label] = [
            metric(diffusers_sample(zm.model, noise, zm.transport, n, key).sample, held)
            for n in NFES
        ]
    lines = [
        f"## The sampler-settings search: full against fast ({args.model}, NFE 4, 8, 16)",
        "",
        "Held-out sliced W2 (10000 points against 80000 data points, one held-out noise); "
        "search times of this process (wall and CPU; the machine is shared, compare CPU), "
        "both searches in this run, one after the other; load: the 1-minute load average "
        "before and after each search.",
        "",
        "| search | wall s | CPU s | load (1 min) | settings tried | NFE 4 | NFE 8 | NFE 16 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for which in ("full", "fast"):
        lines.append(row(which, measured.get(which)))
    for label, values in base.items():
        lines.append(f"| {label} | | | | | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    if "full" in measured and "fast" in measured:
        ratios = [
            f / g
            for f, g in zip(measured["fast"]["held_out"], measured["full"]["held_out"], strict=True)
        ]
        lines += [
            "",
            "Fast against full, held-out W2 ratio at NFE 4, 8, 16: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; CPU time {measured['fast']['cpu'] / measured['full']['cpu']:.2f}x, wall time "
            f"{measured['fast']['wall'] / measured['full']['wall']:.2f}x of the full search's.",
        ]
    text = "\n".join(lines)
    print(text)
    command = "python benchmarks/search_speed.py"
    if args.full_max_seconds is not None:
        command += f" --full-max-seconds {args.full_max_seconds:g}"
    if args.report_only:
        command += " --report-only"
    write_section("search-speed", text, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
