"""Training recipes for images (digits, CIFAR-10) on the shared trainer.

An :class:`ImageRecipe` says what to train (data set, transport, lambda, zeta, network size)
and with what budget; :func:`train_images` runs it with :class:`~ucgm_lab.training.Trainer`
(``mixed_precision="no"``) and returns the EMA model. As for the 2D recipes
(:mod:`ucgm_lab.recipes`), few-step models (lambda > 0) start from a multi-step model as in
the paper (Tab. 6: RAdam, betas (0.9, 0.999), Beta(0.8, 1.0) training times), with a small
learning rate.

Budgets (measured on 2 CPU cores, torch 2.13, when the machine was otherwise idle):

* digits, 8x8, ``DIGITS_RECIPE``: a 0.55M-parameter SmallUNet, batch 128; 0.075 s per step
  at lambda = 0 (the zoo's 2000 steps: 2.5 minutes) and 0.13 s per step at lambda = 1 (two
  extra no-grad forwards; 600 steps: 1.3 minutes).
* CIFAR-10, 32x32, ``CIFAR10_RECIPE``: the same code path with a 4.5M-parameter SmallUNet;
  4.6 s per step at batch 128 on the CPU, so the 100k-step budget would take about five days
  there and only a short demonstration fits. On one GPU the same recipe should take hours
  (an estimate, not measured here): ``train_images(..., device=None)`` lets accelerate pick
  the GPU, and ``accelerate launch`` spreads it over several.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..networks import SmallUNet
from ..objective import UCGMObjective
from ..schedules import BetaTimeDistribution
from ..training import Callback, TensorDataSource, Trainer, TrainerConfig, TrainResult
from ..transports import get_transport
from .data import load_image_data

__all__ = ["CIFAR10_RECIPE", "DIGITS_RECIPE", "ImageRecipe", "ImageRun", "build_image_network", "train_images"]


@dataclass(frozen=True)
class ImageRecipe:
    """What and how to train on an image data set.

    Attributes:
        dataset: "digits" or "cifar10".
        data_root: CIFAR-10 folder or its parent (None: searched, see ``find_cifar10``).
        transport: Transport name (Tab. 2).
        consistency_ratio: lambda.
        enhancement_ratio: zeta (lambda > 0: towards the frozen multi-step teacher).
        conditional: Class-conditional (label dropout 0.1 to the null class).
        steps: Optimizer steps.
        batch_size: Batch size.
        lr: Learning rate (default: 2e-3 for lambda = 0, 2e-4 for lambda > 0).
        base_channels, channel_mults, num_res_blocks: SmallUNet size.
        seed: Seed of the initialisation and the training randomness.
        ema_decay: EMA decay of the weights.
        extra: Further ``UCGMObjective`` keyword arguments.
    """

    dataset: str = "digits"
    data_root: str | None = None
    transport: str = "linear"
    consistency_ratio: float = 0.0
    enhancement_ratio: float = 0.0
    conditional: bool = True
    steps: int = 2000
    batch_size: int = 128
    lr: float | None = None
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    seed: int = 0
    ema_decay: float = 0.995
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> ImageRecipe:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in zoo metadata), with the learning rate used."""
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["lr"] = self.learning_rate
        return d

    @property
    def learning_rate(self) -> float:
        """The learning rate used: ``lr`` or the default for this lambda."""
        if self.lr is not None:
            return self.lr
        return 2e-4 if self.consistency_ratio > 0 else 2e-3


DIGITS_RECIPE = ImageRecipe()
"""Multi-step (lambda = 0) class-conditional digits model, the root of the digits zoo."""

CIFAR10_RECIPE = ImageRecipe(
    dataset="cifar10", base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, steps=100_000, ema_decay=0.9999
)
"""CIFAR-10 (lambda = 0): a 32x32 SmallUNet; ``steps`` is a GPU budget (use ``with_(steps=...)``
for a CPU demonstration)."""


