"""One training loop for notebooks, the demo and scale/: UCGM-T on top of accelerate.

The same :class:`Trainer` runs single-process on a CPU inside a notebook and multi-process
under ``accelerate launch`` (torch.distributed). It owns the optimizer (AdamW or RAdam, as in
Tab. 6), gradient clipping, the EMA of weights, mixed precision where the device has it, a
guard against non-finite losses, atomic checkpoints that resume exactly, a progress bar and
callbacks.

Exact resume: every source of randomness is either a generator whose state is saved (the
objective's draws of t, z and label dropout) or a pure function of the seed and the position
(the data order), so N steps in one run equal N/2 steps, a checkpoint, a resume, and N/2 steps.
A resume on another number of processes keeps the order of the global batches where the data
source guarantees it (``global_order``) and reseeds the per-process generators.

For large runs: gradient accumulation over equal micro-batches (the gradient of one batch of
the full size), fp16 with a GradScaler whose overflowed steps are skipped, per-block
``torch.compile`` after the DDP wrap (teachers included), fused AdamW on CUDA, TF32 on CUDA,
and a memory check before the first step (:mod:`ucgm_lab.training.memory`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..ema import ExponentialMovingAverage
from ..model_api import unwrap_model
from ..objective import UCGMObjective
from .checkpoint import (
    atomic_write,
    check_writable_dir,
    load_checkpoint,
    remove_orphan_temporaries,
    save_checkpoint,
)
from .data import DataSource
from .diagnostics import FewStepMonitor, progress_postfix, wants_few_step_monitor
from .distributed import check_distributed_type
from .run_folder import RunFolderError, claim_checkpoint_dir
from .signals import StopSignals, agree_to_stop, signal_name

__all__ = [
    "Callback",
    "NonFiniteLossError",
    "ResumeMismatchError",
    "RunFolderError",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "enable_tf32",
    "resolve_precision",
]

_NUMBERED = re.compile(r"^step_(\d+)\.pt$")


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


def resolve_precision(requested: str, cpu: bool) -> str:
    """The mixed-precision mode for accelerate: "auto" is bf16 on CUDA devices with bf16, else "no"."""
    if requested != "auto":
        return requested
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def enable_tf32(device: torch.device | str) -> bool:
    """Let float32 matrix products and convolutions use TF32 on CUDA (as the reference does).

    Used by training, scale/sample.py and scale/extract_latents.py. Returns whether it was
    enabled (False off CUDA, where it does not apply).
    """
    if torch.device(device).type != "cuda":
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


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
        # Before accelerate's own errors for these modes, and before anything is written.
        check_distributed_type()
        if accelerator is None:
            accelerator = Accelerator(
                cpu=cfg.cpu,
                mixed_precision=resolve_precision(cfg.mixed_precision, cfg.cpu),
                log_with=cfg.log_with,
                project_dir=cfg.project_dir,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            )
        elif accelerator.gradient_accumulation_steps != cfg.gradient_accumulation_steps:
            raise ValueError(
                f"The accelerator accumulates over {accelerator.gradient_accumulation_steps} "
                f"micro-batches but config.gradient_accumulation_steps is "
                f"{cfg.gradient_accumulation_steps}: make them equal "
                "(Accelerator(gradient_accumulation_steps=...))."
            )
        check_distributed_type(getattr(accelerator, "distributed_type", None))
        _warn_if_fp16_falls_back(accelerator)
        self.accelerator = accelerator
        _check_micro_batches(data, accelerator.num_processes, cfg.gradient_accumulation_steps)
        if cfg.checkpoint_dir and accelerator.is_main_process:
            # Checked before any step runs, so that no training is lost at the first save.
            check_writable_dir(cfg.checkpoint_dir, "checkpoint folder (checkpoint_dir)")
        enable_tf32(accelerator.device)
        # The trainer's own guard checks the loss and names the cause, so the objective's
        # per-call finiteness check (a host sync) is not needed here.
        if isinstance(objective, UCGMObjective):
            objective.check_finite = False
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
        self.memory_plan = None
        if cfg.memory_check != "off" and accelerator.device.type == "cuda":
            self.memory_plan = _check_memory(model, objective, data, accelerator, cfg)
        self.ema = ExponentialMovingAverage(model, cfg.ema_decay, ramp=cfg.ema_ramp)
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.RAdam
        kwargs: dict[str, Any] = {
            "lr": cfg.lr,
            "betas": cfg.betas,
            "weight_decay": cfg.weight_decay,
        }
        if cfg.optimizer == "radam":
            kwargs["decoupled_weight_decay"] = True
        elif _use_fused(cfg.fused_optimizer, accelerator.device):
            kwargs["fused"] = True
        optimizer = opt_cls(model.parameters(), **kwargs)
        self.compile_mode = _compile_mode(cfg.compile, model, accelerator.device)
        if self.compile_mode == "model":
            model = torch.compile(model, backend=cfg.compile_backend)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        if self.compile_mode == "blocks":
            # After the DDP wrap (in place: parameters, hooks and state_dict keys unchanged),
            # so DDP's bucketed all-reduce still overlaps the backward pass block by block.
            # The objective's teachers, copied from the model at its first call, are compiled
            # the same way (ucgm_lab.ema.frozen_copy).
            unwrap_model(self.model).compile_blocks(backend=cfg.compile_backend)
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self._direct = _accelerate_is_pass_through(accelerator)
        self.generator = torch.Generator(device=accelerator.device)
        self.generator.manual_seed(cfg.seed * 7919 + accelerator.process_index)
        self.step = 0
        self.skipped_steps = 0
        self.losses: list[float] = []
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.last_checkpoint: Path | None = None
        self.written_checkpoint: Path | None = None
        """The last checkpoint this trainer wrote (``last_checkpoint`` may be a resumed file)."""
        self._saved_step: int | None = None
        self._tmp_cleaned = False
        # lambda > 0: diagnostics of few-step training, made when fit starts (diagnostics.py)
        self.few_step_monitor: FewStepMonitor | None = None
        self._last_batch: tuple[torch.Tensor, torch.Tensor | None] | None = None
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
        """One optimizer step; returns the loss averaged over processes (and micro-batches).

        With ``gradient_accumulation_steps = k`` this process's share of the global batch is
        split into k micro-batches; each loss is divided by k (accelerate) and the gradients
        are summed, all-reduced once (DDP's ``no_sync`` on the other k - 1), clipped once, and
        applied by one optimizer step. The objective's EMA teacher is updated at the first
        micro-batch only, the trainer's EMA and ``step`` after the optimizer step.

        One host synchronisation per step: the loss and the gradient norm are read together
        after the backward passes and the clip, for the non-finite guard and ``losses``.

        fp16 with a gradient scaler: a non-finite gradient norm with a finite loss is a scaler
        overflow. The scaler skips the optimizer step and lowers its scale (as GradScaler
        intends); the trainer then skips the EMA update and counts the step (its batch was
        used) in ``skipped_steps``.

        Raises:
            NonFiniteLossError: If the loss is not finite, or the gradient norm is not finite
                without a gradient scaler. The gradients are cleared and nothing is updated
                (weights, optimizer, EMA, step), and no checkpoint is written, so the last
                checkpoint stays good.
        """
        acc, cfg = self.accelerator, self.config
        k = cfg.gradient_accumulation_steps
        if not self.model.training:  # a callback may have switched to eval
            self.model.train()
        batch = self.data.next_batch()
        x = batch.x.to(acc.device, non_blocking=True)
        y = None if batch.y is None else batch.y.to(acc.device, non_blocking=True)
        self._last_batch = (x, y)
        if x.shape[0] % k:
            raise ValueError(
                f"This process's batch of {x.shape[0]} cannot be split into "
                f"gradient_accumulation_steps={k} equal micro-batches."
            )
        xs = x.chunk(k) if k > 1 else (x,)
        ys = (None,) * k if y is None else (y.chunk(k) if k > 1 else (y,))
        ucgm = isinstance(self.objective, UCGMObjective)
        losses = []
        for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
            extra = {"update_teachers": False} if (i > 0 and ucgm) else {}
            # accumulate(): DDP's no_sync on all micro-batches but the last, and accelerate's
            # sync_gradients flag that gates the optimizer step and zero_grad.
            with acc.accumulate(self.model) if k > 1 else nullcontext():
                # accelerate's autocast is a null context without native mixed precision
                with acc.autocast() if getattr(acc, "native_amp", True) else nullcontext():
                    out = self.objective(self.model, xi, yi, generator=self.generator, **extra)
                losses.append(out.loss.detach().float())
                if self._direct:
                    out.loss.backward()
                else:
                    acc.backward(out.loss)  # divides by k, scales for fp16
        mean_loss = losses[0] if k == 1 else torch.stack(losses).mean()
        if acc.num_processes > 1:
            mean_loss = acc.reduce(mean_loss, reduction="mean")
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
        scaler = getattr(acc, "scaler", None)
        if not math.isfinite(loss) or (scaler is None and not math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            if not math.isfinite(loss):
                self._non_finite("loss", loss, x)
            self._non_finite("gradient norm", norm_value)
        optimizer = self.optimizer.optimizer if self._direct else self.optimizer
        optimizer.step()  # with a scaler: skipped on overflow, and the scale is lowered
        optimizer.zero_grad(set_to_none=True)
        skipped = scaler is not None and bool(acc.optimizer_step_was_skipped)
        if skipped:
            self.skipped_steps += 1
        else:
            self.ema.update(self.model)
        self.step += 1
        self.losses.append(loss)
        return loss

    def fit(self, steps: int | None = None) -> TrainResult:
        """Train until ``steps`` total steps (default ``config.steps``), resuming from ``self.step``.

        The checkpoint folder is locked for the call, and a run that did not resume from it is
        refused there when it holds another run's checkpoints (unless ``config.overwrite``;
        :mod:`ucgm_lab.training.run_folder`). SIGTERM or SIGINT stops every rank after the same
        step with a checkpoint of it (:mod:`ucgm_lab.training.signals`); the result then has
        ``stopped_by`` set.

        Raises:
            RunFolderError: The folder is locked by another process or holds another run;
                nothing was trained or written.
        """
        folder = self.config.checkpoint_dir
        owned = (
            folder is not None
            and self.last_checkpoint is not None
            and self.last_checkpoint.resolve().parent == Path(folder).resolve()
        )
        with (
            claim_checkpoint_dir(folder, self.accelerator, owned, self.config.overwrite) as removed,
            StopSignals() as signals,
        ):
            if removed:
                self.accelerator.print(
                    f"overwrite=True: deleted the previous run's {len(removed)} checkpoint(s) in "
                    f"{folder} ({', '.join(p.name for p in removed[:4])})."
                )
            return self._fit(steps, signals)

    def _fit(self, steps: int | None, signals: StopSignals) -> TrainResult:
        cfg, acc = self.config, self.accelerator
        total = cfg.steps if steps is None else int(steps)
        if total < self.step:
            raise ValueError(
                f"fit({total}): the run is already at step {self.step}, past the target {total}. "
                f"fit(steps) trains until `steps` steps in total (a resumed run counts its earlier "
                f"steps): for {total} more steps call fit({self.step + total})."
            )
        if total == self.step and total > 0:
            warnings.warn(
                f"fit: the run is already at step {self.step}, its target; nothing to train "
                f"(fit(steps) trains until `steps` steps in total: fit({self.step} + n) trains "
                "n more).",
                UserWarning,
                stacklevel=3,
            )
        start = time.perf_counter()
        show = cfg.progress and self.is_main_process
        bar = (
            tqdm(total=total, initial=self.step, desc="UCGM-T", dynamic_ncols=True)
            if show
            else None
        )
        window: list[float] = []
        images = 0
        if self.few_step_monitor is None and wants_few_step_monitor(self.objective):
            self.few_step_monitor = FewStepMonitor(
                self.unwrapped_model, self.ema.model, cfg.seed, objective=self.objective
            )
        t_log = time.perf_counter()
        stopped = 0
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
                if self.few_step_monitor is not None and self._last_batch is not None:
                    logs.update(
                        self.few_step_monitor.measure(
                            self.objective, self.model, self.ema.model, *self._last_batch
                        ).as_logs()
                    )
                if bar is not None:
                    bar.set_postfix(loss=f"{mean:.4f}", **progress_postfix(logs))
                if cfg.log_with is not None:
                    acc.log(logs, step=self.step)
                window, images, t_log = [], 0, now
            if bar is not None:
                bar.update(1)
            # The step's checkpoint comes before its callbacks: a failing callback (a sample
            # grid, an evaluation) must not lose the step's training.
            if (
                cfg.checkpoint_dir
                and cfg.checkpoint_every
                and self.step % cfg.checkpoint_every == 0
            ):
                self.save()
            stopped = agree_to_stop(signals.received, acc)
            if stopped and self.step < total:
                break
            stopped = 0
            for every, callback in self.callbacks:
                if self.step % every == 0:
                    recorded = callback(self, self.step, logs)
                    for name, value in (recorded or {}).items():
                        self.metrics.setdefault(name, []).append((self.step, float(value)))
        if bar is not None:
            bar.close()
        if cfg.checkpoint_dir and self._saved_step != self.step:
            self.save()
        if stopped:
            where = (
                f"checkpoint {self.last_checkpoint}; resume from it to continue "
                "(scale/train.py: rerun the same command)"
                if cfg.checkpoint_dir
                else "no checkpoint_dir was set, so nothing was saved"
            )
            acc.print(
                f"Received {signal_name(stopped)}: training stopped cleanly at step {self.step} "
                f"of {total} on every process; {where}."
            )
        return TrainResult(
            step=self.step,
            losses=list(self.losses),
            checkpoint=self.written_checkpoint,
            seconds=time.perf_counter() - start,
            metrics={k: list(v) for k, v in self.metrics.items()},
            skipped_steps=self.skipped_steps,
            stopped_by=signal_name(stopped) if stopped else None,
        )

    def _non_finite(self, what: str, value: float, x: torch.Tensor | None = None) -> None:
        cause = ""
        if x is not None and not bool(torch.isfinite(x).all()):
            cause = " The data batch x holds NaN or inf values: check the data."
        elif any(not bool(torch.isfinite(p).all()) for p in self.unwrapped_model.parameters()):
            cause = " The model's parameters hold NaN or inf values."
        where = (
            f"The last good checkpoint is {self.last_checkpoint}."
            if self.last_checkpoint
            else "No checkpoint was written yet (set checkpoint_dir and checkpoint_every)."
        )
        raise NonFiniteLossError(
            f"Training stopped at step {self.step + 1}: the {what} is {value}.{cause} Nothing was "
            f"updated. {where} Try a lower learning rate, gradient clipping, or mixed_precision='no'."
        )

    # ------------------------------------------------------------------ checkpoints
    def _gather_rank_states(self) -> list[dict[str, Any]]:
        """Every process's RNG states and data position (a collective: all processes call it)."""
        from accelerate.utils import gather_object

        rank_state = {
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "data": self.data.state_dict(),
        }
        return gather_object([rank_state]) if self.accelerator.num_processes > 1 else [rank_state]

    def state_dict(self, ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything needed to resume exactly; the weights, EMA and teachers as host copies.

        Args:
            ranks: The per-process states from :meth:`_gather_rank_states` (default: gathered
                here, so then every process must call this).
        """
        if ranks is None:
            ranks = self._gather_rank_states()
        model = self.unwrapped_model
        scaler = getattr(self.accelerator, "scaler", None)
        return {
            "step": self.step,
            # one host copy per tensor (.cpu().clone() made two of CPU tensors)
            "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
            "model_config": getattr(model, "config", None),
            "ema": self.ema.state_dict(),  # host copies (ExponentialMovingAverage.state_dict)
            # live references: torch.save copies device tensors to the host one at a time
            "optimizer": self.optimizer.state_dict(),
            "objective": self.objective.state_dict(),  # host copies of the teachers
            "objective_settings": (
                self.objective.settings() if hasattr(self.objective, "settings") else None
            ),
            "ranks": ranks,
            "python_random": random.getstate(),
            "numpy_random": np.random.get_state(),
            "losses": list(self.losses),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "config": dataclasses.asdict(self.config),
            "num_processes": self.accelerator.num_processes,
            "gradient_accumulation_steps": self.config.gradient_accumulation_steps,
            "scaler": None if scaler is None else scaler.state_dict(),
            "skipped_steps": self.skipped_steps,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (main process); all processes must call it.

        Without ``path`` it writes ``<checkpoint_dir>/last.pt`` and, when ``keep_last > 0``,
        the numbered ``step_XXXXXXXXX.pt`` beside it, keeping the newest ``keep_last`` of those.
        """
        numbered = path is None and self.config.keep_last > 0
        if path is None:
            if not self.config.checkpoint_dir:
                raise ValueError("No path given and config.checkpoint_dir is not set.")
            path = Path(self.config.checkpoint_dir) / "last.pt"
        path = Path(path)
        # Only the main process builds the full state (CPU copies); the others send their RNG
        # states and data positions and hold no second copy of the weights, EMA or optimizer.
        ranks = self._gather_rank_states()
        if self.is_main_process:
            state = self.state_dict(ranks)
            if not self._tmp_cleaned:
                remove_orphan_temporaries(path.parent)
                self._tmp_cleaned = True
            save_checkpoint(path, state)
            if numbered:
                self._keep_numbered(path)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = self.written_checkpoint = path
        self._saved_step = self.step
        return path

    def _keep_numbered(self, last: Path) -> None:
        """Link (or copy) ``last`` to ``step_XXXXXXXXX.pt`` and delete numbered files beyond keep_last."""
        target = last.parent / f"step_{self.step:09d}.pt"
        tmp = last.parent / f".{target.name}.link.tmp"
        try:
            tmp.unlink(missing_ok=True)
            os.link(last, tmp)
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)
            atomic_write(target, lambda t: _copy(last, t))
        steps = sorted(
            (int(m.group(1)), p)
            for p in last.parent.iterdir()
            if (m := _NUMBERED.match(p.name)) is not None
        )
        for _, old in steps[: -self.config.keep_last]:
            old.unlink(missing_ok=True)

    def resume(self, path: str | Path) -> int:
        """Load a checkpoint written by :meth:`save` and continue from its step.

        Everything is checked before anything is loaded, so a failed resume leaves the model,
        the EMA, the optimizer and the data position untouched. Temporary files that a killed
        save left in the checkpoint's folder are deleted.

        Returns:
            The step resumed from.

        Raises:
            CheckpointError: Missing, corrupt or unsafe file.
            ResumeMismatchError: A checkpoint from a different number of processes where the
                data source cannot keep the global data order (see
                :meth:`_elastic_rank_state`), with other gradient accumulation or gradient
                scaling, of a model
                of other parameter names or shapes, or trained with another objective (e.g.
                lambda = 0 into a lambda = 1 run: use :meth:`start_from` to start a new run
                from its weights).
        """
        path = Path(path)
        state = load_checkpoint(path, mmap=True)  # one copy per node, in the page cache
        if self.is_main_process:
            remove_orphan_temporaries(path.parent)
        saved_k = int(state.get("gradient_accumulation_steps", 1))
        if saved_k != self.config.gradient_accumulation_steps:
            raise ResumeMismatchError(
                f"{path} was trained with gradient_accumulation_steps={saved_k}; this run has "
                f"{self.config.gradient_accumulation_steps}. Exact resume needs the same value "
                "(the micro-batches, and so the random draws, depend on it)."
            )
        scaler = getattr(self.accelerator, "scaler", None)
        if (state.get("scaler") is None) != (scaler is None):
            raise ResumeMismatchError(
                f"{path} was trained {'with' if state.get('scaler') is not None else 'without'} "
                f"a gradient scaler (fp16); this run is {'with' if scaler is not None else 'without'}"
                ". Resume with the same mixed_precision."
            )
        elastic = state["num_processes"] != self.accelerator.num_processes
        if elastic:
            rank = self._elastic_rank_state(path, state)
        else:
            rank = state["ranks"][self.accelerator.process_index]
        self._check_objective(path, state.get("objective_settings"))
        config = state.get("model_config")
        _check_tensors(path, "model", state["model"], self.unwrapped_model.state_dict(), config)
        _check_tensors(path, "EMA", state["ema"]["model"], self.ema.model.state_dict(), config)
        groups = state["optimizer"].get("param_groups", [])
        mine = [len(g["params"]) for g in self.optimizer.state_dict()["param_groups"]]
        if [len(g["params"]) for g in groups] != mine:
            raise ResumeMismatchError(
                f"{path}: the optimizer state is for parameter groups of sizes "
                f"{[len(g['params']) for g in groups]}, this run has {mine}."
            )
        self.data.load_state_dict(rank["data"])  # checks size and seed before changing anything
        self.unwrapped_model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if elastic:
            # A new, deterministic stream per rank: the per-rank draws of the old process
            # count have no counterpart in the new one.
            seed = _elastic_seed(
                self.config.seed, int(state["step"]), self.accelerator.process_index
            )
            self.generator.manual_seed(seed)
            torch.manual_seed(seed)
            self.accelerator.print(
                f"Elastic resume: {path} was written by {state['num_processes']} processes, this "
                f"run has {self.accelerator.num_processes}. The global batches continue in the "
                "same order; the per-process random draws (t, z, label dropout) are reseeded, so "
                "the run is not bit-identical to an uninterrupted one."
            )
        else:
            self.generator.set_state(rank["generator"])
            torch.set_rng_state(rank["torch_rng"])
            if rank["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state(rank["cuda_rng"])
        random.setstate(_as_tuple(state["python_random"]))
        np.random.set_state(state["numpy_random"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])
        self.metrics = {k: [tuple(p) for p in v] for k, v in state["metrics"].items()}
        self.last_checkpoint = path
        self._saved_step = self.step
        return self.step

    def _elastic_rank_state(self, path: Path, state: dict[str, Any]) -> dict[str, Any]:
        """The data position for a resume with another number of processes, or raise.

        Allowed when the data source declares ``global_order = True`` (its stream of global
        batches depends only on its seed and position, not on the process count or rank, as
        for :class:`~ucgm_lab.training.data.TensorDataSource` and
        :class:`~ucgm_lab.training.latents.LatentShardDataSource`) and every rank of the
        checkpoint stood at the same position. The per-rank random streams (the objective's
        draws of t, z and label dropout) cannot be carried over; they are reseeded from
        (seed, step, rank), so the continuation sees the same global batches as an
        uninterrupted run but other noise.
        """
        old, new = state["num_processes"], self.accelerator.num_processes
        if not getattr(self.data, "global_order", False):
            raise ResumeMismatchError(
                f"{path} was written by {old} processes; this run has {new}. The data source "
                f"{type(self.data).__name__} does not declare global_order = True (a stream of "
                "global batches independent of the process count), so the data order could "
                "not be kept: resume with the same number of processes."
            )
        positions = [r["data"] for r in state["ranks"]]
        if any(p != positions[0] for p in positions):
            raise ResumeMismatchError(
                f"{path}: its {old} ranks stood at different data positions {positions}; a "
                "resume with another number of processes needs one global position."
            )
        return {"data": positions[0]}

    def start_from(self, path: str | Path, weights: Literal["ema", "model"] = "ema") -> None:
        """Start a new run (step 0, fresh optimizer) from the weights of a training checkpoint.

        This is the explicit way to train with another objective from a checkpoint (e.g. a
        few-step lambda = 1 model from a multi-step lambda = 0 one, as the paper does).

        Args:
            path: A checkpoint written by :meth:`save`.
            weights: "ema" (the averaged weights, default) or "model" (the raw weights).

        Raises:
            CheckpointError: Missing, corrupt or unsafe file.
            ResumeMismatchError: The weights are of another model.
        """
        if weights not in ("ema", "model"):
            raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}.")
        path = Path(path)
        state = load_checkpoint(path, mmap=True)
        tensors = state["ema"]["model"] if weights == "ema" else state["model"]
        _check_tensors(
            path, "model", tensors, self.unwrapped_model.state_dict(), state.get("model_config")
        )
        self.unwrapped_model.load_state_dict(tensors)
        self.ema.model.load_state_dict(tensors)
        self.ema.restart()  # a new run: the EMA ramp starts again from these weights

    def _check_objective(self, path: Path, saved: dict[str, Any] | None) -> None:
        if saved is None:  # checkpoints written before the settings were stored
            return
        if not hasattr(self.objective, "settings"):
            return
        mine = self.objective.settings()
        changed = {
            k: (saved[k], mine[k]) for k in sorted(set(saved) & set(mine)) if saved[k] != mine[k]
        }
        if changed:
            text = "; ".join(
                f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in changed.items()
            )
            raise ResumeMismatchError(
                f"{path} was trained with another objective ({text}). Resuming would continue its "
                "step count, optimizer state and loss history as if nothing had changed. Use the "
                "same objective to resume, or start a new run from its weights with "
                "Trainer.start_from(path) (scale/train.py: training.init_from)."
            )


