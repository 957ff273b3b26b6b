"""The zoo: small pre-trained models built by the project's own script, stored in the repo.

One zoo for every data kind: the 2D models (checkerboard, moons, 8 Gaussians), the digits
models (8x8, class-conditional) and the digits classifier behind the digits metric. Build
(reproducible from the seeds in the specs, for a given number of CPU threads; the 2D models
take a few minutes on a 2-core CPU, the digits models about 7 minutes)::

    python -m ucgm_lab.zoo list
    python -m ucgm_lab.zoo build                       # everything
    python -m ucgm_lab.zoo build --only digits-linear-lam1 checkerboard-linear-lam0

Load and sample, the same way for every model::

    from ucgm_lab.zoo import load
    zm = load("checkerboard-linear-lam1")
    out = zm.sample(1000)                               # recommended sampler settings
    out = zm.sample(1000, nfe=4, kappa=0.25)            # an NFE budget, your own overrides
    digits = load("digits-linear-lam1").sample(torch.arange(10))   # one image per class id
    out = zm.sample(1000, nfe=8)                        # the settings a search found for 8 NFE
    cond = load("8gaussians-cond-lam0").sample(torch.arange(8).repeat(100), nfe=8)  # guidance too

Each checkpoint is a safetensors file of the EMA weights with JSON metadata: the network
config, the recipe, the parent model (few-step models start from the multi-step one as in the
paper), the training time and loss, and recommended sampler settings. Each checkpoint folder's
``checksums.json`` holds the sha256 of every file; :func:`load` refuses a file that does not
match it (a flipped byte, an edited transport) and :func:`build` updates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..metrics.digits_classifier import load_classifier, train_digits_classifier
from ..networks import build_network
from ..recipes import train
from ..sampler import SampleOutput, sample
from ..training.checkpoint import CheckpointError, read_zoo_file, save_weights, update_manifest
from ..transports import Transport, get_transport
from . import specs
from .specs import *  # noqa: F403  (the names of specs.__all__)
from .specs import ALL_NAMES, CLASSIFIER_NAME, ZOO_SPECS, default_directory, find_spec

__all__ = [
    "ZooModel",
    "available",
    "build",
    "classifier_available",
    "check_zoo_metadata",
    "load",
    "load_classifier",
    *specs.__all__,
]


@dataclass
class ZooModel:
    """A loaded zoo model.

    Attributes:
        name: Zoo name.
        model: The network (EMA weights, eval mode, no gradients).
        transport: Its transport.
        consistency_ratio: lambda it was trained with.
        dataset: The data set (2D points or images).
        sampling: Recommended sampler settings.
        metadata: Everything stored with the weights.
        data_shape: Shape of one sample: (2,) for 2D points, (C, H, W) for images.
    """

    name: str
    model: nn.Module
    transport: Transport
    consistency_ratio: float
    dataset: str
    sampling: dict[str, Any]
    metadata: dict[str, Any]
    data_shape: tuple[int, ...] = (2,)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of an image model (the same as :attr:`data_shape`)."""
        return self.data_shape

    @property
    def num_classes(self) -> int | None:
        """Number of classes of a class-conditional model, else None."""
        return self.metadata["network"].get("num_classes")

    def settings(self, nfe: int | None = None, **overrides: Any) -> dict[str, Any]:
        """The sampler keyword arguments :meth:`sample` uses.

        Without ``nfe``: the recommended settings. With ``nfe``: the settings a sampler search
        found for this model at that budget (``ucgm_lab.zoo.settings``; for a class-conditional
        model they may include ``guidance_scale`` and ``guidance_interval``, a guided
        evaluation counting 2 NFE), or, without a search result, the recommended settings on
        the default grid with ``steps = nfe`` at order 1. ``overrides`` go on top; giving
        ``steps`` or ``time_points`` replaces the grid.
        """
        from .settings import searched_settings  # lazy: it imports the search

        settings = dict(self.sampling)
        if nfe is not None:
            searched = searched_settings(self.name, nfe)
            if searched is not None:
                settings = dict(searched)
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
        self,
        n: int | Tensor,
        nfe: int | None = None,
        seed: int = 0,
        y: Tensor | None = None,
        **overrides: Any,
    ) -> SampleOutput:
        """Draw samples with UCGM-S.

        Args:
            n: Number of samples, or the class ids (B,) of a class-conditional model (one
                sample each). With a number, a class-conditional model gets the class ids
                0, 1, ..., K-1, 0, 1, ... (unless ``y`` is given).
            nfe: Network-evaluation budget (see :meth:`settings`); None keeps the recommended
                settings. Stored guidance is applied with the model's null class.
            seed: Seed of the initial noise (and of rho's fresh noise, with seed + 1).
            y: Class ids (n,) when ``n`` is a number.
            **overrides: Sampler settings replacing the chosen ones (kappa, rho, order, ...).

        Returns:
            The sampler's :class:`~ucgm_lab.sampler.SampleOutput`; ``sample`` has shape
            (B, *data_shape).
        """
        if isinstance(n, Tensor):
            y, n = n, int(n.shape[0])
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"n must be a positive number of samples or a tensor of class ids, got {n!r}."
            )
        if y is None and self.num_classes is not None:
            y = torch.arange(n) % self.num_classes
        device = next(self.model.parameters()).device
        noise = torch.randn((n, *self.data_shape), generator=torch.Generator().manual_seed(seed))
        return sample(
            self.model,
            noise.to(device),
            self.transport,
            y=None if y is None else y.to(device),
            generator=torch.Generator(device=device).manual_seed(seed + 1),
            **self.settings(nfe, **overrides),
        )


