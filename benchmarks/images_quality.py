"""Digits metric versus NFE for the digits zoo (lambda = 0, 0.5, 1) with kappa / rho variants.

Every point samples the test split's labels (359 images) from the same noise and scores the
samples with the digits metric (a Frechet distance in the digits classifier's feature space,
lower is better; the floor is the test split itself). Times are the even grid
``t = 0.999, 1 - 1/N, ..., 1/N`` unless the label says "uniform schedule".

Run: ``python benchmarks/images_quality.py [--nfe 1 2 4 8 16 32] [--seeds 0 1 2]``; prints a
markdown table (mean over the seeds, and the spread when there are several).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ucgm_lab.evaluation import DIGITS_METRIC as METRIC_NAME
from ucgm_lab.evaluation import quality_vs_nfe
from ucgm_lab.metrics.digits import digits_frechet
from ucgm_lab.schedules import even_time_points
from ucgm_lab.zoo import DIGITS_DIR, load

CURVES = [
    # (label, zoo model, sampler settings, even grid?)
    ("lambda=0", "digits-linear-lam0", {}, True),
    ("lambda=0, uniform schedule", "digits-linear-lam0", {}, False),
    ("lambda=0, kappa=0.25", "digits-linear-lam0", {"kappa": 0.25}, True),
    ("lambda=0, kappa=0.5", "digits-linear-lam0", {"kappa": 0.5}, True),
    ("lambda=0, rho=0.5", "digits-linear-lam0", {"rho": 0.5}, True),
    ("lambda=0.5, rho=0", "digits-linear-lam0.5", {}, True),
    ("lambda=0.5, rho=0.5", "digits-linear-lam0.5", {"rho": 0.5}, True),
    ("lambda=1, rho=0", "digits-linear-lam1", {}, True),
    ("lambda=1, rho=1", "digits-linear-lam1", {"rho": 1.0}, True),
    ("lambda=1, rho=1, kappa=0.5", "digits-linear-lam1", {"rho": 1.0, "kappa": 0.5}, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nfe", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="curve labels to run (default: all)")
    parser.add_argument(
        "--zoo", default=str(DIGITS_DIR), help="zoo folder (default: the package's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    metric = digits_frechet(args.zoo)
    floor = metric.floor().mean
    models = {}
    rows = []
    for label, name, settings, even in CURVES:
        if args.only and label not in args.only:
            continue
        zm = models.setdefault(name, load(name, args.zoo))
        per_seed = []
        for seed in args.seeds:
            points = quality_vs_nfe(
                zm.model, zm.transport, metric, args.nfe, label=label, seed=seed,
                time_points_for=even_time_points if even else None, **settings,
            )  # fmt: skip
            per_seed.append([p.metrics[METRIC_NAME] for p in points])
        rows.append((label, per_seed))
        print(f"done {label} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(
        f"\nDigits metric (Frechet distance in classifier features, {metric.num_samples} samples) vs NFE;"
    )
    print(f"floor (test split vs train split) = {floor:.2f}; seeds {args.seeds}.\n")
    print("| curve | " + " | ".join(f"NFE {n}" for n in args.nfe) + " |")
    print("|---|" + "---|" * len(args.nfe))
    for label, per_seed in rows:
        cells = []
        for j in range(len(args.nfe)):
            values = [s[j] for s in per_seed]
            mean = statistics.mean(values)
            cells.append(
                f"{mean:.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")
            )
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
