"""The pre-trained toy zoo: tiny 2D models built by the project's own script, stored in the repo.

Build (reproducible from the seeds in the specs; a few minutes on a 2-core CPU)::

    python -m ucgm_lab.zoo build            # all models
    python -m ucgm_lab.zoo build --only checkerboard-linear-lam0
    python -m ucgm_lab.zoo list

Load::

    from ucgm_lab.zoo import load
    zm = load("checkerboard-linear-lam1")
    out = ucgm_lab.sample(zm.model, noise, zm.transport, **zm.sampling)
    out = zm.sample(1000, nfe=8)  # the settings a sampler search found for 8 NFE

Searched settings per budget live in ``sampler_settings.json`` (:mod:`ucgm_lab.zoo.settings`,
written by ``python -m ucgm_lab.zoo search-settings``).

Each checkpoint is a safetensors file of the EMA weights with JSON metadata: the network
config, the recipe, the parent model (few-step models start from the multi-step one as in the
paper), the training time and loss, and recommended sampler settings. ``checkpoints/checksums.json``
holds the sha256 of every file; :func:`load` refuses a file that does not match it (a flipped
byte, an edited transport) and :func:`build` updates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..networks import build_network
from ..recipes import ToyRecipe, train_toy
from ..sampler import SampleOutput, sample
from ..training.checkpoint import CheckpointError, load_weights, save_weights, update_manifest
from ..transports import Transport, get_transport

__all__ = [
    "ZOO_DIR",
    "ZOO_SPECS",
    "ZooModel",
    "ZooSpec",
    "available",
    "build",
    "check_zoo_metadata",
    "load",
]

ZOO_DIR = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class ZooSpec:
    """One zoo entry.

    Attributes:
        name: File stem and lookup key.
        recipe: How it is trained.
        parent: Name of the zoo model it starts from (lambda > 0), or None.
        sampling: Recommended ``ucgm_lab.sample`` keyword arguments.
        description: One line for listings.
    """

    name: str
    recipe: ToyRecipe
    parent: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _specs() -> list[ZooSpec]:
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
            specs.append(
                ZooSpec(
                    f"{dataset}-linear-{tag}",
                    base.with_(consistency_ratio=lam, steps=2000, seed=1),
                    root,
                    {"time_points": [0.999, 0.5], "rho": lam}
                    if lam == 1
                    else {"steps": 8, "rho": lam},
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


ZOO_SPECS: list[ZooSpec] = _specs()


@dataclass
class ZooModel:
    """A loaded zoo model.

    Attributes:
        name: Zoo name.
        model: The network (EMA weights, eval mode, no gradients).
        transport: Its transport.
        consistency_ratio: lambda it was trained with.
        dataset: The 2D data set.
        sampling: Recommended sampler settings.
        metadata: Everything stored with the weights.
    """

    name: str
    model: nn.Module
    transport: Transport
    consistency_ratio: float
    dataset: str
    sampling: dict[str, Any]
    metadata: dict[str, Any]

    def settings(self, nfe: int | None = None, **overrides: Any) -> dict[str, Any]:
        """The sampler keyword arguments :meth:`sample` uses.

        Without ``nfe``: the recommended settings. With ``nfe``: the settings a sampler search
        found for this model at that budget (:func:`ucgm_lab.zoo.settings.searched_settings`),
        or, without one, the recommended settings with ``steps = nfe`` at order 1.
        ``overrides`` go on top; giving ``steps`` or ``time_points`` replaces the grid.
        """
        from .settings import searched_settings

        settings = dict(self.sampling)
        if nfe is not None:
            searched = searched_settings(self.name, nfe)
            if searched is not None:
                settings = searched
            else:
                for key in ("steps", "time_points", "order"):
                    settings.pop(key, None)
                settings["steps"] = nfe
        if "steps" in overrides or "time_points" in overrides:
            settings.pop("steps", None)
            settings.pop("time_points", None)
        settings.update(overrides)
        return settings

    def sample(
        self, n: int, nfe: int | None = None, seed: int = 0, **overrides: Any
    ) -> SampleOutput:
        """Draw ``n`` samples with UCGM-S (:meth:`settings` chooses the keyword arguments).

        Args:
            n: Number of samples.
            nfe: Network-evaluation budget; None keeps the recommended settings.
            seed: Seed of the initial noise (and of rho's fresh noise, with seed + 1).
            **overrides: Sampler settings replacing the chosen ones (kappa, rho, order, ...).

        Returns:
            The sampler's :class:`~ucgm_lab.sampler.SampleOutput` (``sample``: shape (n, 2);
            ``nfe``: the evaluations made).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n!r}.")
        device = next(self.model.parameters()).device
        noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
        return sample(
            self.model,
            noise.to(device),
            self.transport,
            generator=torch.Generator(device=device).manual_seed(seed + 1),
            **self.settings(nfe, **overrides),
        )


