"""How the Trainer sets up a run.

Precision, TF32, the compile mode, the optimizer kernel, the memory check, the micro-batches and
whether accelerate is a pass-through; used by :class:`~ucgm_lab.training.Trainer` (and
``resolve_precision`` / ``enable_tf32`` by scale/train.py, scale/sample.py and
scale/extract_latents.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..model_api import unwrap_model
from .trainer_config import TrainerConfig

__all__ = ["enable_tf32", "resolve_precision"]


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
    """Run the memory planner before the first step (CUDA); may turn on checkpointing.

    At lambda > 0 it counts what :class:`~ucgm_lab.training.diagnostics.FewStepMonitor` keeps
    from the start of ``fit`` (made there for the same objectives): the EMA's starting
    parameters and, without a frozen teacher, a copy of the starting model.
    """
    from .diagnostics import keeps_start_model, wants_few_step_monitor
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
    monitor = wants_few_step_monitor(objective)
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
        monitor_start_ema=monitor,
        monitor_start_model=monitor and keeps_start_model(objective),
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
