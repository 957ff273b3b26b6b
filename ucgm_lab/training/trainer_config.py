"""The Trainer's settings, result, callback type and errors.

:class:`TrainerConfig`, :class:`TrainResult`, :data:`Callback`, :class:`NonFiniteLossError` and
:class:`ResumeMismatchError`; :mod:`ucgm_lab.training.trainer` runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = [
    "Callback",
    "NonFiniteLossError",
    "ResumeMismatchError",
    "TrainResult",
    "TrainerConfig",
]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; training stopped."""


class ResumeMismatchError(ValueError):
    """A checkpoint does not fit this run (objective, model, accumulation, scaler, processes)."""


@dataclass
class TrainerConfig:
    """Settings of a training run.

    Attributes:
        steps: Total number of optimizer steps of the run (a resumed run continues to it).
        lr: Learning rate (Tab. 6: 2e-4 with AdamW for multi-step, 1e-4 with RAdam few-step).
        optimizer: "adamw" or "radam".
        betas: Adam betas (Tab. 6: (0.9, 0.95) multi-step, (0.9, 0.999) few-step).
        weight_decay: Decoupled weight decay.
        grad_clip: Max gradient norm (None disables clipping).
        ema_decay: Decay d of the EMA of weights: the largest decay, reached after
            (10 d - 1) / (1 - d) steps with ``ema_ramp`` (Tab. 6: 0.9999 for runs of hundreds of
            thousands of steps; the default 0.999 averages the last ~1000 steps).
        ema_ramp: Ramp the EMA's decay up as min(ema_decay, (1 + k) / (10 + k)) at the k-th
            step of the run (:class:`~ucgm_lab.ema.ExponentialMovingAverage`, ``ramp``), so
            that the EMA forgets its starting weights: random ones, or the lambda = 0 parent
            of a few-step fine-tune (:meth:`Trainer.start_from` restarts the ramp). Without it
            a fixed 0.999 keeps 22% of the parent after 1500 steps, and the few-step EMA model
            was worse than its raw weights (``benchmarks/ema_few_step.py``, docs/benchmarks.md).
        mixed_precision: "auto" (bf16 on CUDA devices that support it, else none), "no",
            "bf16" or "fp16".
        seed: Seed of the model-independent randomness (objective draws, data order).
        checkpoint_dir: Folder for checkpoints (None: no checkpoints).
        checkpoint_every: Save every this many steps (0: only at the end of ``fit``).
        keep_last: Besides ``last.pt``, keep the newest this many numbered checkpoints
            ``step_XXXXXXXXX.pt`` (0: only ``last.pt``). The newest numbered file is a hard link
            to ``last.pt`` where the file system allows, so it costs no extra space.
        log_every: Update the progress bar and trackers every this many steps.
        progress: Show a tqdm progress bar (on the main process).
        cpu: Force the CPU even when an accelerator is present.
        log_with: An accelerate tracker name (e.g. "tensorboard"), or None.
        project_dir: Folder for tracker logs.
        compile: torch.compile: False (none), True or "blocks" (every block of a model with
            ``compile_blocks``, e.g. :class:`~ucgm_lab.networks.TiT`, teachers included; the
            whole model for others), "model" (the whole model) or "auto" ("blocks" on CUDA,
            none elsewhere). Block compilation is applied after the DDP wrap.
        compile_backend: The torch.compile backend ("inductor"; "eager" or "aot_eager" test
            the wiring without a compiler).
        gradient_accumulation_steps: Micro-batches per optimizer step (k). Every process's
            share of a global batch is split into k equal micro-batches whose gradients are
            summed (each loss divided by k, through accelerate), so k micro-batches of B / k
            give the gradient of one batch of B; the optimizer, the EMA, the objective's
            teacher and ``step`` advance once per optimizer step.
        fused_optimizer: Use the fused AdamW kernel (``fused=True``): "auto" on CUDA, True,
            or False.
        memory_check: Before the first step on CUDA, estimate the memory per GPU
            (:mod:`ucgm_lab.training.memory`) for a model that supports it: "auto" turns
            gradient checkpointing on when the estimate exceeds the device memory (and raises
            naming the largest batch that fits if even that does not), "warn" only warns,
            "off" skips the estimate.
        overwrite: Let :meth:`Trainer.fit` start a new run in a ``checkpoint_dir`` that holds
            another run's checkpoints, deleting them first (default: refused, see
            :mod:`ucgm_lab.training.run_folder`).
    """

    steps: int = 1000
    lr: float = 2e-4
    optimizer: Literal["adamw", "radam"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    ema_ramp: bool = True
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_last: int = 2
    log_every: int = 10
    progress: bool = True
    cpu: bool = False
    log_with: str | None = None
    project_dir: str | None = None
    compile: bool | Literal["auto", "blocks", "model"] = False
    compile_backend: str = "inductor"
    gradient_accumulation_steps: int = 1
    fused_optimizer: bool | Literal["auto"] = "auto"
    memory_check: Literal["auto", "warn", "off"] = "auto"
    overwrite: bool = False

    @classmethod
    def few_step(cls, **changes: Any) -> TrainerConfig:
        """Settings for a few-step (lambda > 0) fine-tune from a multi-step checkpoint.

        The optimizer of Tab. 6's few-step runs, RAdam with betas (0.9, 0.999), at lr 2e-4
        (few-step training from a multi-step model diverged at 1e-3 on the checkerboard,
        :mod:`ucgm_lab.recipes`); every other field keeps its default. Keyword arguments
        override any field: ``TrainerConfig.few_step(steps=1500, checkpoint_dir="runs/lam1")``.
        """
        settings: dict[str, Any] = {"optimizer": "radam", "betas": (0.9, 0.999), "lr": 2e-4}
        settings.update(changes)
        return cls(**settings)

    def __post_init__(self) -> None:
        _int(self.steps, "steps", 0)
        _int(self.seed, "seed", 0)
        _int(self.checkpoint_every, "checkpoint_every", 0, "0 saves only at the end of fit")
        _int(self.keep_last, "keep_last", 0, "0 keeps only last.pt")
        _int(self.log_every, "log_every", 1)
        if not _number(self.lr, "lr") > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.optimizer not in ("adamw", "radam"):
            raise ValueError(f"optimizer must be 'adamw' or 'radam', got {self.optimizer!r}.")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(
                f"mixed_precision must be auto/no/bf16/fp16, got {self.mixed_precision!r}."
            )
        if not 0 <= _number(self.ema_decay, "ema_decay") <= 1:
            raise ValueError(f"ema_decay must lie in [0, 1], got {self.ema_decay}.")
        if self.grad_clip is not None and not _number(self.grad_clip, "grad_clip") > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}.")
        if _number(self.weight_decay, "weight_decay") < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}.")
        for i, b in enumerate(self.betas):
            if not 0 <= _number(b, f"betas[{i}]") < 1:
                raise ValueError(f"betas must lie in [0, 1), got {self.betas!r}.")
        for name in ("checkpoint_dir", "project_dir", "log_with"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, Path)):
                raise TypeError(f"{name} must be a string (a path) or None, got {value!r}.")
        if isinstance(self.checkpoint_dir, Path):
            self.checkpoint_dir = str(self.checkpoint_dir)
        _int(self.gradient_accumulation_steps, "gradient_accumulation_steps", 1)
        for name in ("progress", "cpu", "overwrite", "ema_ramp"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if not isinstance(self.compile, bool) and self.compile not in ("auto", "blocks", "model"):
            raise ValueError(
                f"compile must be True, False, 'auto', 'blocks' or 'model', got {self.compile!r}."
            )
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise TypeError(
                f"compile_backend must be a backend name, got {self.compile_backend!r}."
            )
        if not isinstance(self.fused_optimizer, bool) and self.fused_optimizer != "auto":
            raise ValueError(
                f"fused_optimizer must be True, False or 'auto', got {self.fused_optimizer!r}."
            )
        if self.memory_check not in ("auto", "warn", "off"):
            raise ValueError(
                f"memory_check must be 'auto', 'warn' or 'off', got {self.memory_check!r}."
            )
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _int(value: Any, name: str, minimum: int, note: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = f" ({note})" if note else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}.")
    return value


@dataclass(repr=False)
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        step: The step reached.
        losses: Loss of every step of the run so far (including steps before a resume); the
            repr shows their count and the last one only. At lambda = 0 the loss is Alg. 1's
            weighted one, about 5x a flow-matching MSE (:class:`~ucgm_lab.UCGMObjective`,
            "Loss scale").
        checkpoint: Path of the last checkpoint this trainer wrote (``last.pt`` after a
            ``fit`` with ``checkpoint_dir``), or None if it wrote none (no ``checkpoint_dir``,
            or a resumed run that was already at its target). The file a run resumed from is
            ``Trainer.last_checkpoint``.
        seconds: Wall time of this call.
        metrics: Values recorded by callbacks, by name, as (step, value) pairs.
        skipped_steps: Steps whose optimizer update a gradient scaler skipped (fp16 overflow).
        stopped_by: "SIGTERM" or "SIGINT" when a signal stopped the run before its last step
            (a checkpoint of ``step`` was written where ``checkpoint_dir`` is set), else None.
    """

    step: int
    losses: list[float]
    checkpoint: Path | None
    seconds: float
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    skipped_steps: int = 0
    stopped_by: str | None = None

    def __repr__(self) -> str:
        """One line: the step, the number of losses and the last, the checkpoint, the time."""
        last = f", last {self.losses[-1]:.4g}" if self.losses else ""
        metrics = f", metrics={sorted(self.metrics)}" if self.metrics else ""
        skipped = f", skipped_steps={self.skipped_steps}" if self.skipped_steps else ""
        return (
            f"TrainResult(step={self.step}, losses=[{len(self.losses)} values{last}], "
            f"checkpoint={self.checkpoint!r}, seconds={self.seconds:.1f}{metrics}{skipped})"
        )


Callback = Callable[["Trainer", int, dict[str, float]], dict[str, float] | None]
"""A callback gets (trainer, step, logs) after the step; it may return metrics to record."""
