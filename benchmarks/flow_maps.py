"""UCGM lambda = 1 against MeanFlow on 2D data: quality at 1, 2 and 4 NFE, cost per step,
and the few-step diagnostics of a healthy and a collapsing lambda = 1 run (issue 29).

Both objectives train the same ``MLP2D`` (width 128, depth 4, time scale 30; MeanFlow's copy
has ``flow_map=True``, one more embedding of t - r at the input) from scratch with the same
budget: the same steps, batch, AdamW learning rate, gradient clip and EMA, on the shared
:class:`~ucgm_lab.training.Trainer`. UCGM lambda = 1 is sampled with UCGM-S at the demo's
few-step time points (0.999, then evenly from 0.5) with rho = 1; MeanFlow with the flow-map
sampler z_r = z_t - (t - r) u(z_t, r, t) on 1, 1/2, 0 (and quarters). Quality: exact W2 between
2000 samples and 2000 held-out data points (POT), mean +- standard deviation over the seeds;
the floor is W2 between two independent data draws of that size.

The diagnostics rows train lambda = 1 on the first data set at the comparison's learning rate
and at 30 times it (a run driven to collapse on purpose), logging every tenth of the budget.

Run: ``nice -n 10 python benchmarks/flow_maps.py [--steps 1500 --seeds 0 1 2 --write-docs]``;
with ``--write-docs`` the tables become the section ``flow-maps`` of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from toy_data import sample_2d
from ucgm_lab import sample
from ucgm_lab.demo import few_step_time_points
from ucgm_lab.flow_maps import MeanFlowObjective, flow_map_sample
from ucgm_lab.metrics import wasserstein2
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
NFES = (1, 2, 4)
DIAGNOSTIC_LRS = (2e-4, 3e-3, 3e-2)
"""lambda = 1 from the multi-step model: the recipes' 2e-4, and 15 and 150 times it."""


def _train(kind: str, dataset: str, seed: int, steps: int, lr: float, log_every: int, init=None):
    torch.manual_seed(seed)
    data = sample_2d(dataset, 20000, seed=100 + seed).points
    if init is None:
        model = MLP2D(hidden=128, depth=4, time_scale=30.0, flow_map=kind == "meanflow")
    else:
        model = copy.deepcopy(init).requires_grad_(True).train()
    objective = (
        MeanFlowObjective()
        if kind == "meanflow"
        else UCGMObjective("linear", 1.0, check_time_sensitivity=False)
    )
    logs: list[dict[str, float]] = []
    config = TrainerConfig(
        steps=steps, lr=lr, ema_decay=0.995, progress=False, seed=seed, log_every=log_every
    )
    source = TensorDataSource(data, None, batch_size=256, seed=seed)
    cb = (log_every, lambda tr, step, lg: logs.append({"step": step, **lg}))
    trainer = Trainer(model, objective, source, config, callbacks=[cb])
    start = time.process_time()
    trainer.fit()
    return trainer.ema_model, (time.process_time() - start) / steps, logs


