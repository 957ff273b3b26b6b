"""One training loop for notebooks, the demo and scale/: UCGM-T on top of accelerate.

The same :class:`Trainer` runs single-process on a CPU inside a notebook and multi-process
under ``accelerate launch`` (torch.distributed). It owns the optimizer (AdamW or RAdam, as in
Tab. 6), gradient clipping, the EMA of weights, mixed precision where the device has it, a
guard against non-finite losses, atomic checkpoints that resume exactly, a progress bar and
callbacks.

Exact resume: every source of randomness is either a generator whose state is saved (the
objective's draws of t, z and label dropout) or a pure function of the seed and the position
(the data order), so N steps in one run equal N/2 steps, a checkpoint, a resume, and N/2 steps.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..ema import ExponentialMovingAverage, unwrap_model
from ..objective import UCGMObjective
from .checkpoint import load_checkpoint, save_checkpoint
from .data import DataSource

__all__ = [
    "Callback",
    "NonFiniteLossError",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "resolve_precision",
]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; training stopped."""


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
        ema_decay: Decay of the EMA of weights (Tab. 6: 0.9999; small runs want less).
        mixed_precision: "auto" (bf16 on CUDA devices that support it, else none), "no",
            "bf16" or "fp16".
        seed: Seed of the model-independent randomness (objective draws, data order).
        checkpoint_dir: Folder for checkpoints (None: no checkpoints).
        checkpoint_every: Save every this many steps (0: only at the end of ``fit``).
        log_every: Update the progress bar and trackers every this many steps.
        progress: Show a tqdm progress bar (on the main process).
        cpu: Force the CPU even when an accelerator is present.
        log_with: An accelerate tracker name (e.g. "tensorboard"), or None.
        project_dir: Folder for tracker logs.
        compile: Wrap the model with torch.compile.
    """

    steps: int = 1000
    lr: float = 2e-4
    optimizer: Literal["adamw", "radam"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    log_every: int = 10
    progress: bool = True
    cpu: bool = False
    log_with: str | None = None
    project_dir: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.optimizer not in ("adamw", "radam"):
            raise ValueError(f"optimizer must be 'adamw' or 'radam', got {self.optimizer!r}.")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(
                f"mixed_precision must be auto/no/bf16/fp16, got {self.mixed_precision!r}."
            )
        if not 0 <= self.ema_decay <= 1:
            raise ValueError(f"ema_decay must lie in [0, 1], got {self.ema_decay}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}.")
        self.betas = tuple(self.betas)  # type: ignore[assignment]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        step: The step reached.
        losses: Loss of every step of the run so far (including steps before a resume).
        checkpoint: Path of the last checkpoint written, or None.
        seconds: Wall time of this call.
        metrics: Values recorded by callbacks, by name, as (step, value) pairs.
    """

    step: int
    losses: list[float]
    checkpoint: Path | None
    seconds: float
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


Callback = Callable[["Trainer", int, dict[str, float]], dict[str, float] | None]
"""A callback gets (trainer, step, logs) after the step; it may return metrics to record."""


def resolve_precision(requested: str, cpu: bool) -> str:
    """The mixed-precision mode for accelerate: "auto" is bf16 on CUDA devices with bf16, else "no"."""
    if requested != "auto":
        return requested
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