def available(directory: str | Path | None = None) -> list[str]:
    """The zoo models whose checkpoint exists: every name here is one :func:`load` accepts.

    Args:
        directory: Where to look (default: each model's shipped folder).

    Returns:
        Names of :data:`ZOO_SPECS`, in their order. The digits classifier is no generative
        model and not among them (:func:`classifier_available`, :func:`load_classifier`).
    """
    found = []
    for spec in ZOO_SPECS:
        folder = Path(directory) if directory is not None else spec.directory
        if (folder / f"{spec.name}.safetensors").is_file():
            found.append(spec.name)
    return found


def classifier_available(directory: str | Path | None = None) -> bool:
    """Whether the digits classifier's checkpoint exists (default: in :data:`DIGITS_DIR`)."""
    folder = Path(directory) if directory is not None else default_directory(CLASSIFIER_NAME)
    return (folder / f"{CLASSIFIER_NAME}.safetensors").is_file()


def load(
    name: str,
    directory: str | Path | None = None,
    device: str = "cpu",
    *,
    allow_unverified: bool = False,
) -> ZooModel:
    """Load a zoo model (2D or digits).

    Args:
        name: A name of :data:`ZOO_SPECS`.
        directory: The checkpoint folder (default: where the shipped checkpoint lives).
        device: Where to put the network.
        allow_unverified: Load a file that carries no content digest (see
            :func:`~ucgm_lab.training.checkpoint.load_weights`); every file the zoo writes has one.

    Raises:
        KeyError: Unknown name (the message lists the known ones).
        CheckpointError: The checkpoint is missing (the message says how to build it) or corrupt.
    """
    spec = find_spec(name)
    folder = Path(directory) if directory is not None else spec.directory
    # A missing parent is built too, so the command names the model alone.
    path, tensors, meta = read_zoo_file(
        folder,
        name,
        f"python -m ucgm_lab.zoo build --only {name}",
        allow_unverified=allow_unverified,
    )
    check_zoo_metadata(path, meta)
    try:
        net = meta["network"]
        model = build_network(net)
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
        )
        transport = get_transport(meta["recipe"]["transport"])
        if "image_size" in net:
            data_shape: tuple[int, ...] = (net["in_channels"], net["image_size"], net["image_size"])
        else:
            data_shape = (int(net.get("dim", 2)),)
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
        data_shape=data_shape,
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


def _build_classifier(path: Path, steps_scale: float) -> Path:
    run = train_digits_classifier(epochs=max(1, round(80 * steps_scale)))
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
    directory: str | Path | None = None,
    steps_scale: float = 1.0,
    progress: bool = True,
) -> list[Path]:
    """Train and save zoo models (parents first) and, if asked, the digits classifier.

    Args:
        only: Names to build (default: every name of :data:`ALL_NAMES`). A missing parent is
            built too.
        directory: Where to write (default: each model's shipped folder).
        steps_scale: Multiply every training budget (e.g. 0.01 for a smoke test).
        progress: Progress bars.

    Returns:
        Paths written.
    """
    wanted = list(ALL_NAMES) if not only else list(only)
    for name in wanted:
        if name != CLASSIFIER_NAME:
            find_spec(name)

    def folder(name: str) -> Path:
        return Path(directory) if directory is not None else default_directory(name)

    written: list[Path] = []
    if CLASSIFIER_NAME in wanted:
        written.append(
            _build_classifier(
                folder(CLASSIFIER_NAME) / f"{CLASSIFIER_NAME}.safetensors", steps_scale
            )
        )
    built: dict[str, nn.Module] = {}

    def ensure(name: str) -> nn.Module:
        if name in built:
            return built[name]
        spec = find_spec(name)
        path = folder(name) / f"{name}.safetensors"
        if name not in wanted and path.is_file():
            built[name] = load(name, folder(name)).model
            return built[name]
        init = ensure(spec.parent) if spec.parent else None
        recipe = spec.recipe.with_(steps=max(1, int(spec.recipe.steps * steps_scale)))
        run = train(recipe, init=init, progress=progress, device="cpu")
        tail = run.result.losses[-100:]
        meta = {
            "name": name,
            "network": run.model.config,
            "recipe": recipe.to_dict(),
            "parent": spec.parent,
            "sampling": spec.sampling,
            "description": spec.description,
            "train_seconds": round(run.result.seconds, 1),
            "seconds_per_step": round(run.seconds_per_step, 4),
            "torch_threads": torch.get_num_threads(),
            "final_loss": sum(tail) / len(tail),
        }
        written.append(save_weights(path, run.model.state_dict(), meta))
        update_manifest(path)
        built[name] = run.model
        return run.model

    for name in wanted:
        if name != CLASSIFIER_NAME:
            ensure(name)
    return written
