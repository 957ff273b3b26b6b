"""Digits metric versus NFE for the digits zoo (lambda = 0, 0.5, 1) with kappa / rho variants.

Every point samples the test split's labels (359 images) from the same noise and scores the
samples with the digits metric (a Frechet distance in the digits classifier's feature space,
lower is better; the floor is the test split itself). Times are the even grid
``t = 0.999, 1 - 1/N, ..., 1/N`` unless the label says "uniform schedule": the reference
implementation's grid, N points from 0.999 to 0.001 (``schedule="uniform"``), whose last
evaluation at t = 0.001 has almost nothing left to do (docs/paper-notes.md, F3).

Run: ``python benchmarks/images_quality.py [--nfe 1 2 4 8 16 32] [--seeds 0 1 2] [--docs]``;
prints a markdown table (mean over the seeds, and the spread when there are several); with
``--docs`` it also writes it into docs/benchmarks.md (section ``digits-quality``, with date,
machine and load; ``benchmarks/docs_writer.py``).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from ucgm_lab.evaluation import DIGITS_METRIC as METRIC_NAME
from ucgm_lab.evaluation import quality_vs_nfe
from ucgm_lab.metrics.digits import digits_frechet
from ucgm_lab.sampler import time_grid
from ucgm_lab.schedules import even_time_points
from ucgm_lab.zoo import DIGITS_DIR, load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_writer import DOCS, write_section  # noqa: E402
from harness import machine_info  # noqa: E402

DOCS_SECTION = "digits-quality"

CURVES = [
    # (label, zoo model, sampler settings, even grid?)
    ("lambda=0", "digits-linear-lam0", {}, True),
    ("lambda=0, uniform schedule", "digits-linear-lam0", {"schedule": "uniform"}, False),
    ("lambda=0, kappa=0.25", "digits-linear-lam0", {"kappa": 0.25}, True),
    ("lambda=0, kappa=0.5", "digits-linear-lam0", {"kappa": 0.5}, True),
    ("lambda=0, rho=0.5", "digits-linear-lam0", {"rho": 0.5}, True),
    ("lambda=0.5, rho=0", "digits-linear-lam0.5", {}, True),
    ("lambda=0.5, rho=0.5", "digits-linear-lam0.5", {"rho": 0.5}, True),
    ("lambda=1, rho=0", "digits-linear-lam1", {}, True),
    ("lambda=1, rho=1", "digits-linear-lam1", {"rho": 1.0}, True),
    ("lambda=1, rho=1, kappa=0.5", "digits-linear-lam1", {"rho": 1.0, "kappa": 0.5}, True),
]


def curve_grid(settings: dict, even: bool, nfe: int) -> torch.Tensor:
    """The time grid a curve of :data:`CURVES` samples at ``nfe`` evaluations.

    Args:
        settings: The curve's sampler settings (``schedule`` and ``order`` matter here).
        even: Whether the curve passes the even grid as explicit time points.
        nfe: Network evaluations.

    Returns:
        The grid that :func:`ucgm_lab.sample` walks, shape (P + 1,), ending at 0.
    """
    points = even_time_points(nfe) if even else None
    return time_grid(
        None if even else nfe, settings.get("order", 1), settings.get("schedule", "even"), points
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nfe", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="curve labels to run (default: all)")
    parser.add_argument(
        "--zoo", default=str(DIGITS_DIR), help="zoo folder (default: the package's)"
    )
    parser.add_argument(
        "--docs",
        nargs="?",
        const=str(DOCS),
        default=None,
        help=f"also write the table into this docs file (default docs/benchmarks.md), section {DOCS_SECTION}",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
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
    shown_zoo = "the package's digits zoo" if Path(args.zoo).resolve() == DIGITS_DIR else args.zoo
    lines = [
        "## Digits: quality versus NFE",
        "",
        f"Digits metric (Frechet distance in the digits classifier's features, "
        f"{metric.num_samples} samples, the test split's labels; lower is better) versus NFE, "
        f"mean over seeds {', '.join(map(str, args.seeds))}"
        + (" (± the standard deviation)" if len(args.seeds) > 1 else "")
        + f"; floor (test split versus train split) {floor:.2f}. Models: {shown_zoo}.",
        "",
        'Every curve samples the even grid t = 0.999, 1 - 1/N, ..., 1/N except "uniform '
        "schedule\": the reference implementation's grid, N points from 0.999 to 0.001, whose "
        "last evaluation at t = 0.001 has almost nothing left to do (docs/paper-notes.md, F3). "
        "At 1 NFE both grids are the one point 0.999, so that column is the same.",
        "",
        "| curve | " + " | ".join(f"NFE {n}" for n in args.nfe) + " |",
        "|---|" + "---|" * len(args.nfe),
    ]
    for label, per_seed in rows:
        cells = []
        for j in range(len(args.nfe)):
            values = [s[j] for s in per_seed]
            mean = statistics.mean(values)
            cells.append(
                f"{mean:.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    print("\n" + "\n".join(lines[2:]))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.docs:
        command = shlex.join(["python", "benchmarks/images_quality.py", *sys.argv[1:]])
        path = write_section(
            DOCS_SECTION, "\n".join(lines), args.docs, command=command, machine=machine.finish()
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
