"""Per-class quality of the class-conditional zoo models: stored searched settings vs defaults.

For each class-conditional 2D zoo model and each budget stored in
``ucgm_lab/zoo/sampler_settings.json`` this samples, on held-out noise (seeds the search never
used; balanced labels, sample i of class i mod K):

* before: ``zm.sample(labels, steps=nfe)`` (the recommended settings with ``steps = nfe``:
  what ``zm.sample(labels, nfe=nfe)`` gave before the search stored anything);
* after: ``zm.sample(labels, nfe=nfe)`` (the stored settings, guidance included);
* for a stored entry with guidance, the same settings without guidance (fewer NFE);

and prints a markdown table per model: the search's metric (mean over classes of the
per-class sliced W2, :class:`~ucgm_lab.metrics.classes.ClassSlicedW2`, against a class-ordered
held-out reference 16x larger per class; mean +- sd over ``--draws`` noise draws) and, on the
first draw, notebook 13's class scores (:func:`~ucgm_lab.metrics.classes.class_metrics`:
exact per-class W2, class accuracy, class spread). The last row is the defaults at 128 NFE,
the model's converged level.

Run: ``python benchmarks/conditional_zoo_settings.py`` (about 1 CPU minute); ``--quick`` is a
smoke run.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch

from ucgm_lab.metrics.classes import (
    ClassSlicedW2,
    balanced_labels,
    class_metrics,
    class_ordered_points,
)
from ucgm_lab.zoo import ZOO_SPECS, available, load
from ucgm_lab.zoo.settings import load_settings_file

SEEDS = (1001, 2002, 3003, 4004, 5005)
"""Noise seeds of the held-out draws (the search draws its noises from seed 0)."""


def conditional_models() -> list[str]:
    """The class-conditional 2D zoo models whose checkpoint exists."""
    have = set(available())
    return [
        s.name
        for s in ZOO_SPECS
        if s.name in have and s.recipe.kind == "points" and s.recipe.conditional
    ]


def score(zm: Any, labels: torch.Tensor, reference: torch.Tensor, draws: int, **kwargs: Any):
    """(NFE, mean and sd of the per-class sliced W2 over the draws, class_metrics of draw 1)."""
    metric = ClassSlicedW2(zm.num_classes)
    values, first = [], None
    for seed in SEEDS[:draws]:
        out = zm.sample(labels, seed=seed, **kwargs)
        values.append(metric(out.sample, reference))
        first = first or out
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    scores = class_metrics(first.sample, labels, zm.dataset, seed=7)
    return first.nfe, statistics.mean(values), sd, scores


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1000, help="samples per class")
    parser.add_argument("--draws", type=int, default=3, help=f"noise draws (at most {len(SEEDS)})")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 per class, 2 draws")
    args = parser.parse_args()
    per_class, draws = (50, 2) if args.quick else (args.per_class, args.draws)
    if not 1 <= draws <= len(SEEDS) or per_class < 2:
        parser.error(f"need 1 <= --draws <= {len(SEEDS)} and --per-class >= 2")
    torch.set_num_threads(1)
    table = load_settings_file()
    for name in conditional_models():
        zm = load(name)
        labels = balanced_labels(zm.num_classes, per_class * zm.num_classes)
        reference = class_ordered_points(zm.dataset, per_class * 16, seed=50_000)
        print(f"\n## {name}\n")
        print(
            "| budget | settings | NFE | per-class sliced W2 (mean +- sd) "
            "| class W2 (exact) | accuracy | spread |"
        )
        print("|---|---|---|---|---|---|---|")
        rows: list[tuple[int | str, str, dict[str, Any]]] = []
        for nfe, entry in sorted(table.get(name, {}).items()):
            rows.append((nfe, "defaults (before)", {"steps": nfe}))
            rows.append((nfe, "searched (after)", {"nfe": nfe}))
            if entry.get("guidance_scale", 1.0) != 1.0:
                plain = {k: v for k, v in entry.items() if not k.startswith("guidance")}
                rows.append((nfe, "searched, guidance removed", plain))
        rows.append((128, "defaults (converged level)", {"steps": 128}))
        for budget, label, kwargs in rows:
            nfe, mean, sd, m = score(zm, labels, reference, draws, **kwargs)
            print(
                f"| {budget} | {label} | {nfe} | {mean:.4f} +- {sd:.4f} | {m['class_w2']:.4f} "
                f"| {m['class_accuracy']:.3f} | {m['class_spread']:.2f} |"
            )


if __name__ == "__main__":
    main()
