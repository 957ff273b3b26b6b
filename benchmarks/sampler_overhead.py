"""Sampler overhead: time per NFE of ``ucgm_lab.sample`` versus a bare loop of model forwards.

Target: ratio <= 1.10. Run: ``python benchmarks/sampler_overhead.py``.
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved_ratio

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D, SmallUNet


def bench(name: str, model: torch.nn.Module, noise: torch.Tensor, steps: int, **kwargs) -> None:
    model.eval().requires_grad_(False)
    t_batch = torch.ones(noise.shape[0])

    def ucgm():
        sample(model, noise, "linear", steps, **kwargs)

    def bare():
        with torch.no_grad():
            x = noise
            for i in range(steps):
                x = model(x, t_batch * (1 - i / steps))

    cand, base, ratio = interleaved_ratio(ucgm, bare)
    settings = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
    print(
        f"{name:28s} {settings:24s} sample {1e3 * cand / steps:7.3f} ms/NFE  bare {1e3 * base / steps:7.3f} ms/NFE  ratio {ratio:5.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mlp, noise2d = MLP2D(), torch.randn(4096, 2)
    unet, noise_img = SmallUNet(1, 8), torch.randn(64, 1, 8, 8)
    print(
        f"time per NFE, {args.steps} steps, {args.threads} threads (ratio = sample / bare loop; target <= 1.10)"
    )
    for model, noise, name in (
        (mlp, noise2d, "MLP2D, batch 4096"),
        (unet, noise_img, "SmallUNet 8x8, batch 64"),
    ):
        bench(name, model, noise, args.steps)
        bench(name, model, noise, args.steps, kappa=0.5, rho=0.5)


if __name__ == "__main__":
    main()
