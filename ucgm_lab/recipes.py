"""Ready-made training recipes for the 2D toy problems (used by the zoo, the demo and notebooks).

A :class:`ToyRecipe` says what to train (data set, transport, lambda, zeta, network size) and
with what budget; :func:`train_toy` runs it with the shared :class:`~ucgm_lab.training.Trainer`
and returns the EMA model. Few-step models (lambda > 0) start from a multi-step model as in the
paper (Tab. 6: RAdam, betas (0.9, 0.999), Beta(0.8, 1.0) times).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .networks import MLP2D
from .objective import UCGMObjective
from .schedules import BetaTimeDistribution
from .training import TensorDataSource, Trainer, TrainerConfig, TrainResult
from .transports import get_transport

__all__ = ["ToyRecipe", "ToyRun", "train_toy"]


@dataclass(frozen=True)
class ToyRecipe:
    """What and how to train on a 2D toy data set.

    Attributes:
        dataset: A name from ``toy_data.list_2d_datasets()``.
        transport: Transport name (Tab. 2).
        consistency_ratio: lambda.
        enhancement_ratio: zeta (needs ``conditional``).
        conditional: Train with class labels (label dropout 0.1, null class).
        steps: Optimizer steps.
        batch_size: Batch size.
        lr: Learning rate (default: 2e-3 for lambda = 0, 2e-4 for lambda > 0: few-step training
            from a multi-step model diverged at 1e-3 on the checkerboard).
        hidden, depth: MLP size.
        time_scale: Scale of the MLP's sinusoidal time embedding (see ``MLP2D``); 30 keeps the
            embedding smooth at the lambda = 1 finite-difference step 0.005 (with 1000 the
            few-step models drift back towards the flow-matching solution).
        data_size: Number of training points drawn from the data set.
        seed: Seed of the data, the initialisation and the training randomness.
        ema_decay: EMA decay of the weights.
        extra: Further ``UCGMObjective`` keyword arguments.
    """

    dataset: str = "checkerboard"
    transport: str = "linear"
    consistency_ratio: float = 0.0
    enhancement_ratio: float = 0.0
    conditional: bool = False
    steps: int = 3000
    batch_size: int = 1024
    lr: float | None = None
    hidden: int = 128
    depth: int = 4
    time_scale: float = 30.0
    data_size: int = 100_000
    seed: int = 0
    ema_decay: float = 0.995
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> ToyRecipe:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in zoo metadata)."""
        return asdict(self)


@dataclass
class ToyRun:
    """The outcome of :func:`train_toy`.

    Attributes:
        model: The EMA model (eval mode, no gradients): use it for sampling.
        recipe: The recipe.
        result: The trainer's result (losses, time).
        trainer: The trainer (its ``unwrapped_model`` holds the raw weights).
    """

    model: nn.Module
    recipe: ToyRecipe
    result: TrainResult
    trainer: Trainer


def _objective(recipe: ToyRecipe, teacher: nn.Module | None) -> UCGMObjective:
    few_step = recipe.consistency_ratio > 0
    kwargs: dict[str, Any] = {
        "transport": get_transport(recipe.transport),
        "consistency_ratio": recipe.consistency_ratio,
        "enhancement_ratio": recipe.enhancement_ratio,
        "time_distribution": BetaTimeDistribution(0.8, 1.0)
        if few_step
        else BetaTimeDistribution(1.0, 1.0),
    }
    if few_step and recipe.enhancement_ratio > 0:
        kwargs["teacher"] = teacher
    kwargs.update(recipe.extra)
    return UCGMObjective(**kwargs)


def train_toy(
    recipe: ToyRecipe,
    init: nn.Module | None = None,
    progress: bool = True,
    device: str | None = None,
) -> ToyRun:
    """Train a 2D toy model with UCGM-T.

    Args:
        recipe: What to train.
        init: Starting weights (required for lambda > 0 in the paper's recipe: the multi-step
            model; it is copied, never modified). Without it a new MLP is initialised.
        progress: Show a progress bar.
        device: "cpu" to force the CPU (default: accelerate's choice).

    Returns:
        :class:`ToyRun` with the EMA model.
    """
    from toy_data import num_classes, sample_2d

    torch.manual_seed(recipe.seed)
    data = sample_2d(recipe.dataset, recipe.data_size, seed=recipe.seed)
    classes = num_classes(recipe.dataset) if recipe.conditional else None
    if init is not None:
        model = copy.deepcopy(init).requires_grad_(True).train()
    else:
        model = MLP2D(
            hidden=recipe.hidden, depth=recipe.depth, num_classes=classes, time_scale=recipe.time_scale
        )
    if recipe.conditional and getattr(model, "null_class", None) is None:
        raise ValueError(
            "A conditional recipe needs a class-conditional model (init has no null_class)."
        )
    few_step = recipe.consistency_ratio > 0
    lr = recipe.lr if recipe.lr is not None else (2e-4 if few_step else 2e-3)
    config = TrainerConfig(
        steps=recipe.steps,
        lr=lr,
        optimizer="radam" if few_step else "adamw",
        betas=(0.9, 0.999) if few_step else (0.9, 0.99),
        ema_decay=recipe.ema_decay,
        seed=recipe.seed,
        progress=progress,
        cpu=device == "cpu",
        mixed_precision="no",
        log_every=50,
    )
    source = TensorDataSource(
        data.points,
        data.labels if recipe.conditional else None,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
    )
    trainer = Trainer(model, _objective(recipe, init), source, config)
    result = trainer.fit()
    return ToyRun(model=trainer.ema_model, recipe=recipe, result=result, trainer=trainer)
