"""The image metric for any shape (``ImageFrechet``): does it separate quality levels? Its floor.

Issue 30. Scores, with the Frechet distance in fixed random CNN features
(``ucgm_lab.metrics.ImageFrechet``; reference: the digits train split, 1438 images):

* the zoo's multi-step digits model (lambda = 0) at 1, 2, 4 and 100 NFE (default grid, rho 0),
* the zoo's few-step digits model (lambda = 1) at 1, 2 and 4 NFE (rho 1),
* Gaussian noise (the worst case) and the held-out test split (the floor: real digits),

every model on n = 359 samples (the test split's size, its labels as classes), several noise
seeds; and the same on 16x16 images (the digits upsampled by 2, the reference too) to show the
metric takes any shape. Beside it, W2 on the flattened pixels (POT's exact W2), which issue 30
found unable to tell 1 NFE from 100 on 16x16 images.

Run: ``nice -n 10 python benchmarks/image_metric.py [--seeds 0 1] [--write]`` (about a minute
on an idle 2-core CPU); ``--write`` replaces the section "image-metric" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as torch_f

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.docs_writer import write_section  # noqa: E402
from benchmarks.harness import machine_info  # noqa: E402
from ucgm_lab import sample  # noqa: E402
from ucgm_lab.data import load_image_data  # noqa: E402
from ucgm_lab.metrics import ImageFrechet, wasserstein2  # noqa: E402
from ucgm_lab.zoo import load  # noqa: E402

ROWS = (
    ("digits-linear-lam0", "lambda=0", (1, 2, 4, 100), 0.0),
    ("digits-linear-lam1", "lambda=1, rho=1", (1, 2, 4), 1.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = machine_info()
    start = time.perf_counter()
    train, test = load_image_data("digits", "train"), load_image_data("digits", "test")
    n = test.images.shape[0]

    def up(x: torch.Tensor) -> torch.Tensor:
        return torch_f.interpolate(x, scale_factor=2, mode="nearest")

    metrics = {"8x8": ImageFrechet(train.images), "16x16": ImageFrechet(up(train.images))}
    scores: dict[tuple[str, str], list[float]] = {}

    def score(name: str, images: torch.Tensor) -> None:
        scores.setdefault((name, "8x8"), []).append(metrics["8x8"].distance(images))
        scores.setdefault((name, "16x16"), []).append(metrics["16x16"].distance(up(images)))
        flat = wasserstein2(up(images).flatten(1), up(test.images).flatten(1))
        scores.setdefault((name, "w2"), []).append(flat)

    for seed in args.seeds:
        noise = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        for zoo_name, label, nfes, rho in ROWS:
            zm = load(zoo_name)
            for nfe in nfes:
                out = sample(
                    zm.model, noise, zm.transport, nfe, y=test.labels, rho=rho,
                    generator=torch.Generator().manual_seed(seed + 1),
                )  # fmt: skip
                score(f"{label} @ {nfe} NFE", out.sample)
            print(seed, zoo_name, flush=True)
        score(
            "noise N(0, I)",
            torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(99 + seed)),
        )
    floor8 = metrics["8x8"].distance(test.images)
    floor16 = metrics["16x16"].distance(up(test.images))
    minutes = (time.perf_counter() - start) / 60

    def cell(name: str, kind: str) -> str:
        values = scores[(name, kind)]
        spread = f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):.3f}{spread}"

    names = list(dict.fromkeys(k[0] for k in scores))
    lines = [
        "## A metric for images of any shape (`ImageFrechet`)",
        "",
        f"Run time {minutes:.0f} min. Frechet distance in the "
        "features of a fixed random CNN (seed 0, no trained or downloaded weights) against the "
        f"digits train split (1438 images), n = {n} samples per score (the test split's size and "
        f"labels), mean +- std over noise seeds {', '.join(map(str, args.seeds))}. 16x16: the "
        "same samples and reference upsampled by 2 (nearest). Flat W2: exact W2 between the "
        "flattened 16x16 images and the test split. Lower is better.",
        "",
        "| samples | ImageFrechet 8x8 | ImageFrechet 16x16 | flat W2 16x16 |",
        "|---|---|---|---|",
    ]
    for name in names:
        lines.append(
            f"| {name} | {cell(name, '8x8')} | {cell(name, '16x16')} | {cell(name, 'w2')} |"
        )
    lines.append(
        f"| floor: the held-out test split (real) | {floor8:.3f} | {floor16:.3f} | 0 (itself) |"
    )
    lam0 = [statistics.fmean(scores[(f"lambda=0 @ {k} NFE", "8x8")]) for k in (1, 2, 4, 100)]
    flat = [statistics.fmean(scores[(f"lambda=0 @ {k} NFE", "w2")]) for k in (1, 2, 4, 100)]
    ordered = all(a > b for a, b in zip(lam0, lam0[1:], strict=False))
    noise8 = statistics.fmean(scores[("noise N(0, I)", "8x8")])
    lines += [
        "",
        f"ImageFrechet {'orders' if ordered else 'does not order'} the multi-step model 1 > 2 > 4 "
        f"> 100 NFE ({' > '.join(f'{v:.2f}' for v in lam0)}); from 1 to 100 NFE it falls by "
        f"{lam0[0] / lam0[3]:.1f}x, flat W2 by {flat[0] / flat[3]:.2f}x. Noise scores "
        f"{noise8 / floor8:.0f}x the floor. Scores depend on n: compare models and the floor at "
        "one n.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        print("wrote", write_section(
            "image-metric", text, command="python benchmarks/image_metric.py --write",
            machine=machine.finish(),
        ))  # fmt: skip


if __name__ == "__main__":
    main()
