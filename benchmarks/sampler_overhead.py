"""Sampler overhead: time per NFE of ``ucgm_lab.sample`` against a bare loop of model forwards.

Target: ratio <= 1.05 (the sampler adds only element-wise work per step: the decomposition,
the extrapolation with kappa, fresh noise with rho). The baseline is a best-practice Euler loop
with the same forwards and the same result (:func:`euler_loop`): the state in float64, the
network's time inputs and the step sizes made once before the loop.

Run: ``python benchmarks/sampler_overhead.py`` (or ``python benchmarks/run_all.py`` for all).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from harness import Case, main
from torch import Tensor, nn

from ucgm_lab import sample
from ucgm_lab.networks import MLP2D, SmallUNet
from ucgm_lab.sampler import time_grid


def euler_loop(model: nn.Module, noise: Tensor, steps: int) -> Callable[[], Tensor]:
    """A best-practice Euler loop on the same grid: the bare loop that ``sample`` is timed against.

    The same forwards as ``sample(model, noise, "linear", steps)`` (the "even" grid, the network
    called in float32 on the state cast from float64) and the same result: the state is kept in
    float64 and updated by x <- x + (t_{i+1} - t_i) F (with kappa = rho = 0 on the Linear
    transport Alg. 2 is exactly this Euler step, App. B.1.6). Everything that does not depend
    on the state is made once, before the loop: the network's time inputs (one preallocated
    (steps, B) tensor) and the step sizes.
    """
    times = time_grid(steps, 1, "even", None)
    t_rows = times[:-1].to(torch.float32)[:, None].expand(steps, noise.shape[0]).contiguous()
    dts = (times[1:] - times[:-1]).tolist()

    def loop() -> Tensor:
        with torch.no_grad():
            x = noise.to(torch.float64)
            for i in range(steps):
                F = model(x.to(torch.float32), t_rows[i]).to(torch.float64)
                x = x + dts[i] * F
            return x

    return loop


def sampler_case(name: str, model: nn.Module, noise: Tensor, steps: int, **kwargs) -> Case:
    """``sample(...)`` with ``kwargs`` against ``steps`` forwards of ``model`` in a bare Euler loop."""
    model.eval().requires_grad_(False)
    bare = euler_loop(model, noise, steps)
    if not kwargs:  # the same work: the loop gives sample's result (up to rounding)
        got = sample(model, noise, "linear", steps).sample.double()
        if not torch.allclose(got, bare().to(noise.dtype).double(), rtol=0, atol=1e-5):
            raise RuntimeError("the bare Euler loop no longer gives sample's result")

    def ucgm() -> None:
        sample(model, noise, "linear", steps, **kwargs)

    settings = ", ".join(f"{k} = {v}" for k, v in kwargs.items()) or "kappa = rho = 0"
    return Case(
        f"sampler_{name.split()[0].lower()}_{'kr' if kwargs else 'plain'}",
        f"`sampler_overhead.py`: `sample` ({settings}) / bare Euler loop of the same forwards "
        f"(float64 state, preallocated times), {name}, {steps} steps",
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