@dataclass
class ImageRun:
    """The outcome of :func:`train_images`.

    Attributes:
        model: The EMA model (eval mode, no gradients): use it for sampling.
        recipe: The recipe.
        result: The trainer's result (losses, time).
        trainer: The trainer (its ``unwrapped_model`` holds the raw weights).
    """

    model: nn.Module
    recipe: ImageRecipe
    result: TrainResult
    trainer: Trainer

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a training step in this run."""
        return self.result.seconds / max(len(self.result.losses), 1)


def build_image_network(recipe: ImageRecipe, image_shape: tuple[int, int, int], num_classes: int) -> SmallUNet:
    """The SmallUNet of a recipe for images of shape (C, H, W) (H = W)."""
    channels, size, _ = image_shape
    return SmallUNet(
        channels,
        size,
        base_channels=recipe.base_channels,
        channel_mults=recipe.channel_mults,
        num_res_blocks=recipe.num_res_blocks,
        num_classes=num_classes if recipe.conditional else None,
    )


def _objective(recipe: ImageRecipe, teacher: nn.Module | None) -> UCGMObjective:
    few_step = recipe.consistency_ratio > 0
    kwargs: dict[str, Any] = {
        "transport": get_transport(recipe.transport),
        "consistency_ratio": recipe.consistency_ratio,
        "enhancement_ratio": recipe.enhancement_ratio,
        "time_distribution": BetaTimeDistribution(0.8, 1.0) if few_step else BetaTimeDistribution(1.0, 1.0),
        "label_dropout": 0.1 if recipe.conditional else 0.0,
    }
    if few_step and recipe.enhancement_ratio > 0:
        kwargs["teacher"] = teacher
    kwargs.update(recipe.extra)
    return UCGMObjective(**kwargs)


def train_images(
    recipe: ImageRecipe,
    init: nn.Module | None = None,
    progress: bool = True,
    device: str | None = "cpu",
    callbacks: Sequence[tuple[int, Callback]] = (),
) -> ImageRun:
    """Train an image model with UCGM-T.

    Args:
        recipe: What to train.
        init: Starting weights (the multi-step model for lambda > 0; copied, never modified).
            Without it a new SmallUNet is initialised.
        progress: Show a progress bar.
        device: "cpu" (default) forces the CPU; None lets accelerate choose (a GPU if any).
        callbacks: ``(every, callback)`` pairs for the trainer.

    Returns:
        :class:`ImageRun` with the EMA model.

    Raises:
        FileNotFoundError: CIFAR-10 is not available.
        ValueError: A conditional recipe with an unconditional ``init``.
    """
    torch.manual_seed(recipe.seed)
    data = load_image_data(recipe.dataset, "train", recipe.data_root)
    if init is not None:
        model = copy.deepcopy(init).requires_grad_(True).train()
    else:
        model = build_image_network(recipe, data.image_shape, data.num_classes)
    if recipe.conditional and getattr(model, "null_class", None) is None:
        raise ValueError("A conditional recipe needs a class-conditional model (init has no null_class).")
    few_step = recipe.consistency_ratio > 0
    config = TrainerConfig(
        steps=recipe.steps,
        lr=recipe.learning_rate,
        optimizer="radam" if few_step else "adamw",
        betas=(0.9, 0.999) if few_step else (0.9, 0.99),
        ema_decay=recipe.ema_decay,
        seed=recipe.seed,
        progress=progress,
        cpu=device == "cpu",
        mixed_precision="no",
        log_every=max(1, min(50, recipe.steps)),
    )
    batch_size = min(recipe.batch_size, len(data))
    source = TensorDataSource(
        data.images, data.labels if recipe.conditional else None, batch_size=batch_size, seed=recipe.seed
    )
    trainer = Trainer(model, _objective(recipe, init), source, config, callbacks=callbacks)
    result = trainer.fit()
    return ImageRun(model=trainer.ema_model, recipe=recipe, result=result, trainer=trainer)
