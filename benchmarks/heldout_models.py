"""Held-out 2D models for validating the recommended sampler settings: data the project does
not ship (a five-armed pinwheel, generated here) and networks trained here.

* ``pinwheel-lam0``: UCGM-T lambda = 0 (multi-step), linear transport, an MLP2D;
* ``pinwheel-lam0.5``: lambda = 0.5, started from ``pinwheel-lam0`` (the paper's recipe);
* ``spiral-lam0`` / ``spiral-lam0.5``: a two-armed spiral and a user-style network the project
  does not ship (:class:`UserMLP`: an MLP on x and a sinusoidal embedding of 1000 t, wrapped
  in :class:`~ucgm_lab.networks.TimeScaled` with scale 0.03), lambda = 0 then 0.5 from it.

Trained once and cached under ``runs/heldout_models/`` (weights only, loaded with
``weights_only=True``). Neither the data set nor these networks took part in deriving
:func:`ucgm_lab.recommended_settings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ucgm_lab.networks.time_scale import TimeScaled
from ucgm_lab.recipes import ToyRecipe, train

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "heldout_models"


def pinwheel(n: int, seed: int, arms: int = 5) -> Tensor:
    """n points of a pinwheel with ``arms`` curved arms (Johnson et al. 2016), shape (n, 2)."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 2, generator=gen, dtype=torch.float64) * torch.tensor([0.3, 0.08])
    feats[:, 0] += 1.0
    labels = torch.randint(0, arms, (n,), generator=gen)
    angles = labels.double() * (2 * math.pi / arms) + 0.25 * torch.exp(feats[:, 0])
    cos, sin = torch.cos(angles), torch.sin(angles)
    x = cos * feats[:, 0] - sin * feats[:, 1]
    y = sin * feats[:, 0] + cos * feats[:, 1]
    return (2.0 * torch.stack([x, y], dim=1)).float()


def spiral(n: int, seed: int) -> Tensor:
    """n points of a two-armed spiral with radial noise, shape (n, 2)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    arm = torch.randint(0, 2, (n,), generator=gen).double()
    theta = 0.5 + 3.5 * math.pi * u.sqrt()
    radius = theta / (2.0 * math.pi) + 0.08 * torch.randn(n, generator=gen, dtype=torch.float64)
    angle = theta + math.pi * arm
    return (1.3 * torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)).float()


class UserMLP(nn.Module):
    """A network as a user would write it: x and a sinusoidal embedding of 1000 t, 3 layers."""

    def __init__(self, hidden: int = 96, freqs: int = 16) -> None:
        super().__init__()
        self.freqs = freqs
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * freqs, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """x (B, 2), t (B,) -> the UCGM-T output (B, 2)."""
        k = torch.arange(self.freqs, dtype=x.dtype, device=x.device)
        phase = 1000.0 * t[:, None].to(x.dtype) * torch.exp(-math.log(1000.0) * k / self.freqs)
        return self.net(torch.cat([x, torch.sin(phase), torch.cos(phase)], dim=1))


@dataclass(frozen=True)
class SpiralRecipe(ToyRecipe):
    """A :class:`ToyRecipe` on the spiral above (the network is passed as ``init``)."""

    dataset: str = "spiral"

    def training_data(self) -> tuple[Tensor, None, None]:
        return spiral(self.data_size, self.seed), None, None


@dataclass(frozen=True)
class PinwheelRecipe(ToyRecipe):
    """A :class:`ToyRecipe` on the pinwheel above instead of a ``toy_data`` set."""

    dataset: str = "pinwheel"

    def training_data(self) -> tuple[Tensor, None, None]:
        return pinwheel(self.data_size, self.seed), None, None


def _trained(
    name: str, recipe: ToyRecipe, init: nn.Module | None, fresh: nn.Module | None = None
) -> nn.Module:
    """Train (from ``init``) or load the cached weights; ``fresh``: the network's architecture
    when it is not the recipe's own (the user-style network)."""
    path = CACHE / f"{name}.pt"
    model = fresh if fresh is not None else recipe.build_network((2,), None)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval().requires_grad_(False)
    start = init if init is not None else fresh
    run = train(recipe, init=start, progress=False, device="cpu")
    if run.result.step < recipe.steps:  # stopped early (SIGTERM): never cache a partial model
        raise RuntimeError(
            f"{name}: training stopped at step {run.result.step} of {recipe.steps}; not cached."
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(run.model.state_dict(), path)
    return run.model.eval().requires_grad_(False)


def _lam0_and_lam05(
    data: str,
    recipe_type: type[ToyRecipe],
    seed: int,
    steps: int,
    wanted: set[str],
    network: Callable[[], nn.Module] | None = None,
    torch_seed: int | None = None,
) -> dict[str, tuple[nn.Module, str, str]]:
    """The models ``{data}-lam0`` and, if wanted, ``{data}-lam0.5`` started from it.

    Args:
        data: The data set's name (and the models' prefix).
        recipe_type: The :class:`ToyRecipe` on that data set.
        seed: The lambda = 0 run's seed (the lambda = 0.5 run's is ``seed + 1``).
        steps: Steps of the lambda = 0 run (half as many at lambda = 0.5).
        wanted: The model names asked for.
        network: Builds the network when it is not the recipe's own (called once per model).
        torch_seed: Seed of torch's global generator, set first (the user-style network's
            initial weights come from it).
    """
    out: dict[str, tuple[nn.Module, str, str]] = {}
    if wanted & {f"{data}-lam0", f"{data}-lam0.5"}:
        if torch_seed is not None:
            torch.manual_seed(torch_seed)
        base = recipe_type(steps=steps, batch_size=512, seed=seed)
        fresh = None if network is None else network()
        lam0 = _trained(f"{data}-lam0-{steps}", base, None, fresh=fresh)
        out[f"{data}-lam0"] = (lam0, "linear", data)
        if f"{data}-lam0.5" in wanted:
            lam05 = _trained(
                f"{data}-lam0.5-{steps}",
                base.with_(consistency_ratio=0.5, steps=max(1, steps // 2), seed=seed + 1),
                lam0,
                fresh=None if network is None else network(),
            )
            out[f"{data}-lam0.5"] = (lam05, "linear", data)
    return out


def heldout_models(
    steps: int = 1200, names: tuple[str, ...] | None = None
) -> dict[str, tuple[nn.Module, str, str]]:
    """name -> (model, transport, data set name) of the held-out 2D models (``names``: only
    these and the lambda = 0 models they start from, trained or loaded)."""
    wanted = set(HELD_OUT_NAMES if names is None else names)
    out = _lam0_and_lam05("pinwheel", PinwheelRecipe, 11, steps, wanted)
    out |= _lam0_and_lam05(
        "spiral", SpiralRecipe, 13, steps, wanted,
        network=lambda: TimeScaled(UserMLP(), time_scale=0.03), torch_seed=13,
    )  # fmt: skip
    return out


HELD_OUT_NAMES = ("pinwheel-lam0", "pinwheel-lam0.5", "spiral-lam0", "spiral-lam0.5")


if __name__ == "__main__":
    for key in heldout_models():
        print("ready:", key)