class Trainer:
    """Train a UCGM model: ``Trainer(model, objective, data, config).fit()``.

    Args:
        model: ``model(x_t, t, y=None) -> F``.
        objective: The UCGM-T objective.
        data: A :class:`~ucgm_lab.training.data.DataSource` for this process.
        config: Settings.
        callbacks: Pairs ``(every, callback)``: ``callback(trainer, step, logs)`` runs every
            ``every`` steps on every process; a dict it returns is recorded in
            ``TrainResult.metrics``.
        accelerator: An existing ``accelerate.Accelerator`` (default: one is made).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: UCGMObjective,
        data: DataSource,
        config: TrainerConfig | None = None,
        callbacks: Sequence[tuple[int, Callback]] = (),
        accelerator: Any | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.config = config or TrainerConfig()
        cfg = self.config
        if accelerator is None:
            accelerator = Accelerator(
                cpu=cfg.cpu,
                mixed_precision=resolve_precision(cfg.mixed_precision, cfg.cpu),
                log_with=cfg.log_with,
                project_dir=cfg.project_dir,
            )
        self.accelerator = accelerator
        if accelerator.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.objective = objective
        self.data = data
        for every, _ in callbacks:
            if not isinstance(every, int) or every < 1:
                raise ValueError(f"callback intervals must be positive integers, got {every!r}.")
        self.callbacks = list(callbacks)
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(
                "None of the model's parameters require gradients (is it a copy of an EMA or teacher "
                "model?). Call model.requires_grad_(True) before training it."
            )
        model = model.to(accelerator.device)
        self.ema = ExponentialMovingAverage(model, cfg.ema_decay)
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.RAdam
        kwargs: dict[str, Any] = {
            "lr": cfg.lr,
            "betas": cfg.betas,
            "weight_decay": cfg.weight_decay,
        }
        if cfg.optimizer == "radam":
            kwargs["decoupled_weight_decay"] = True
        optimizer = opt_cls(model.parameters(), **kwargs)
        if cfg.compile:
            model = torch.compile(model)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self._direct = _accelerate_is_pass_through(accelerator)
        self.generator = torch.Generator(device=accelerator.device)
        self.generator.manual_seed(cfg.seed * 7919 + accelerator.process_index)
        self.step = 0
        self.losses: list[float] = []
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.last_checkpoint: Path | None = None
        if cfg.log_with is not None:
            accelerator.init_trackers("ucgm_lab", config=_jsonable(dataclasses.asdict(cfg)))

    # ------------------------------------------------------------------ properties
    @property
    def unwrapped_model(self) -> nn.Module:
        """The model without distributed / compile wrappers (the weights being trained)."""
        return unwrap_model(self.model)

    @property
    def ema_model(self) -> nn.Module:
        """The EMA of the weights (use it for sampling)."""
        return self.ema.model

    @property
    def is_main_process(self) -> bool:
        """True on the process that logs and writes checkpoints."""
        return bool(self.accelerator.is_main_process)

    # ------------------------------------------------------------------ training
    def train_step(self) -> float:
        """One optimizer step; returns the loss averaged over processes.

        One host synchronisation per step: the loss and the gradient norm are read together
        after the backward pass and the clip, for the non-finite guard and ``losses``.

        Raises:
            NonFiniteLossError: If the loss or the gradient norm is not finite. The gradients
                are cleared and nothing is updated (weights, optimizer, EMA, step), and no
                checkpoint is written, so the last checkpoint stays good.
        """
        acc, cfg = self.accelerator, self.config
        if not self.model.training:  # a callback may have switched to eval
            self.model.train()
        batch = self.data.next_batch()
        x = batch.x.to(acc.device, non_blocking=True)
        y = None if batch.y is None else batch.y.to(acc.device, non_blocking=True)
        # accelerate's autocast is a null context without native mixed precision
        with acc.autocast() if getattr(acc, "native_amp", True) else nullcontext():
            out = self.objective(self.model, x, y, generator=self.generator)
        mean_loss = out.loss.detach().float()
        if acc.num_processes > 1:
            mean_loss = acc.reduce(mean_loss, reduction="mean")
        if self._direct:
            out.loss.backward()
        else:
            acc.backward(out.loss)
        norm = None
        if cfg.grad_clip is not None:
            if self._direct:
                norm = torch.nn.utils.clip_grad_norm_(self._params, cfg.grad_clip)
            else:
                norm = acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if norm is None:
            loss, norm_value = float(mean_loss), 0.0
        else:
            norm_t = torch.as_tensor(norm, device=mean_loss.device).detach().float()  # or a float
            both = torch.stack([mean_loss, norm_t])
            loss, norm_value = both.tolist()
        if not (math.isfinite(loss) and math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            if not math.isfinite(loss):
                self._non_finite("loss", loss)
            self._non_finite("gradient norm", norm_value)
        optimizer = self.optimizer.optimizer if self._direct else self.optimizer
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)
        self.step += 1
        self.losses.append(loss)
        return loss

    def fit(self, steps: int | None = None) -> TrainResult:
        """Train until ``steps`` total steps (default ``config.steps``), resuming from ``self.step``."""
        cfg, acc = self.config, self.accelerator
        total = cfg.steps if steps is None else int(steps)
        start = time.perf_counter()
        show = cfg.progress and self.is_main_process
        bar = (
            tqdm(total=total, initial=self.step, desc="UCGM-T", dynamic_ncols=True)
            if show
            else None
        )
        window: list[float] = []
        images = 0
        t_log = time.perf_counter()
        while self.step < total:
            loss = self.train_step()
            window.append(loss)
            images += int(self.data.batch_size) if hasattr(self.data, "batch_size") else 0
            logs = {"loss": loss}
            if self.step % cfg.log_every == 0 or self.step == total:
                mean = sum(window) / len(window)
                now = time.perf_counter()
                logs = {"loss": mean, "images_per_second": images / max(now - t_log, 1e-9)}
                if acc.device.type == "cuda":
                    logs["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
                if bar is not None:
                    bar.set_postfix(loss=f"{mean:.4f}")
                if cfg.log_with is not None:
                    acc.log(logs, step=self.step)
                window, images, t_log = [], 0, now
            if bar is not None:
                bar.update(1)
            for every, callback in self.callbacks:
                if self.step % every == 0:
                    recorded = callback(self, self.step, logs)
                    for name, value in (recorded or {}).items():
                        self.metrics.setdefault(name, []).append((self.step, float(value)))
            if (
                cfg.checkpoint_dir
                and cfg.checkpoint_every
                and self.step % cfg.checkpoint_every == 0
            ):
                self.save()
        if bar is not None:
            bar.close()
        if cfg.checkpoint_dir:
            self.save()
        return TrainResult(
            step=self.step,
            losses=list(self.losses),
            checkpoint=self.last_checkpoint,
            seconds=time.perf_counter() - start,
            metrics={k: list(v) for k, v in self.metrics.items()},
        )

    def _non_finite(self, what: str, value: float) -> None:
        where = (
            f"The last good checkpoint is {self.last_checkpoint}."
            if self.last_checkpoint
            else "No checkpoint was written yet (set checkpoint_dir and checkpoint_every)."
        )
        raise NonFiniteLossError(
            f"Training stopped at step {self.step + 1}: the {what} is {value}. Nothing was updated. "
            f"{where} Try a lower learning rate, gradient clipping, or mixed_precision='no'."
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this process exactly (gathered across processes)."""
        from accelerate.utils import gather_object

        rank_state = {
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "data": self.data.state_dict(),
        }
        ranks = gather_object([rank_state]) if self.accelerator.num_processes > 1 else [rank_state]
        model = self.unwrapped_model
        return {
            "step": self.step,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "model_config": getattr(model, "config", None),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "objective": self.objective.state_dict(),
            "ranks": ranks,
            "python_random": random.getstate(),
            "numpy_random": np.random.get_state(),
            "losses": list(self.losses),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "config": dataclasses.asdict(self.config),
            "num_processes": self.accelerator.num_processes,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (main process); all processes must call it."""
        if path is None:
            if not self.config.checkpoint_dir:
                raise ValueError("No path given and config.checkpoint_dir is not set.")
            path = Path(self.config.checkpoint_dir) / "last.pt"
        path = Path(path)
        state = self.state_dict()
        if self.is_main_process:
            save_checkpoint(path, state)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = path
        return path

    def resume(self, path: str | Path) -> int:
        """Load a checkpoint written by :meth:`save` and continue from its step.

        Returns:
            The step resumed from.

        Raises:
            CheckpointError: Missing or corrupt file.
            ValueError: A checkpoint from a different number of processes.
        """
        state = load_checkpoint(path)
        if state["num_processes"] != self.accelerator.num_processes:
            raise ValueError(
                f"{path} was written by {state['num_processes']} processes; this run has "
                f"{self.accelerator.num_processes}. Exact resume needs the same number."
            )
        self.unwrapped_model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        mine = state["ranks"][self.accelerator.process_index]
        self.generator.set_state(mine["generator"])
        torch.set_rng_state(mine["torch_rng"])
        if mine["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(mine["cuda_rng"])
        self.data.load_state_dict(mine["data"])
        random.setstate(state["python_random"])
        np.random.set_state(state["numpy_random"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])
        self.metrics = {k: [tuple(p) for p in v] for k, v in state["metrics"].items()}
        self.last_checkpoint = Path(path)
        return self.step


def _accelerate_is_pass_through(accelerator: Any) -> bool:
    """Whether accelerate's backward, clip and optimizer step reduce to the plain torch calls.

    True without a gradient scaler (fp16), without gradient accumulation and for plain or DDP
    runs (no DeepSpeed, FSDP, XLA or Megatron): accelerate then divides the loss by 1 and calls
    ``loss.backward()``, ``torch.nn.utils.clip_grad_norm_`` and ``optimizer.step()``, with some
    bookkeeping per call (environment and package look-ups) that the trainer skips.
    """
    from accelerate.utils import DistributedType

    return (
        getattr(accelerator, "scaler", None) is None
        and accelerator.gradient_accumulation_steps == 1
        and accelerator.distributed_type
        in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return str(value)
    return value