def _elastic_seed(seed: int, step: int, rank: int) -> int:
    """Seed of a rank's random stream after a resume with another number of processes."""
    return (seed * 1_000_003 + step) * 7919 + rank + 1


def _check_micro_batches(data: Any, num_processes: int, k: int) -> None:
    """Raise unless the global batch splits into ``num_processes * k`` equal micro-batches."""
    size = getattr(data, "batch_size", None)
    if k > 1 and isinstance(size, int) and size % (num_processes * k):
        raise ValueError(
            f"The global batch of {size} must be divisible by processes x "
            f"gradient_accumulation_steps = {num_processes} x {k} (equal micro-batches keep the "
            "mean loss and its gradient those of one batch of the full size)."
        )


def _use_fused(option: bool | str, device: torch.device) -> bool:
    """Whether AdamW gets ``fused=True``: "auto" on CUDA; True needs a device that has it."""
    if option == "auto":
        return device.type == "cuda"
    return bool(option)


def _compile_mode(option: bool | str, model: nn.Module, device: torch.device) -> str:
    """The compile mode ("none", "blocks" or "model") for the trainer's ``compile`` setting."""
    if option is False:
        return "none"
    if option == "auto":
        if device.type != "cuda":
            return "none"
        option = "blocks"
    if option in (True, "blocks"):
        return "blocks" if hasattr(unwrap_model(model), "compile_blocks") else "model"
    return "model"


