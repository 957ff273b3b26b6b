"""Which accelerate configurations the trainer supports: one process or data parallelism.

The trainer's EMA, the objective's teachers (copies of the model), the checkpoints and
scale/'s rank-sync check all assume that every process holds the full parameters. Under FSDP,
DeepSpeed ZeRO or Megatron-LM they would average, copy, save and compare shards, so these
configurations are refused before anything is built or written.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

__all__ = [
    "SHARDED_DISTRIBUTED_TYPES",
    "UnsupportedDistributedError",
    "check_distributed_type",
    "end_process_group_at_exit",
]

SHARDED_DISTRIBUTED_TYPES = ("FSDP", "DEEPSPEED", "MEGATRON_LM")
"""accelerate's ``DistributedType`` names that shard the model (refused)."""

_SHARDING_ENV = {
    "ACCELERATE_USE_FSDP": "FSDP",
    "ACCELERATE_USE_DEEPSPEED": "DEEPSPEED",
    "ACCELERATE_USE_MEGATRON_LM": "MEGATRON_LM",
}
"""What ``accelerate launch --use_fsdp`` (or a config file asking for it) sets for the script."""


class UnsupportedDistributedError(ValueError):
    """accelerate is configured to shard the model (FSDP, DeepSpeed, Megatron-LM)."""


def check_distributed_type(
    distributed_type: Any = None,
    who: str = "the Trainer",
    memory_hint: str = "gradient checkpointing (model.gradient_checkpointing = True)",
) -> None:
    """Refuse accelerate configurations that shard the model.

    Call it before the ``Accelerator`` is made (it reads the variables that ``accelerate
    launch`` sets, so that accelerate's own errors for these modes never come first) and
    after, with ``Accelerator.distributed_type``.

    Args:
        distributed_type: ``Accelerator.distributed_type`` (an enum or its name), or None to
            check only the launcher's environment variables.
        who: What refuses, for the message ("the Trainer", "scale/").
        memory_hint: How to save memory instead, for the message.

    Raises:
        UnsupportedDistributedError: One line naming the configuration and what is supported.
    """
    asked = [mode for var, mode in _SHARDING_ENV.items() if _env_flag(var)]
    if distributed_type is not None:
        asked.append(str(getattr(distributed_type, "value", distributed_type)).upper())
    refused = [mode for mode in asked if mode in SHARDED_DISTRIBUTED_TYPES]
    if refused:
        raise UnsupportedDistributedError(
            f"accelerate is configured for {refused[0]}, which {who} does not support: the EMA, "
            "the objective's teachers and the checkpoints need full parameters on every process. "
            "Supported: one process, or data parallelism (accelerate launch --multi_gpu, or an "
            f"accelerate config without FSDP/DeepSpeed); save memory with {memory_hint} or a "
            "smaller per-GPU batch."
        )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


_exit_hook_registered = False


def _end_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def end_process_group_at_exit() -> None:
    """Destroy the default process group when the interpreter exits (registered once).

    For an ``Accelerator`` the Trainer made itself (under ``accelerate launch``): NCCL warns of a
    leaked group otherwise. A script that made its own accelerator owns its process group and
    ends it itself (``accelerator.end_training()``). This alone does not stop gloo's threads
    while a DDP wrapper still refers to the group; that finished ranks never abort at exit is
    the job of :mod:`ucgm_lab.training.collectives`.
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_end_process_group)
        _exit_hook_registered = True
