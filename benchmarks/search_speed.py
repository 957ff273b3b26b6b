"""The sampler-settings search: today's full search against the fast one, time and quality.

On one model (default: the zoo's ``checkerboard-linear-lam0``) and three budgets (4, 8, 16 NFE):

* ``full``: ``search_sampler`` with the default :class:`~ucgm_lab.SearchSpace`, 4000 selection
  points against a reference 16 times larger, 4 validation streams (what
  ``benchmarks/sampler_frontier.py`` runs);
* ``fast``: ``SearchSpace.fast(lambda)`` started from :func:`ucgm_lab.recommended_settings`
  (``consistency_ratio=lambda``), 2000 selection points, 2 validation streams (no
  ``max_seconds``: on a loaded machine a wall-time budget would cut the search short, and the
  CPU time is the figure to compare).

Both are timed (wall and CPU time of this process; the machine is shared, so compare CPU
times) and their settings scored on one held-out noise of 10000 points against 80000 data
points, beside the recommendation and diffusers' DPM-Solver++ 2M and UniPC.

Run: ``python benchmarks/search_speed.py [--which fast,full]``; results in
``runs/search_speed/*.json``, then the section "search-speed" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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


def run(which: str, zm, metric) -> dict:
    lam = zm.consistency_ratio
    if which == "full":
        ref = sample_2d(zm.dataset, 4000 * 16, seed=30_000).points
        kwargs = {"num_samples": 4000, "validation_streams": 4}
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
        "load": [load1, os.getloadavg()[0]],
        "settings": {b.budget: b.settings.describe() for b in found.budgets},
        "kwargs": {b.budget: b.settings for b in found.budgets},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="checkerboard-linear-lam0")
    parser.add_argument("--which", default="fast,full")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    zm = load(args.model)
    metric = SlicedW2(256, seed=0)
    noise = torch.randn(10000, 2, generator=torch.Generator().manual_seed(7))
    held = sample_2d(zm.dataset, 80000, seed=10_000).points
    OUT.mkdir(parents=True, exist_ok=True)
    for which in [] if args.report_only else args.which.split(","):
        rec = run(which, zm, metric)
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
        print(which, rec, flush=True)
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
        "search times of this process (wall and CPU; the machine is shared, compare CPU).",
        "",
        "| search | wall s | CPU s | load (1 min) | settings tried | NFE 4 | NFE 8 | NFE 16 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for which in ("full", "fast"):
        path = OUT / f"{args.model}-{which}.json"
        if not path.exists():
            lines.append(f"| {which} | not measured in this run | | | | | | |")
            continue
        r = json.loads(path.read_text())
        cells = " | ".join(f"{v:.4f}" for v in r["held_out"])
        load_text = f"{r['load'][0]:.1f}-{r['load'][1]:.1f}"
        lines.append(
            f"| {which} | {r['wall']:.0f} | {r['cpu']:.0f} | {load_text} | {r['trials']} | {cells} |"
        )
    for label, values in base.items():
        lines.append(f"| {label} | | | | | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    text = "\n".join(lines)
    print(text)
    write_section("search-speed", text, command="python benchmarks/search_speed.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
