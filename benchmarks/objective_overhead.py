"""Objective overhead: one UCGM-T training step against its peers.

Targets: lambda = 0 step / hand-written flow-matching step <= 1.05; lambda = 1 step /
lambda = 0 step <= 2.0 (ideal about 1.67: a forward and backward cost about three forwards,
and lambda = 1 adds two no-grad forwards, batched as one call).

Run: ``python benchmarks/objective_overhead.py`` (or ``python benchmarks/run_all.py`` for all).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from harness import Case, main
from torch import Tensor, nn

from ucgm_lab import UCGMObjective
from ucgm_lab.networks import MLP2D, SmallUNet


def make_step(model: nn.Module, loss_fn: Callable[[nn.Module, Tensor], Tensor], x: Tensor):
    """One AdamW step of ``loss_fn`` on a fixed batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model, x).backward()
        opt.step()

    return step


def flow_matching_loss(model: nn.Module, x: Tensor) -> Tensor:
    """The hand-written flow-matching loss (data at t = 0, noise at t = 1)."""
    z = torch.randn_like(x)
    t = torch.rand(x.shape[0])
    tb = t.view(-1, *([1] * (x.ndim - 1)))
    x_t = tb * z + (1 - tb) * x
    return (model(x_t, t) - (z - x)).pow(2).mean()


def cases(size: str = "full") -> list[Case]:
    """lambda = 0 against flow matching and lambda = 1 against lambda = 0, on two networks."""
    torch.manual_seed(0)
    mlp_batch, unet_batch = {"quick": (256, 8), "small": (256, 8), "full": (1024, 16)}[size]
    nets = [
        (f"MLP2D batch {mlp_batch}", MLP2D(), torch.randn(mlp_batch, 2)),
        (f"SmallUNet 8x8 batch {unet_batch}", SmallUNet(1, 8), torch.randn(unet_batch, 1, 8, 8)),
    ]
    out = []
    for name, model, x in nets:
        lam0, lam1 = UCGMObjective("linear", 0.0), UCGMObjective("linear", 1.0)
        step0 = make_step(model, lambda m, b, o=lam0: o(m, b).loss, x)
        step1 = make_step(model, lambda m, b, o=lam1: o(m, b).loss, x)
        fm = make_step(model, flow_matching_loss, x)
        key = name.split()[0].lower()
        out.append(
            Case(
                f"lam0_vs_fm_{key}",
                f"`objective_overhead.py`: lambda = 0 step / hand-written flow-matching step, {name}",
                step0,
                fm,
                target=1.05,
                unit="step",
            )
        )
        out.append(
            Case(
                f"lam1_vs_lam0_{key}",
                f"`objective_overhead.py`: lambda = 1 step / lambda = 0 step, {name}",
                step1,
                step0,
                target=2.0,
                unit="step",
                note="ideal about 1.67",
            )
        )
    return out


if __name__ == "__main__":
    main(cases, __doc__)
