"""Sampler overhead: time per NFE of ``ucgm_lab.sample`` against a bare loop of model forwards.

Target: ratio <= 1.05 (the sampler adds only element-wise work per step: the decomposition,
the extrapolation with kappa, fresh noise with rho).

Run: ``python benchmarks/sampler_overhead.py`` (or ``python benchmarks/run_all.py`` for all).
"""

from __future__ import annotations

import torch
from harness import Case, main
from torch import Tensor, nn

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D, SmallUNet


def sampler_case(name: str, model: nn.Module, noise: Tensor, steps: int, **kwargs) -> Case:
    """``sample(...)`` with ``kwargs`` against ``steps`` bare forwards of ``model``."""
    model.eval().requires_grad_(False)
    t_batch = torch.ones(noise.shape[0])

    def ucgm() -> None:
        sample(model, noise, "linear", steps, **kwargs)

    def bare() -> None:
        with torch.no_grad():
            x = noise
            for i in range(steps):
                x = model(x, t_batch * (1 - i / steps))

    settings = ", ".join(f"{k} = {v}" for k, v in kwargs.items()) or "kappa = rho = 0"
    return Case(
        f"sampler_{name.split()[0].lower()}_{'kr' if kwargs else 'plain'}",
        f"`sampler_overhead.py`: `sample` ({settings}) / bare loop of forwards, {name}, {steps} steps",
        ucgm,
        bare,
        target=1.05,
        unit="NFE",
        units_per_call=steps,
    )


def cases(size: str = "full") -> list[Case]:
    """Plain and kappa/rho sampling of an MLP and a small U-Net."""
    torch.manual_seed(0)
    steps = 4 if size == "quick" else 8
    mlp_batch, unet_batch = {"quick": (256, 8), "small": (256, 8), "full": (1024, 16)}[size]
    nets = [
        (f"MLP2D batch {mlp_batch}", MLP2D(), torch.randn(mlp_batch, 2)),
        (f"SmallUNet 8x8 batch {unet_batch}", SmallUNet(1, 8), torch.randn(unet_batch, 1, 8, 8)),
    ]
    out = []
    for name, model, noise in nets:
        out.append(sampler_case(name, model, noise, steps))
        out.append(sampler_case(name, model, noise, steps, kappa=0.5, rho=0.5))
    return out


if __name__ == "__main__":
    main(cases, __doc__)
