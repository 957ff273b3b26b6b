"""Your own images and your own U-Net, from a tensor to a few-step model (docs/your-data.md, further).

1. Data: 16x16 images of drawn shapes (squares, discs, crosses), generated here, pixels in
   [-1, 1], as one tensor (N, 1, 16, 16); a held-out set for the metric's floor.
2. Network: a U-Net whose sinusoidal time embedding is fed 1000 t (the library's ``SmallUNet``
   stands in for yours). Its output layer starts at zero, so the time check sees no time
   dependence at the first step; the lambda = 0 objective checks again at step 100 and warns
   there for the raw network. Here it is wrapped from the start, as the warning says:
   ``TimeScaled(network, 0.03)``.
3. lambda = 0 with the Trainer's defaults (checkpoints in ``--out``), then lambda = 1 from its
   checkpoint with ``TrainerConfig.few_step``.
4. ``load_for_sampling``: the EMA model, its transport and time scale in one call.
5. ``quality_vs_nfe`` on the images: the metric is chosen from the data's shape
   (``ImageFrechet``, offline); the floor is held-out real images at the same n.
6. ``search_sampler`` at 2 NFE with the same metric, and a resume of the few-step run.

Run: ``python examples/your_own_data.py --out runs/shapes`` (defaults: 2000 + 600 steps, about
half an hour on a 2-core CPU; ``--steps0 40 --steps1 20`` for a smoke test in a minute).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import ucgm_lab
from ucgm_lab.evaluation import format_quality_table, quality_vs_nfe
from ucgm_lab.metrics import ImageFrechet
from ucgm_lab.networks import SmallUNet, TimeScaled
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def drawn_shapes(n: int, seed: int, size: int = 16) -> torch.Tensor:
    """Squares, discs and crosses of random size and place, shape (n, 1, size, size), in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, 3, (n,), generator=g)
    radius = 2.0 + 3.0 * torch.rand(n, generator=g)
    centre = radius[:, None] + (size - 1 - 2 * radius[:, None]) * torch.rand(n, 2, generator=g)
    rows = torch.arange(size, dtype=torch.float32)[None, :, None]
    cols = torch.arange(size, dtype=torch.float32)[None, None, :]
    dr = (rows - centre[:, 0, None, None]).abs()
    dc = (cols - centre[:, 1, None, None]).abs()
    r = radius[:, None, None]
    square = torch.maximum(dr, dc) <= r
    disc = dr**2 + dc**2 <= r**2
    cross = (torch.minimum(dr, dc) <= 0.8) & (torch.maximum(dr, dc) <= r)
    masks = torch.stack([square, disc, cross], 1)[torch.arange(n), kind]
    return torch.where(masks, 1.0, -1.0)[:, None]


def network() -> SmallUNet:
    """The user's network: a small U-Net whose time embedding sees 1000 t."""
    return SmallUNet(1, 16, base_channels=32, channel_mults=(1, 2), num_res_blocks=1)


def main() -> None:
    """Train, load, evaluate, search and resume (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/shapes")
    parser.add_argument("--steps0", type=int, default=2000)
    parser.add_argument("--steps1", type=int, default=600)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    out = Path(args.out)
    torch.manual_seed(0)
    images = drawn_shapes(5000, seed=0)
    held_out = drawn_shapes(3 * args.samples, seed=1)
    source = TensorDataSource(images, batch_size=args.batch)

    def trainer(lam: float, config: TrainerConfig) -> Trainer:
        return Trainer(
            TimeScaled(network(), 0.03), ucgm_lab.UCGMObjective("linear", lam), source, config
        )

    multi = trainer(
        0.0, TrainerConfig(steps=args.steps0, lr=2e-3, checkpoint_dir=str(out / "lam0"))
    )
    print("lambda = 0:", multi.fit())
    few = trainer(1.0, TrainerConfig.few_step(steps=args.steps1, checkpoint_dir=str(out / "lam1")))
    few.start_from(out / "lam0" / "last.pt")
    print("lambda = 1:", few.fit())

    loaded = {
        lam: ucgm_lab.load_for_sampling(out / f"lam{lam}" / "last.pt", network()) for lam in (0, 1)
    }
    print(f"loaded: time scale {loaded[1].time_scale:g}, transport {loaded[1].transport.name}")
    n = args.samples
    curves = quality_vs_nfe(
        loaded[0].model, loaded[0].transport, images[:2000], [1, 2, 4, 100], label="lambda=0",
        num_samples=n,
    )  # fmt: skip
    curves += quality_vs_nfe(
        loaded[1].model, loaded[1].transport, images[:2000], [1, 2, 4], label="lambda=1, rho=1",
        num_samples=n, rho=1.0,
    )  # fmt: skip
    print(format_quality_table(curves, "image_fd", nfes=[1, 2, 4, 100]))
    metric = ImageFrechet(images[:2000])
    floor = metric.floor(held_out, n=n)
    noise = metric.distance(torch.randn(n, 1, 16, 16))
    print(
        f"floor (held-out real images, n = {n}): {floor.mean:.3f} +- {floor.std:.3f}; noise: {noise:.2f}"
    )

    found = ucgm_lab.search_sampler(
        loaded[1].model, loaded[1].transport, images[:n], nfe=[2], metric=metric,
        max_trials=12 if args.steps1 >= 100 else 3, progress=False,
    )  # fmt: skip
    print(found.table())

    more = trainer(1.0, TrainerConfig.few_step(steps=args.steps1 + max(1, args.steps1 // 10),
                                               checkpoint_dir=str(out / "lam1")))  # fmt: skip
    print("resumed at step", more.resume(out / "lam1" / "last.pt"), "->", more.fit().step)
    ratio = curves[5].metrics["image_fd"] / curves[3].metrics["image_fd"]
    print(f"lambda = 1 at 2 NFE over lambda = 0 at 100 NFE (image_fd): {ratio:.2f}")


if __name__ == "__main__":
    main()
