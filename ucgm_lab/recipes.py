"""Training recipes of the lessons, for 2D points and images alike, on the shared trainer.

A recipe says what to train (data set, transport, lambda, zeta, network size) and with what
budget; :func:`train` runs it with :class:`~ucgm_lab.training.Trainer` and returns the EMA
model. There is one recipe type, :class:`Recipe`, whose two data kinds differ only in their
network and data: :class:`ToyRecipe` (an ``MLP2D`` on a ``toy_data`` 2D set) and
:class:`ImageRecipe` (a ``SmallUNet`` on digits or CIFAR-10). Everything else -- the
objective, the optimiser rule, the trainer -- is written once here.

Few-step models (lambda > 0) start from a multi-step model as in the paper (Tab. 6: RAdam,
betas (0.9, 0.999), Beta(0.8, 1.0) training times), with a small learning rate (2e-4; few-step
training from a multi-step model diverged at 1e-3 on the checkerboard).

Image budgets (measured on 2 CPU cores, torch 2.13, when the machine was otherwise idle):

* digits, 8x8, ``DIGITS_RECIPE``: a 0.55M-parameter SmallUNet, batch 128; 0.075 s per step
  at lambda = 0 (the zoo's 2000 steps: 2.5 minutes) and 0.13 s per step at lambda = 1 (two
  extra no-grad forwards; 600 steps: 1.3 minutes).
* CIFAR-10, 32x32, ``CIFAR10_RECIPE``: the same code path with a 4.5M-parameter SmallUNet;
  4.6 s per step at batch 128 on the CPU, so the 100k-step budget would take about five days
  there and only a short demonstration fits. On one GPU the same recipe should take hours
  (an estimate, not measured here): ``train(..., device=None)`` lets accelerate pick the GPU,
  and ``accelerate launch`` spreads it over several.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .data import DataKind, load_image_data
from .networks import MLP2D, SmallUNet
from .objective import UCGMObjective
from .schedules import BetaTimeDistribution
from .training import Callback, TensorDataSource, Trainer, TrainerConfig, TrainResult
from .transports import get_transport

__all__ = [
    "CIFAR10_RECIPE",
    "DIGITS_RECIPE",
    "ImageRecipe",
    "ImageRun",
    "Recipe",
    "ToyRecipe",
    "ToyRun",
    "TrainRun",
    "build_image_network",
    "train",
    "train_images",
    "train_toy",
]


@dataclass(frozen=True)
class Recipe:
    """What and how to train: the fields every data kind shares.

    Attributes:
        dataset: The data set's name (its kind: :func:`ucgm_lab.data.data_kind`).
        transport: Transport name (Tab. 2).
        consistency_ratio: lambda.
        enhancement_ratio: zeta (lambda > 0: towards the frozen multi-step teacher ``init``).
        conditional: Class-conditional (label dropout 0.1 to the null class).
        steps: Optimizer steps.
        batch_size: Batch size (at most the data set's size).
        lr: Learning rate (default: 2e-3 for lambda = 0, 2e-4 for lambda > 0).
        seed: Seed of the data, the initialisation and the training randomness.
        ema_decay: EMA decay of the weights.
        extra: Further ``UCGMObjective`` keyword arguments.
    """

    kind: ClassVar[DataKind]

    dataset: str = "checkerboard"
    transport: str = "linear"
    consistency_ratio: float = 0.0
    enhancement_ratio: float = 0.0
    conditional: bool = False
    steps: int = 3000
    batch_size: int = 1024
    lr: float | None = None
    seed: int = 0
    ema_decay: float = 0.995
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Recipe:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in zoo metadata)."""
        return asdict(self)

    @property
    def few_step(self) -> bool:
        """Lambda > 0: trained from a multi-step model with the paper's few-step settings."""
        return self.consistency_ratio > 0

    @property
    def learning_rate(self) -> float:
        """The learning rate used: ``lr`` or the default for this lambda."""
        if self.lr is not None:
            return self.lr
        return 2e-4 if self.few_step else 2e-3

    def training_data(self) -> tuple[Tensor, Tensor | None, int | None]:
        """(inputs (N, ...), class ids (N,) or None, number of classes or None)."""
        raise NotImplementedError

    def build_network(self, data_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        """A fresh network for inputs of shape ``data_shape`` (without the batch axis)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ToyRecipe(Recipe):
    """A recipe on 2D points: an ``MLP2D`` on a ``toy_data`` set (``data_size`` points drawn).

    Attributes:
        hidden, depth: MLP size.
        time_scale: Scale of the MLP's sinusoidal time embedding (see ``MLP2D``); 30 keeps the
            embedding smooth at the lambda = 1 finite-difference step 0.005 (with 1000 the
            few-step models drift back towards the flow-matching solution).
        data_size: Number of training points drawn from the data set.
    """

    kind: ClassVar[DataKind] = "points"

    hidden: int = 128
    depth: int = 4
    time_scale: float = 30.0
    data_size: int = 100_000

    def training_data(self) -> tuple[Tensor, Tensor | None, int | None]:
        """The drawn points (N, 2), their class ids and the number of classes."""
        from toy_data import num_classes, sample_2d

        data = sample_2d(self.dataset, self.data_size, seed=self.seed)
        return data.points, data.labels, num_classes(self.dataset)

    def build_network(self, data_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        """The recipe's MLP2D (``data_shape`` is (2,))."""
        classes = num_classes if self.conditional else None
        return MLP2D(
            hidden=self.hidden, depth=self.depth, num_classes=classes, time_scale=self.time_scale
        )


@dataclass(frozen=True)
class ImageRecipe(Recipe):
    """A recipe on images: a ``SmallUNet`` on "digits" or "cifar10" (class-conditional by default).

    Attributes:
        data_root: CIFAR-10 folder or its parent (None: searched, see ``find_cifar10``).
        base_channels, channel_mults, num_res_blocks: SmallUNet size.
        time_scale: Scale of the SmallUNet's sinusoidal time embedding; 30, as for the 2D
            recipes, keeps the network smooth in t at the lambda > 0 finite-difference step 0.005
            (a network fed 1000 t fails ``ucgm_lab.time_sensitivity`` and its few-step
            models regress on noise).
    """

    kind: ClassVar[DataKind] = "images"

    dataset: str = "digits"
    conditional: bool = True
    steps: int = 2000
    batch_size: int = 128
    data_root: str | None = None
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    time_scale: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in zoo metadata), with the learning rate used."""
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["lr"] = self.learning_rate
        return d

    def training_data(self) -> tuple[Tensor, Tensor | None, int | None]:
        """The train split's images (N, C, H, W), their class ids and the number of classes."""
        data = load_image_data(self.dataset, "train", self.data_root)
        return data.images, data.labels, data.num_classes

    def build_network(self, data_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        """The recipe's SmallUNet for images of shape (C, H, W) (H = W)."""
        return build_image_network(self, data_shape, num_classes)


DIGITS_RECIPE = ImageRecipe()
"""Multi-step (lambda = 0) class-conditional digits model, the root of the digits zoo."""

CIFAR10_RECIPE = ImageRecipe(
    dataset="cifar10",
    base_channels=64,
    channel_mults=(1, 2, 2),
    num_res_blocks=2,
    steps=100_000,
    ema_decay=0.9999,
)
"""CIFAR-10 (lambda = 0): a 32x32 SmallUNet; ``steps`` is a GPU budget (use ``with_(steps=...)``
for a CPU demonstration)."""


def build_image_network(
    recipe: ImageRecipe, image_shape: tuple[int, ...], num_classes: int | None
) -> SmallUNet:
    """The SmallUNet of an image recipe for images of shape (C, H, W) (H = W)."""
    channels, size, _ = image_shape
    return SmallUNet(
        channels,
        size,
        base_channels=recipe.base_channels,
        channel_mults=recipe.channel_mults,
        num_res_blocks=recipe.num_res_blocks,
        num_classes=num_classes if recipe.conditional else None,
        time_scale=recipe.time_scale,
    )


@dataclass
class TrainRun:
    """The outcome of :func:`train`.

    Attributes:
        model: The EMA model (eval mode, no gradients): use it for sampling.
        recipe: The recipe.
        result: The trainer's result (losses, time).
        trainer: The trainer (its ``unwrapped_model`` holds the raw weights).
    """

    model: nn.Module
    recipe: Recipe
    result: TrainResult
    trainer: Trainer

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a training step in this run."""
        return self.result.seconds / max(len(self.result.losses), 1)


ToyRun = TrainRun
"""The run of a 2D recipe (the same type)."""
ImageRun = TrainRun
"""The run of an image recipe (the same type)."""


def _objective(recipe: Recipe, teacher: nn.Module | None) -> UCGMObjective:
    kwargs: dict[str, Any] = {
        "transport": get_transport(recipe.transport),
        "consistency_ratio": recipe.consistency_ratio,
        "enhancement_ratio": recipe.enhancement_ratio,
        "time_distribution": BetaTimeDistribution(0.8, 1.0)
        if recipe.few_step
        else BetaTimeDistribution(1.0, 1.0),
        "label_dropout": 0.1 if recipe.conditional else 0.0,
    }
    if recipe.few_step and recipe.enhancement_ratio > 0:
        kwargs["teacher"] = teacher
    kwargs.update(recipe.extra)
    return UCGMObjective(**kwargs)


def train(
    recipe: Recipe,
    init: nn.Module | None = None,
    progress: bool = True,
    device: str | None = None,
    callbacks: Sequence[tuple[int, Callback]] = (),
) -> TrainRun:
    """Train a model with UCGM-T, on 2D points or images as the recipe says.

    Args:
        recipe: What to train (a :class:`ToyRecipe` or an :class:`ImageRecipe`).
        init: Starting weights (the multi-step model for lambda > 0 in the paper's recipe;
            copied, never modified). Without it a new network is initialised.
        progress: Show a progress bar.
        device: "cpu" forces the CPU; None lets accelerate choose (a GPU if any).
        callbacks: ``(every, callback)`` pairs for the trainer.

    Returns:
        :class:`TrainRun` with the EMA model.

    Raises:
        FileNotFoundError: CIFAR-10 is not available.
        ValueError: A conditional recipe with an unconditional ``init``.
    """
    if not isinstance(recipe, Recipe) or type(recipe) is Recipe:
        raise TypeError(
            f"recipe must be a ToyRecipe or an ImageRecipe, got {type(recipe).__name__}."
        )
    torch.manual_seed(recipe.seed)
    inputs, labels, num_classes = recipe.training_data()
    if init is not None:
        model = copy.deepcopy(init).requires_grad_(True).train()
    else:
        model = recipe.build_network(tuple(inputs.shape[1:]), num_classes)
    if recipe.conditional and getattr(model, "null_class", None) is None:
        raise ValueError(
            "A conditional recipe needs a class-conditional model (init has no null_class)."
        )
    config = TrainerConfig(
        steps=recipe.steps,
        lr=recipe.learning_rate,
        optimizer="radam" if recipe.few_step else "adamw",
        betas=(0.9, 0.999) if recipe.few_step else (0.9, 0.99),
        ema_decay=recipe.ema_decay,
        ema_ramp=False,  # the zoo's and the demo's measured recipes (fixed decay 0.995)
        seed=recipe.seed,
        progress=progress,
        cpu=device == "cpu",
        mixed_precision="no",
        log_every=max(1, min(50, recipe.steps)),
    )
    source = TensorDataSource(
        inputs,
        labels if recipe.conditional else None,
        batch_size=min(recipe.batch_size, inputs.shape[0]),
        seed=recipe.seed,
    )
    trainer = Trainer(model, _objective(recipe, init), source, config, callbacks=callbacks)
    result = trainer.fit()
    return TrainRun(model=trainer.ema_model, recipe=recipe, result=result, trainer=trainer)


def train_toy(
    recipe: ToyRecipe,
    init: nn.Module | None = None,
    progress: bool = True,
    device: str | None = None,
) -> TrainRun:
    """:func:`train` for a 2D recipe (device: accelerate's choice unless "cpu")."""
    return train(recipe, init, progress, device)


def train_images(
    recipe: ImageRecipe,
    init: nn.Module | None = None,
    progress: bool = True,
    device: str | None = "cpu",
    callbacks: Sequence[tuple[int, Callback]] = (),
) -> TrainRun:
    """:func:`train` for an image recipe, on the CPU unless ``device=None`` (accelerate's choice)."""
    return train(recipe, init, progress, device, callbacks)
