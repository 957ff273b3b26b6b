"""What the zoo holds: one spec per model, for 2D points and digits alike, and the digits classifier.

A :class:`ZooSpec` names a model, its recipe (:class:`~ucgm_lab.recipes.ToyRecipe` or
:class:`~ucgm_lab.recipes.ImageRecipe`: the data kind comes with the recipe), the model it starts
from (few-step models start from the multi-step one as in the paper) and the recommended
sampler settings. 2D checkpoints live in ``zoo/checkpoints/``, digits checkpoints (and the
classifier behind the digits metric) in ``zoo/checkpoints/digits/``; each folder has its own
``checksums.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metrics.digits_classifier import CLASSIFIER_DIR, CLASSIFIER_NAME
from ..recipes import DIGITS_RECIPE, Recipe, ToyRecipe
from ..schedules import even_time_points

__all__ = [
    "ALL_NAMES",
    "CLASSIFIER_NAME",
    "DIGITS_DIR",
    "ZOO_DIR",
    "ZOO_SPECS",
    "ZooSpec",
    "default_directory",
    "find_spec",
]

ZOO_DIR = Path(__file__).resolve().parent / "checkpoints"
"""The 2D models (and the peer models of notebook 20)."""
DIGITS_DIR = ZOO_DIR / "digits"
"""The digits models and the digits classifier."""
assert DIGITS_DIR == CLASSIFIER_DIR, (
    "the metrics' classifier folder must be the zoo's digits folder"
)
LAM1_TIME_POINTS = (0.999, 0.5)
"""The 2-step grid of the few-step models (Tab. 6 uses {1, 0.3 .. 0.6})."""


@dataclass(frozen=True)
class ZooSpec:
    """One zoo entry.

    Attributes:
        name: File stem and lookup key.
        recipe: How it is trained (its data kind: ``recipe.kind``).
        parent: Name of the zoo model it starts from (lambda > 0), or None.
        sampling: Recommended ``ucgm_lab.sample`` keyword arguments.
        description: One line for listings.
    """

    name: str
    recipe: Recipe
    parent: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def directory(self) -> Path:
        """The folder of the shipped checkpoint."""
        return default_directory(self.name)


def _points_specs() -> list[ZooSpec]:
    specs: list[ZooSpec] = []
    for dataset in ("checkerboard", "moons"):
        base = ToyRecipe(dataset=dataset, steps=4000)
        root = f"{dataset}-linear-lam0"
        specs.append(
            ZooSpec(
                root, base, None, {"steps": 32, "kappa": 0.0}, f"multi-step (lambda=0) on {dataset}"
            )
        )
        for lam, tag in ((0.5, "lam0.5"), (1.0, "lam1")):
            sampling = (
                {"time_points": list(LAM1_TIME_POINTS), "rho": lam}
                if lam == 1
                else {"steps": 8, "rho": lam}
            )
            specs.append(
                ZooSpec(
                    f"{dataset}-linear-{tag}",
                    base.with_(consistency_ratio=lam, steps=2000, seed=1),
                    root,
                    sampling,
                    f"lambda={lam} on {dataset}, started from {root}",
                )
            )
    specs.append(
        ZooSpec(
            "checkerboard-trigflow-lam0",
            ToyRecipe(dataset="checkerboard", transport="trigflow", steps=4000),
            None,
            {"steps": 32},
            "multi-step TrigFlow on checkerboard",
        )
    )
    cond = ToyRecipe(dataset="8gaussians", conditional=True, steps=4000)
    specs.append(
        ZooSpec(
            "8gaussians-cond-lam0", cond, None, {"steps": 32}, "class-conditional, zeta=0 (use CFG)"
        )
    )
    specs.append(
        ZooSpec(
            "8gaussians-cond-lam0-zeta0.6",
            cond.with_(enhancement_ratio=0.6),
            None,
            {"steps": 32},
            "class-conditional with the enhanced target zeta=0.6 (guidance-free)",
        )
    )
    return specs


def _digits_specs() -> list[ZooSpec]:
    root = "digits-linear-lam0"
    few = DIGITS_RECIPE.with_(steps=600, seed=1)
    return [
        ZooSpec(
            root,
            DIGITS_RECIPE,
            None,
            {"time_points": even_time_points(16), "kappa": 0.5},
            "multi-step (lambda=0), class-conditional 8x8 digits",
        ),
        ZooSpec(
            "digits-linear-lam0.5",
            few.with_(consistency_ratio=0.5),
            root,
            {"time_points": even_time_points(8), "rho": 0.5},
            f"lambda=0.5 on digits, started from {root}",
        ),
        ZooSpec(
            "digits-linear-lam1",
            few.with_(consistency_ratio=1.0),
            root,
            {"time_points": list(LAM1_TIME_POINTS), "rho": 1.0},
            f"few-step (lambda=1) on digits, started from {root}",
        ),
    ]


ZOO_SPECS: list[ZooSpec] = _points_specs() + _digits_specs()
"""Every generative model of the zoo: the 2D models, then the digits models."""
ALL_NAMES: list[str] = [*(s.name for s in ZOO_SPECS), CLASSIFIER_NAME]
"""Every name ``build`` accepts: the models and the digits classifier."""


def find_spec(name: str) -> ZooSpec:
    """The spec of a zoo model.

    Raises:
        KeyError: Unknown name (the message lists the known ones).
    """
    for spec in ZOO_SPECS:
        if spec.name == name:
            return spec
    hint = (
        " (the classifier loads with ucgm_lab.zoo.load_classifier)"
        if name == CLASSIFIER_NAME
        else ""
    )
    raise KeyError(
        f"Unknown zoo model {name!r}{hint}. Known: {', '.join(s.name for s in ZOO_SPECS)}."
    )


def default_directory(name: str) -> Path:
    """The folder a shipped checkpoint lives in: :data:`DIGITS_DIR` for digits, else :data:`ZOO_DIR`."""
    if name == CLASSIFIER_NAME:
        return DIGITS_DIR
    return DIGITS_DIR if find_spec(name).recipe.kind == "images" else ZOO_DIR
