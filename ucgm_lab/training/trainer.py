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
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..ema import ExponentialMovingAverage
from ..model_api import unwrap_model
from ..objective import UCGMObjective
from .checkpoint import check_writable_dir
from .collectives import mean_over_processes
from .data import DataSource
from .diagnostics import FewStepMonitor, progress_postfix, wants_few_step_monitor
from .distributed import check_distributed_type, end_process_group_at_exit
from .run_folder import RunFolderError, claim_checkpoint_dir
from .signals import StopSignals, agree_to_stop, signal_name
from .trainer_checkpoints import TrainerCheckpoints
from .trainer_checkpoints import _check_tensors as _check_tensors
from .trainer_checkpoints import _inner_names as _inner_names
from .trainer_config import (
    Callback,
    NonFiniteLossError,
    ResumeMismatchError,
    TrainerConfig,
    TrainResult,
)
from .trainer_setup import (
    _accelerate_is_pass_through,
    _check_memory,
    _check_micro_batches,
    _compile_mode,
    _jsonable,
    _use_fused,
    _warn_if_fp16_falls_back,
    enable_tf32,
    resolve_precision,
)

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


class Trainer(TrainerCheckpoints):
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
            end_process_group_at_exit()  # this Trainer made the process group: it ends it
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
            mean_loss = mean_over_processes(mean_loss)
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