def _samples(kind: str, model, nfe: int, n: int, seed: int) -> torch.Tensor:
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(10_000 + seed))
    if kind == "meanflow":
        return flow_map_sample(model, noise, nfe)
    out = sample(model, noise, "linear", time_points=few_step_time_points(nfe), rho=1.0)
    return out.sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["moons", "checkerboard"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, costs = [], {"ucgm": [], "meanflow": []}
    for dataset in args.datasets:
        held_out = sample_2d(dataset, args.n, seed=999).points
        floor = wasserstein2(sample_2d(dataset, args.n, seed=998).points, held_out)
        for kind in ("ucgm", "meanflow"):
            scores = {k: [] for k in NFES}
            for seed in args.seeds:
                model, cost, _ = _train(kind, dataset, seed, args.steps, args.lr, args.steps)
                costs[kind].append(cost)
                for k in NFES:
                    scores[k].append(wasserstein2(_samples(kind, model, k, args.n, seed), held_out))
                print(
                    dataset, kind, seed, {k: round(v[-1], 4) for k, v in scores.items()}, flush=True
                )
            cells = [
                f"{statistics.mean(v):.3f} +- {statistics.stdev(v) if len(v) > 1 else 0:.3f}"
                for v in scores.values()
            ]
            name = "UCGM lambda = 1" if kind == "ucgm" else "MeanFlow"
            rows.append(f"| {dataset} | {name} | " + " | ".join(cells) + f" | {floor:.3f} |")
    ratio = statistics.median(costs["meanflow"]) / statistics.median(costs["ucgm"])
    header = "| data | objective | W2 at 1 NFE | 2 NFE | 4 NFE | floor |\n|---|---|---|---|---|---|"
    table = header + "\n" + "\n".join(rows)
    cost_line = (
        f"CPU time per training step (batch 256, one thread, median over runs): UCGM lambda = 1 "
        f"{1e3 * statistics.median(costs['ucgm']):.1f} ms, MeanFlow "
        f"{1e3 * statistics.median(costs['meanflow']):.1f} ms, ratio {ratio:.2f}."
    )
    diag_rows = []
    from ucgm_lab.zoo import load

    parent = load(f"{args.datasets[0]}-linear-lam0")
    held_out = sample_2d(args.datasets[0], args.n, seed=999).points
    for lr in DIAGNOSTIC_LRS:
        every = max(1, args.steps // 10)
        model, _, logs = _train(
            "ucgm", args.datasets[0], 0, args.steps, lr, every, init=parent.model
        )
        w2 = [wasserstein2(_samples("ucgm", model, k, args.n, 0), held_out) for k in (1, 2)]
        for lg in logs[:: max(1, len(logs) // 5)] + logs[-1:]:
            diag_rows.append(
                f"| {lr:g} | {w2[0]:.3f} / {w2[1]:.3f} | {lg['step']} | {lg['loss']:.3g} | "
                f"{lg['few_step/teacher_gap']:.3g} | {lg['few_step/difference_rms']:.3g} | "
                f"{lg['few_step/clipped_fraction']:.3f} | {lg['few_step/ema_drift']:.3g} |"
            )
    diag = (
        "| lr | final W2 at 1 / 2 NFE | step | loss | teacher gap | difference RMS | "
        "clipped fraction | EMA drift |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(diag_rows)
    )
    text = (
        "## Flow maps: UCGM lambda = 1 against MeanFlow\n\n"
        f"`benchmarks/flow_maps.py`: the same MLP2D trained from scratch by each objective, "
        f"{args.steps} steps, batch 256, AdamW lr {args.lr:g}, EMA 0.995, seeds "
        f"{', '.join(map(str, args.seeds))}; exact W2 of {args.n} samples to held-out data, "
        "mean +- standard deviation over the seeds.\n\n" + table + "\n\n" + cost_line + "\n\n"
        f"Few-step diagnostics (`ucgm_lab.training.diagnostics`) of UCGM lambda = 1 started "
        f"from the zoo's multi-step `{args.datasets[0]}-linear-lam0` model (the two-stage "
        f"recipe), {args.steps} steps, seed 0, at the recipes' few-step learning rate and at "
        "higher ones (pushed towards collapse on purpose); the final model's W2 at 1 / 2 NFE "
        "beside the logged values. Teacher gap: RMS of F_theta - F of the starting model; "
        "difference RMS: Alg. 1's Delta f^x before the clip; clipped fraction: its entries "
        "beyond the clip 1; EMA drift: relative distance of the EMA weights from the start.\n\n"
        + diag
        + "\n"
    )
    print(text)
    if args.write_docs:
        from docs_writer import write_section

        write_section(
            "flow-maps", text, command=shlex.join(["python", "benchmarks/flow_maps.py", *sys.argv[1:]])
        )


if __name__ == "__main__":
    main()
