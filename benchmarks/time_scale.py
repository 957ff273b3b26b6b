"""Few-step quality against the network's time scale, raw and wrapped in ``TimeScaled`` (issue 13).

A user's network: a 4-layer SiLU MLP (width 128, the demo's size) whose time features are
sin / cos of t times 16 frequencies spaced geometrically from 1 to S (S = 1: all 1). For each
time scale S in {1, 30, 1000}, raw and (for 1 and 1000) wrapped in ``TimeScaled`` so that the
largest frequency becomes 30, the script trains a multi-step model (lambda = 0, the demo's
3000 steps) and a few-step model from it (lambda = 1, 1500 steps). The library's ``MLP2D`` with
a DDPM-style embedding of 1000 t is run the same way, raw and wrapped at 0.03 (which makes it
the demo's network). The script reports exact W2 to held-out data (2000 samples) for

* lambda = 0 at 100 NFE (the sampler's default grid) and at 2 NFE,
* lambda = 1 at 1 and 2 NFE (time points {0.999} and {0.999, 0.5}, rho = 1, as the demo),
* the ratios lambda = 1 / lambda = 0 at 100 NFE, all from the same run,
* the sensitivity check (``ucgm_lab.time_sensitivity``) on the lambda = 0 parent and whether
  the objective's warning fired before the first lambda = 1 step.

Run (the default rows, one thread: a few CPU-minutes, about a minute of CPU per row; the
section states the wall and CPU time of its run; ``--configs`` picks rows):
``nice -n 10 python benchmarks/time_scale.py [--datasets checkerboard moons]``; with
``--write-docs`` the table becomes the section ``time-scale`` of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ucgm_lab import sample
from ucgm_lab.demo import few_step_time_points
from ucgm_lab.metrics import metric_floor, wasserstein2
from ucgm_lab.networks import MLP2D, TimeScaled
from ucgm_lab.recipes import ToyRecipe, train_toy
from ucgm_lab.time_sensitivity import TimeSensitivityWarning, time_sensitivity

CONFIGS: dict[str, tuple[str, float, float | None]] = {
    "S=1 raw": ("fourier", 1.0, None),
    "S=30 raw": ("fourier", 30.0, None),
    "S=1000 raw": ("fourier", 1000.0, None),
    "S=1 wrapped x30": ("fourier", 1.0, 30.0),
    "S=1000 wrapped x0.03": ("fourier", 1000.0, 0.03),
    "MLP2D S=1000 raw": ("mlp2d", 1000.0, None),
    "MLP2D S=1000 wrapped x0.03": ("mlp2d", 1000.0, 0.03),
}
"""name -> (network, time scale S, TimeScaled factor or None). "fourier" is ``FourierMLP``;
"mlp2d" is the library's ``MLP2D`` (width 128, depth 4) with a DDPM-style embedding of S t:
wrapped at 0.03 it computes what the demo's ``MLP2D(time_scale=30)`` computes."""