def _spec(name: str) -> ZooSpec:
    for spec in ZOO_SPECS:
        if spec.name == name:
            return spec
    raise KeyError(f"Unknown zoo model {name!r}. Known: {', '.join(s.name for s in ZOO_SPECS)}.")


def available(directory: str | Path = ZOO_DIR) -> list[str]:
    """Names of the zoo models whose checkpoint exists in ``directory``."""
    return [s.name for s in ZOO_SPECS if (Path(directory) / f"{s.name}.safetensors").is_file()]


def load(name: str, directory: str | Path = ZOO_DIR, device: str = "cpu") -> ZooModel:
    """Load a zoo model.

    Raises:
        KeyError: Unknown name (the message lists the known ones).
        CheckpointError: The checkpoint is missing (the message says how to build it) or corrupt.
    """
    spec = _spec(name)
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"The zoo checkpoint {path.name} is missing from {Path(directory)}. Build it with "
            f"`python -m ucgm_lab.zoo build --only {name}` (add its parent {spec.parent} if it has one)."
        )
    tensors, meta = load_weights(path)
    check_zoo_metadata(path, meta)
    try:
        model = build_network(meta["network"])
        model.load_state_dict(tensors)
        transport = get_transport(meta["recipe"]["transport"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: the metadata or weights do not describe a zoo model ({exc})."
        ) from exc
    model.requires_grad_(False).eval().to(device)
    return ZooModel(
        name=name,
        model=model,
        transport=transport,
        consistency_ratio=float(meta["recipe"]["consistency_ratio"]),
        dataset=meta["recipe"]["dataset"],
        sampling=dict(meta["sampling"]),
        metadata=meta,
    )


def check_zoo_metadata(
    path: Path,
    meta: dict[str, Any],
    recipe_keys: tuple[str, ...] = ("transport", "consistency_ratio", "dataset"),
) -> None:
    """Raise :class:`CheckpointError` naming the file and the key unless ``meta`` has what a zoo model needs.

    Needed: ``network`` (a dict with ``kind``), ``recipe`` (a dict with ``recipe_keys``) and
    ``sampling`` (a dict of sampler keyword arguments).
    """
    for key in ("network", "recipe", "sampling"):
        if not isinstance(meta.get(key), dict):
            got = "missing" if key not in meta else f"a {type(meta[key]).__name__}"
            raise CheckpointError(
                f"{path}: the metadata key {key!r} must be a JSON object but is {got}; the file "
                "is not a complete zoo checkpoint. Rebuild it."
            )
    missing = [k for k in recipe_keys if k not in meta["recipe"]]
    if missing:
        raise CheckpointError(f"{path}: the metadata's recipe lacks {missing}. Rebuild it.")


def build(
    only: list[str] | None = None,
    directory: str | Path = ZOO_DIR,
    steps_scale: float = 1.0,
    progress: bool = True,
) -> list[Path]:
    """Train and save zoo models (parents first).

    Args:
        only: Names to build (default all). A parent that is missing is built too.
        directory: Where to write.
        steps_scale: Multiply every recipe's steps (e.g. 0.01 for a smoke test).
        progress: Progress bars.

    Returns:
        Paths written.
    """
    directory = Path(directory)
    wanted = [s.name for s in ZOO_SPECS] if not only else list(only)
    for name in wanted:
        _spec(name)
    written: list[Path] = []
    built: dict[str, nn.Module] = {}

    def ensure(name: str) -> nn.Module:
        if name in built:
            return built[name]
        spec = _spec(name)
        path = directory / f"{name}.safetensors"
        if name not in wanted and path.is_file():
            built[name] = load(name, directory).model
            return built[name]
        init = ensure(spec.parent) if spec.parent else None
        recipe = spec.recipe.with_(steps=max(1, int(spec.recipe.steps * steps_scale)))
        run = train_toy(recipe, init=init, progress=progress, device="cpu")
        model = run.model
        meta = {
            "name": name,
            "network": model.config,
            "recipe": recipe.to_dict(),
            "parent": spec.parent,
            "sampling": spec.sampling,
            "description": spec.description,
            "train_seconds": round(run.result.seconds, 1),
            "final_loss": sum(run.result.losses[-100:]) / len(run.result.losses[-100:]),
        }
        written.append(save_weights(path, model.state_dict(), meta))
        update_manifest(path)
        built[name] = model
        return model

    for name in wanted:
        ensure(name)
    return written
