"""The zoo's stored sampler settings against the plain multistep step, over independent draws.

For each zoo model and budget N this samples, on ``--draws`` independent noises (and
fresh-noise streams) of ``--samples`` points, with

* the stored searched settings (``ZooModel.settings(nfe=N)``, ``ucgm_lab/zoo/sampler_settings.json``),
* the plain two-step Adams-Bashforth velocity step on the default grid
  (``sample(steps=N, multistep="velocity")``, docs/paper-notes.md F7),
* ``sample``'s defaults at 100 steps (the reference quality, as in
  ``benchmarks/sampler_frontier.py``),

and prints, per model and budget, the mean +- sd over the draws of the sliced W2 to a reference
``--reference-factor`` times larger (drawn from the model's data set) divided by the 100-step
figure of the same draw. The draws use seeds of their own (10_000 + r), not those of the
search (``python -m ucgm_lab.zoo search-settings``), so the stored settings are scored on noise
they were not chosen on.

Run: ``python benchmarks/zoo_sampler_settings.py`` (defaults: checkerboard-linear-lam0 and
moons-linear-lam0 at 8 NFE, 5 draws of 10000 points; a few seconds per model and budget).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy_data import sample_2d  # noqa: E402
from ucgm_lab import sample  # noqa: E402
from ucgm_lab.search import SlicedW2  # noqa: E402
from ucgm_lab.zoo import load  # noqa: E402
from ucgm_lab.zoo.settings import load_settings_file  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="checkerboard-linear-lam0,moons-linear-lam0")
    parser.add_argument("--nfes", default="8", help="comma-separated budgets")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--reference-factor", type=int, default=8)
    parser.add_argument(
        "--settings", type=Path, default=None, help="settings file (default: the package's)"
    )
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.nfes = [int(v) for v in args.nfes.split(",") if v.strip()]
    if args.draws < 2 or args.samples < 2 or args.reference_factor < 1:
        parser.error("--draws and --samples must be at least 2, --reference-factor at least 1")
    return args


def mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    metric = SlicedW2(256, seed=0)
    stored_file = load_settings_file(args.settings) if args.settings is not None else None

    def stored(zm, nfe: int) -> dict:
        if stored_file is None:
            return zm.settings(nfe)
        if nfe not in stored_file.get(zm.name, {}):
            raise SystemExit(f"{args.settings} has no settings for {zm.name} at {nfe} NFE.")
        return dict(stored_file[zm.name][nfe])

    print(
        f"sliced W2 / sample's defaults at 100 steps, {args.draws} draws of {args.samples} "
        f"points, reference {args.reference_factor}x larger\n"
    )
    print("| model | NFE | stored searched settings | multistep velocity, default grid |")
    print("|---|---|---|---|")
    for name in args.models:
        zm = load(name)
        reference = sample_2d(
            zm.dataset, args.samples * args.reference_factor, seed=50_000
        ).points.to(torch.float32)
        for nfe in args.nfes:
            searched, plain = [], []
            for r in range(args.draws):
                gen = torch.Generator().manual_seed(10_000 + r)
                noise = torch.randn(args.samples, *zm.data_shape, generator=gen)
                target = metric(sample(zm.model, noise, zm.transport, steps=100).sample, reference)
                fresh = torch.Generator().manual_seed(20_000 + r)
                out = sample(zm.model, noise, zm.transport, generator=fresh, **stored(zm, nfe))
                assert out.nfe == nfe, (name, nfe, out.nfe)
                searched.append(metric(out.sample, reference) / target)
                out = sample(zm.model, noise, zm.transport, steps=nfe, multistep="velocity")
                plain.append(metric(out.sample, reference) / target)
            cells = []
            for values in (searched, plain):
                mean, sd = mean_sd(values)
                cells.append(
                    f"{mean:.3f}x +- {sd:.3f} (" + ", ".join(f"{v:.2f}" for v in values) + ")"
                )
            print(f"| {name} | {nfe} | " + " | ".join(cells) + " |")
        print(f"  {name} at {args.nfes}: " + "; ".join(str(stored(zm, n)) for n in args.nfes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