def _check_memory(
    model: nn.Module, objective: Any, data: Any, accelerator: Any, cfg: TrainerConfig
) -> Any:
    """Run the memory planner before the first step (CUDA); may turn on checkpointing."""
    from .memory import ensure_fits

    size = getattr(data, "batch_size", None)
    if not hasattr(model, "compile_blocks") or not isinstance(size, int):
        return None  # the planner knows TiTs only
    per_gpu = max(1, size // (accelerator.num_processes * cfg.gradient_accumulation_steps))
    teacher = bool(
        getattr(objective, "uses_ema_teacher", False)
        or getattr(objective, "uses_frozen_teacher", False)
    )
    precision = str(accelerator.mixed_precision or "no")
    return ensure_fits(
        model,
        per_gpu,
        precision=precision if precision in ("bf16", "fp16") else "no",
        device_bytes=torch.cuda.get_device_properties(accelerator.device).total_memory,
        num_processes=accelerator.num_processes,
        optimizer_states=2,
        ema_copies=1 + int(teacher),
        accumulating=cfg.gradient_accumulation_steps > 1,
        optimizer_kernel=_optimizer_kernel(cfg, accelerator.device),
        no_grad_pass=_has_no_grad_pass(objective),
        action="warn" if cfg.memory_check == "warn" else "auto",
        log=accelerator.print,
    )


def _optimizer_kernel(cfg: TrainerConfig, device: torch.device) -> str:
    """The optimizer implementation torch will run (for the memory planner's step temporaries)."""
    if cfg.optimizer == "adamw" and _use_fused(cfg.fused_optimizer, device):
        return "fused"
    return "foreach" if device.type == "cuda" else "loop"


def _warn_if_fp16_falls_back(accelerator: Any) -> None:
    """Warn once that accelerate runs float32 when fp16 is asked for on a device without it."""
    device = getattr(accelerator, "device", None)
    if (
        str(getattr(accelerator, "mixed_precision", "no")) == "fp16"
        and getattr(device, "type", None) == "cpu"
        and not getattr(accelerator, "native_amp", False)
    ):
        warnings.warn(
            "mixed_precision='fp16' is not available on the CPU: accelerate runs float32 "
            "(no autocast, no gradient scaler). Use 'bf16' for half-precision autocast on the "
            "CPU, or 'no' to run float32 without this warning.",
            UserWarning,
            stacklevel=3,
        )


def _has_no_grad_pass(objective: Any) -> bool:
    """Whether the objective runs a no-grad network pass after the training forward."""
    return bool(
        getattr(objective, "enhancement_ratio", 0) > 0
        or getattr(objective, "consistency_ratio", 0) > 0
    )


def _copy(src: Path, dst: str) -> None:
    import shutil

    shutil.copyfile(src, dst)


def _as_tuple(value: Any) -> Any:
    """Python's random state as the nested tuple ``random.setstate`` wants."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def _check_tensors(
    path: Path,
    what: str,
    saved: dict[str, torch.Tensor],
    mine: dict[str, torch.Tensor],
    model_config: dict[str, Any] | None = None,
) -> None:
    """Raise unless ``saved`` has exactly the names and shapes of ``mine`` (with a fitting hint)."""
    missing = sorted(set(mine) - set(saved))
    extra = sorted(set(saved) - set(mine))
    shapes = [
        f"{k}: checkpoint {tuple(saved[k].shape)}, this model {tuple(mine[k].shape)}"
        for k in sorted(set(mine) & set(saved))
        if tuple(saved[k].shape) != tuple(mine[k].shape)
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        if shapes:
            parts.append("other shapes " + "; ".join(shapes[:5]))
        raise ResumeMismatchError(
            f"{path} holds {what} weights of another architecture ({', '.join(parts)}); nothing "
            f"was loaded. {_architecture_hint(saved, mine, model_config)}"
        )


def _inner_names(tensors: dict[str, torch.Tensor]) -> set[str]:
    """The names of a state dict as the network inside a TimeScaled wrapper has them."""
    return {k.removeprefix("network.") for k in tensors if k != "time_scale"}


def _architecture_hint(
    saved: dict[str, torch.Tensor], mine: dict[str, torch.Tensor], config: dict[str, Any] | None
) -> str:
    """What to do about a checkpoint of another architecture: wrap, unwrap, or rebuild."""
    saved_wrapped = "time_scale" in saved and any(k.startswith("network.") for k in saved)
    mine_wrapped = "time_scale" in mine and any(k.startswith("network.") for k in mine)
    inner_saved, inner_mine = _inner_names(saved), _inner_names(mine)
    if saved_wrapped and not mine_wrapped:
        factor = float(saved["time_scale"])
        same = " (the same network inside)" if inner_saved == set(mine) else ""
        return (
            f"The checkpoint holds a network wrapped in TimeScaled (time_scale = {factor:g}){same}"
            ": wrap yours the same way, ucgm_lab.networks.TimeScaled(network, "
            f"time_scale={factor:g}), before loading."
        )
    if mine_wrapped and not saved_wrapped:
        same = " (the same network inside)" if set(saved) == inner_mine else ""
        return (
            "This model is wrapped in TimeScaled but the checkpoint holds an unwrapped network"
            f"{same}: load it into the network without the wrapper (wrapping a trained network "
            "changes its function; train with the wrapper from the lambda = 0 run on)."
        )
    if config is not None:
        return (
            "Build the model with the checkpoint's model_config "
            "(ucgm_lab.networks.build_network(load_checkpoint(path)['model_config']))."
        )
    return (
        "The checkpoint stores no model_config (a network of your own): build the same network "
        "class with the same sizes (and the same TimeScaled wrapper, if any) as the run that "
        "wrote it."
    )


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
