"""The digits zoo: small image models built by the project's own script, stored in the repo.

Build (reproducible from the seeds in the specs, for a given number of CPU threads; about
7 minutes in all on 2 CPU cores: classifier 7 s, lambda = 0 2.5 min, lambda = 0.5 and 1
1.5 to 3 min each)::

    python -m ucgm_lab.images build                 # the classifier and all models
    python -m ucgm_lab.images build --only digits-linear-lam1
    python -m ucgm_lab.images list

Load::

    from ucgm_lab.images import load_image_model
    zm = load_image_model("digits-linear-lam1")
    out = zm.sample(torch.arange(10), seed=0)          # recommended sampler settings
    out = zm.sample(torch.arange(10), nfe=4, rho=0.0)  # or your own (even grid)

Each model is a safetensors file of the EMA weights with JSON metadata (network config,
recipe, parent, training time, final loss, recommended sampler settings), exactly as the 2D
zoo (:mod:`ucgm_lab.zoo`). The digits classifier behind the digits metric
(:mod:`ucgm_lab.images.metric`) is stored in the same folder as ``digits-classifier``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..networks import build_network
from ..sampler import SampleOutput, sample
from ..training.checkpoint import CheckpointError, load_weights, save_weights, update_manifest
from ..transports import Transport, get_transport
from ..zoo import check_zoo_metadata
from .classifier import DigitsClassifier, train_digits_classifier
from .recipes import DIGITS_RECIPE, ImageRecipe, train_images
from .timegrid import even_time_points

__all__ = [
    "CLASSIFIER_NAME",
    "IMAGE_ZOO_DIR",
    "IMAGE_ZOO_SPECS",
    "ImageZooModel",
    "ImageZooSpec",
    "available",
    "build",
    "load_classifier",
    "load_image_model",
]

IMAGE_ZOO_DIR = Path(__file__).parent / "checkpoints"
CLASSIFIER_NAME = "digits-classifier"
LAM1_TIME_POINTS = (0.999, 0.5)
"""The 2-step grid of the few-step digits model (Tab. 6 uses {1, 0.3 .. 0.6})."""


@dataclass(frozen=True)
class ImageZooSpec:
    """One zoo entry.

    Attributes:
        name: File stem and lookup key.
        recipe: How it is trained.
        parent: Name of the zoo model it starts from (lambda > 0), or None.
        sampling: Recommended ``ucgm_lab.sample`` keyword arguments.
        description: One line for listings.
    """

    name: str
    recipe: ImageRecipe
    parent: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    description: str = ""


IMAGE_ZOO_SPECS: list[ImageZooSpec] = [
    ImageZooSpec(
        "digits-linear-lam0",
        DIGITS_RECIPE,
        None,
        {"time_points": even_time_points(16), "kappa": 0.5},
        "multi-step (lambda=0), class-conditional 8x8 digits",
    ),
    ImageZooSpec(
        "digits-linear-lam0.5",
        DIGITS_RECIPE.with_(consistency_ratio=0.5, steps=600, seed=1),
        "digits-linear-lam0",
        {"time_points": even_time_points(8), "rho": 0.5},
        "lambda=0.5 on digits, started from digits-linear-lam0",
    ),
    ImageZooSpec(
        "digits-linear-lam1",
        DIGITS_RECIPE.with_(consistency_ratio=1.0, steps=600, seed=1),
        "digits-linear-lam0",
        {"time_points": list(LAM1_TIME_POINTS), "rho": 1.0},
        "few-step (lambda=1) on digits, started from digits-linear-lam0",
    ),
]


@dataclass
class ImageZooModel:
    """A loaded image zoo model.

    Attributes:
        name: Zoo name.
        model: The network (EMA weights, eval mode, no gradients).
        transport: Its transport.
        consistency_ratio: lambda it was trained with.
        dataset: The image data set.
        image_shape: (C, H, W) of its images.
        sampling: Recommended sampler settings.
        metadata: Everything stored with the weights.
    """

    name: str
    model: nn.Module
    transport: Transport
    consistency_ratio: float
    dataset: str
    image_shape: tuple[int, int, int]
    sampling: dict[str, Any]
    metadata: dict[str, Any]

    def sample(self, y: Tensor, nfe: int | None = None, seed: int = 0, **overrides: Any) -> SampleOutput:
        """Sample one image per class id with UCGM-S.

        Args:
            y: Class ids, shape (B,).
            nfe: Number of network evaluations on the even grid
                (:func:`~ucgm_lab.images.timegrid.even_time_points`); None keeps the
                recommended grid.
            seed: Seed of the initial noise (and of rho's fresh noise, with seed + 1).
            **overrides: Sampler settings replacing the recommended ones (kappa, rho, ...);
                giving ``steps`` or ``time_points`` replaces the recommended grid.

        Returns:
            The sampler's :class:`~ucgm_lab.sampler.SampleOutput`; ``sample`` has shape
            (B, C, H, W).
        """
        settings = dict(self.sampling)
        if nfe is not None:
            overrides = {"time_points": even_time_points(nfe), **overrides}
        if "steps" in overrides or "time_points" in overrides:
            settings.pop("steps", None)
            settings.pop("time_points", None)
        settings.update(overrides)
        device = next(self.model.parameters()).device
        noise = torch.randn((y.shape[0], *self.image_shape), generator=torch.Generator().manual_seed(seed))
        return sample(
            self.model,
            noise.to(device),
            self.transport,
            y=y.to(device),
            generator=torch.Generator(device=device).manual_seed(seed + 1),
            **settings,
        )


def _spec(name: str) -> ImageZooSpec:
    for spec in IMAGE_ZOO_SPECS:
        if spec.name == name:
            return spec
    known = ", ".join([CLASSIFIER_NAME, *(s.name for s in IMAGE_ZOO_SPECS)])
    raise KeyError(f"Unknown image zoo model {name!r}. Known: {known}.")


def available(directory: str | Path = IMAGE_ZOO_DIR) -> list[str]:
    """Names (classifier and models) whose checkpoint exists in ``directory``."""
    names = [CLASSIFIER_NAME, *(s.name for s in IMAGE_ZOO_SPECS)]
    return [n for n in names if (Path(directory) / f"{n}.safetensors").is_file()]


def _read(name: str, directory: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"The image zoo checkpoint {path.name} is missing from the folder {Path(directory).name!r}. "
            f"Build it with `python -m ucgm_lab.images build --only {name}`."
        )
    return load_weights(path)


def load_image_model(name: str, directory: str | Path = IMAGE_ZOO_DIR, device: str = "cpu") -> ImageZooModel:
    """Load an image zoo model.

    Raises:
        KeyError: Unknown name (the message lists the known ones).
        CheckpointError: The checkpoint is missing (the message says how to build it) or corrupt.
    """
    _spec(name)
    tensors, meta = _read(name, directory)
    path = Path(directory) / f"{name}.safetensors"
    check_zoo_metadata(path, meta)
    try:
        model = build_network(meta["network"])
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
        transport = get_transport(meta["recipe"]["transport"])
        net = meta["network"]
        image_shape = (net["in_channels"], net["image_size"], net["image_size"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: the metadata or weights do not describe a zoo model ({exc})."
        ) from exc
    model.requires_grad_(False).eval().to(device)
    return ImageZooModel(
        name=name,
        model=model,
        transport=transport,
        consistency_ratio=float(meta["recipe"]["consistency_ratio"]),
        dataset=meta["recipe"]["dataset"],
        image_shape=image_shape,
        sampling=dict(meta["sampling"]),
        metadata=meta,
    )


def load_classifier(directory: str | Path = IMAGE_ZOO_DIR) -> DigitsClassifier:
    """Load the digits classifier of the digits metric (eval mode, no gradients).

    Raises:
        CheckpointError: Missing (the message says how to build it) or corrupt checkpoint.
    """
    tensors, meta = _read(CLASSIFIER_NAME, directory)
    path = Path(directory) / f"{CLASSIFIER_NAME}.safetensors"
    try:
        config = {k: v for k, v in meta["network"].items() if k != "kind"}
        model = DigitsClassifier(**config)
        model.load_state_dict(tensors)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: the metadata or weights do not describe the classifier ({exc})."
        ) from exc
    return model.requires_grad_(False).eval()


def _build_classifier(path: Path, steps_scale: float) -> Path:
    epochs = max(1, round(80 * steps_scale))
    run = train_digits_classifier(epochs=epochs)
    meta = {
        "name": CLASSIFIER_NAME,
        "network": run.model.config,
        "training": run.settings,
        "test_accuracy": round(run.test_accuracy, 4),
        "train_seconds": round(run.seconds, 1),
        "description": "digits classifier; its 64-d penultimate layer gives the digits metric's features",
    }
    save_weights(path, run.model.state_dict(), meta)
    update_manifest(path)
    return path


def build(
    only: list[str] | None = None,
    directory: str | Path = IMAGE_ZOO_DIR,
    steps_scale: float = 1.0,
    progress: bool = True,
) -> list[Path]:
    """Train and save the classifier and the zoo models (parents first).

    Args:
        only: Names to build (default: the classifier and all models). A missing parent is
            built too.
        directory: Where to write.
        steps_scale: Multiply every training budget (e.g. 0.01 for a smoke test).
        progress: Progress bars.

    Returns:
        Paths written.
    """
    directory = Path(directory)
    wanted = [CLASSIFIER_NAME, *(s.name for s in IMAGE_ZOO_SPECS)] if not only else list(only)
    for name in wanted:
        if name != CLASSIFIER_NAME:
            _spec(name)
    written: list[Path] = []
    built: dict[str, nn.Module] = {}
    if CLASSIFIER_NAME in wanted:
        written.append(_build_classifier(directory / f"{CLASSIFIER_NAME}.safetensors", steps_scale))

    def ensure(name: str) -> nn.Module:
        if name in built:
            return built[name]
        spec = _spec(name)
        path = directory / f"{name}.safetensors"
        if name not in wanted and path.is_file():
            built[name] = load_image_model(name, directory).model
            return built[name]
        init = ensure(spec.parent) if spec.parent else None
        recipe = spec.recipe.with_(steps=max(1, int(spec.recipe.steps * steps_scale)))
        run = train_images(recipe, init=init, progress=progress, device="cpu")
        model = run.model
        tail = run.result.losses[-100:]
        meta = {
            "name": name,
            "network": model.config,
            "recipe": recipe.to_dict(),
            "parent": spec.parent,
            "sampling": spec.sampling,
            "description": spec.description,
            "train_seconds": round(run.result.seconds, 1),
            "seconds_per_step": round(run.seconds_per_step, 4),
            "torch_threads": torch.get_num_threads(),
            "final_loss": sum(tail) / len(tail),
        }
        written.append(save_weights(path, model.state_dict(), meta))
        update_manifest(path)
        built[name] = model
        return model

    for name in wanted:
        if name != CLASSIFIER_NAME:
            ensure(name)
    return written
