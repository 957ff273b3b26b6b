"""Held-out 2D models for validating the recommended sampler settings: data the project does
not ship (a five-armed pinwheel, generated here) and networks trained here.

* ``pinwheel-lam0``: UCGM-T lambda = 0 (multi-step), linear transport, an MLP2D;
* ``pinwheel-lam0.5``: lambda = 0.5, started from ``pinwheel-lam0`` (the paper's recipe).

Trained once and cached under ``runs/heldout_models/`` (weights only, loaded with
``weights_only=True``). Neither the data set nor these networks took part in deriving
:func:`ucgm_lab.recommended_settings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

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


@dataclass(frozen=True)
class PinwheelRecipe(ToyRecipe):
    """A :class:`ToyRecipe` on the pinwheel above instead of a ``toy_data`` set."""

    dataset: str = "pinwheel"

    def training_data(self) -> tuple[Tensor, None, None]:
        return pinwheel(self.data_size, self.seed), None, None


def _trained(name: str, recipe: ToyRecipe, init: nn.Module | None) -> nn.Module:
    path = CACHE / f"{name}.pt"
    model = recipe.build_network((2,), None)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval().requires_grad_(False)
    run = train(recipe, init=init, progress=False, device="cpu")
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(run.model.state_dict(), path)
    return run.model.eval().requires_grad_(False)


def heldout_models(steps: int = 1200) -> dict[str, tuple[nn.Module, str, str]]:
    """name -> (model, transport, data set name) of the held-out 2D models."""
    base = PinwheelRecipe(steps=steps, batch_size=512, seed=11)
    lam0 = _trained(f"pinwheel-lam0-{steps}", base, None)
    lam05 = _trained(
        f"pinwheel-lam0.5-{steps}",
        base.with_(consistency_ratio=0.5, steps=max(1, steps // 2), seed=12),
        lam0,
    )
    return {
        "pinwheel-lam0": (lam0, "linear", "pinwheel"),
        "pinwheel-lam0.5": (lam05, "linear", "pinwheel"),
    }


if __name__ == "__main__":
    for key in heldout_models():
        print("ready:", key)