class FourierMLP(nn.Module):
    """A network a user might bring: sin / cos features of t at 16 frequencies from 1 to S."""

    def __init__(self, scale: float, hidden: int = 128, depth: int = 4, features: int = 16) -> None:
        super().__init__()
        freqs = (
            torch.logspace(0.0, math.log10(scale), features) if scale > 1 else torch.ones(features)
        )
        self.register_buffer("freqs", freqs)
        layers: list[nn.Module] = [nn.Linear(2 + 2 * features, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        angle = t[:, None].to(x.dtype) * self.freqs
        return self.net(torch.cat([x, angle.sin(), angle.cos()], dim=1))


def run_config(
    name: str, dataset: str, steps: int, few_steps: int, reference: Tensor, seed: int
) -> dict[str, float | str | bool]:
    from toy_data import sample_2d

    kind, scale, factor = CONFIGS[name]
    torch.manual_seed(seed)
    net: nn.Module = (
        FourierMLP(scale) if kind == "fourier" else MLP2D(hidden=128, depth=4, time_scale=scale)
    )
    if factor is not None:
        net = TimeScaled(net, factor)
    recipe0 = ToyRecipe(dataset=dataset, steps=steps, seed=seed)
    start = time.perf_counter()
    multi = train_toy(recipe0, init=net, progress=False, device="cpu")
    parent = multi.trainer.unwrapped_model
    check_data = sample_2d(dataset, 256, seed=seed + 7).points
    sens = time_sensitivity(parent, check_data, "linear")
    recipe1 = recipe0.with_(consistency_ratio=1.0, steps=few_steps, seed=seed + 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        few = train_toy(recipe1, init=parent, progress=False, device="cpu")
    fired = any(issubclass(w.category, TimeSensitivityWarning) for w in caught)
    seconds = time.perf_counter() - start
    n = reference.shape[0]
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))

    def w2(model: nn.Module, **kwargs: object) -> float:
        gen = torch.Generator().manual_seed(seed + 1)
        return wasserstein2(
            sample(model, noise, "linear", generator=gen, **kwargs).sample, reference
        )

    lam0_100 = w2(multi.model, steps=100)
    lam0_2 = w2(multi.model, steps=2)
    lam1_1 = w2(few.model, time_points=few_step_time_points(1), rho=1.0)
    lam1_2 = w2(few.model, time_points=few_step_time_points(2), rho=1.0)
    return {
        "config": name,
        "dataset": dataset,
        "r_parent": sens.relative_change,
        "warned": fired,
        "lam0_100": lam0_100,
        "lam0_2": lam0_2,
        "lam1_1": lam1_1,
        "lam1_2": lam1_2,
        "ratio_1": lam1_1 / lam0_100,
        "ratio_2": lam1_2 / lam0_100,
        "seconds": seconds,
    }


def main() -> None:
    from toy_data import sample_2d

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["checkerboard"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=3000, help="lambda = 0 steps (demo: 3000)")
    parser.add_argument("--few-step-steps", type=int, default=1500, help="lambda = 1 steps")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--write-docs", action="store_true", help="write the table into docs/benchmarks.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import machine_info

    machine = machine_info()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    rows = []
    table = [
        "| data | network | r (check) | warned | lambda=0 @100 | lambda=0 @2 | lambda=1 @1 "
        "| lambda=1 @2 | ratio @1 | ratio @2 | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(table))
    for dataset in args.datasets:
        reference = sample_2d(dataset, args.samples, seed=args.seed + 99).points
        for name in args.configs:
            row = run_config(name, dataset, args.steps, args.few_step_steps, reference, args.seed)
            rows.append(row)
            table.append(
                f"| {dataset} | {name} | {row['r_parent']:.3f} | {'yes' if row['warned'] else 'no'} "
                f"| {row['lam0_100']:.3f} | {row['lam0_2']:.3f} | {row['lam1_1']:.3f} "
                f"| {row['lam1_2']:.3f} | {row['ratio_1']:.2f} | {row['ratio_2']:.2f} "
                f"| {row['seconds']:.0f} |"
            )
            print(table[-1], flush=True)
        floor = metric_floor(
            "w2",
            lambda n, seed, d=dataset: sample_2d(d, n, seed=seed).points,
            args.samples,
            repeats=3,
            seed=args.seed + 1000,
        )
        table.append(f"| {dataset} | floor (data vs data) | | | {floor.mean:.3f} | | | | | | |")
        print(table[-1], flush=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"run: {wall / 60:.1f} min, {cpu / 60:.1f} min of CPU", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    if args.write_docs:
        from docs_writer import write_section

        title = (
            "## Your own network: few-step quality against its time scale\n\n"
            f"lambda = 0 ({args.steps} steps) then lambda = 1 from it ({args.few_step_steps} "
            f"steps); exact W2 at {args.samples} samples (lower is better); ratio = lambda = 1 "
            "over lambda = 0 at 100 NFE; r: the time-sensitivity check on the lambda = 0 parent "
            "(warning above 0.05); s: seconds per row. The whole run took "
            f"{wall / 60:.1f} min, {cpu / 60:.1f} min of CPU.\n\n"
        )
        # the command that measures it again (where the JSON copy goes does not matter)
        argv, shown = sys.argv[1:], []
        while argv:
            arg = argv.pop(0)
            if arg == "--json":
                argv = argv[1:]
            elif not arg.startswith("--json="):
                shown.append(arg)
        command = shlex.join(["python", "benchmarks/time_scale.py", *shown])
        write_section(
            "time-scale",
            title + "\n".join(table),
            command=command.strip(),
            machine=machine.finish(),
        )


if __name__ == "__main__":
    main()
