"""Objective overhead: one UCGM-T training step against a hand-written flow-matching step.

Targets: lambda = 0 step / flow-matching step <= 1.05; lambda = 1 step / lambda = 0
step <= 2.0 (ideal about 1.67: two extra no-grad forwards). Run:
``python benchmarks/objective_overhead.py``.
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved_ratio

from ucgm_lab import UCGMObjective
from ucgm_lab.networks import MLP2D, SmallUNet


def make_step(model, loss_fn, x):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model, x).backward()
        opt.step()

    return step


def flow_matching_loss(model, x):
    z = torch.randn_like(x)
    t = torch.rand(x.shape[0])
    tb = t.view(-1, *([1] * (x.ndim - 1)))
    x_t = tb * z + (1 - tb) * x
    return (model(x_t, t) - (z - x)).pow(2).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [
        ("MLP2D, batch 4096", MLP2D(), torch.randn(4096, 2)),
        ("SmallUNet 8x8, batch 64", SmallUNet(1, 8), torch.randn(64, 1, 8, 8)),
    ]
    for name, model, x in cases:
        lam0, lam1 = UCGMObjective("linear", 0.0), UCGMObjective("linear", 1.0)
        step0 = make_step(model, lambda m, b, o=lam0: o(m, b).loss, x)
        step1 = make_step(model, lambda m, b, o=lam1: o(m, b).loss, x)
        fm = make_step(model, flow_matching_loss, x)
        c, b, r = interleaved_ratio(step0, fm)
        print(
            f"{name:26s} lambda=0 step {1e3 * c:7.2f} ms  flow matching {1e3 * b:7.2f} ms  ratio {r:5.3f} (target <= 1.05)"
        )
        c, b, r = interleaved_ratio(step1, step0)
        print(
            f"{name:26s} lambda=1 step {1e3 * c:7.2f} ms  lambda=0      {1e3 * b:7.2f} ms  ratio {r:5.3f} (target <= 2.0)"
        )


if __name__ == "__main__":
    main()
