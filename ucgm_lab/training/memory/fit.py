"""The memory estimate against a device: usable memory, the largest batch, checkpointing.

:func:`ensure_fits` is the check the :class:`~ucgm_lab.training.Trainer` runs before the first
step on CUDA; it may turn on (partial) gradient checkpointing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

from torch import nn

from .plan import GIB, MemoryPlan, OptimizerKernel, TiTShape, _recomputed_blocks, plan_memory

__all__ = [
    "MemoryPlanError",
    "choose_checkpointing",
    "ensure_fits",
    "largest_batch",
    "usable_bytes",
]


class MemoryPlanError(RuntimeError):
    """Training would not fit in the device's memory even with gradient checkpointing."""


def choose_checkpointing(
    model: nn.Module | TiTShape, batch_per_gpu: int, device_bytes: int, **kwargs: Any
) -> tuple[int | None, MemoryPlan]:
    """The least gradient checkpointing whose plan fits in ``usable_bytes(device_bytes)``.

    Tries no checkpointing, then every k-th block for k = depth, depth - 1, ..., 1 (more
    recomputed blocks each time: ``ceil(depth / k)``) and returns the first that fits.

    Args:
        model: A TiT or its :class:`TiTShape`.
        batch_per_gpu: Images per GPU per micro-batch.
        device_bytes: The device's total memory.
        **kwargs: Other :func:`plan_memory` arguments (precision, ...).

    Returns:
        ``(k, plan)``: k = 0 (none needed) or the largest period k that fits, and its plan;
        ``(None, plan of k = 1)`` if even checkpointing every block does not fit.
    """
    shape = model if isinstance(model, TiTShape) else TiTShape.of(model)
    room = usable_bytes(device_bytes)
    seen: set[int] = set()
    for k in (0, *range(shape.depth, 0, -1)):
        recomputed = _recomputed_blocks(shape.depth, k)
        if recomputed in seen:  # same number of recomputed blocks as a larger k
            continue
        seen.add(recomputed)
        plan = plan_memory(shape, batch_per_gpu, checkpointing=k, **kwargs)
        if plan.total <= room:
            return k, plan
    return None, plan


def usable_bytes(device_bytes: int) -> int:
    """Memory the planner lets a run use: 95 % of the device minus 1.5 GiB (context, workspaces)."""
    return int(0.95 * device_bytes - 1.5 * GIB)


def largest_batch(
    model: nn.Module | TiTShape, device_bytes: int, checkpointing: bool, **kwargs: Any
) -> int:
    """The largest images per GPU whose estimate fits in ``usable_bytes(device_bytes)`` (0: none).

    The total grows with the batch (a maximum of affine functions), so a bisection finds it.
    """
    shape = model if isinstance(model, TiTShape) else TiTShape.of(model)
    room = usable_bytes(device_bytes)

    def fits(batch: int) -> bool:
        return plan_memory(shape, batch, checkpointing=checkpointing, **kwargs).total <= room

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while fits(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def ensure_fits(
    model: nn.Module,
    batch_per_gpu: int,
    *,
    precision: Literal["no", "bf16", "fp16"],
    device_bytes: int,
    num_processes: int = 1,
    optimizer_states: int = 2,
    ema_copies: int = 2,
    accumulating: bool = False,
    optimizer_kernel: OptimizerKernel = "fused",
    no_grad_pass: bool = True,
    monitor_start_ema: bool = False,
    monitor_start_model: bool = False,
    action: Literal["auto", "warn"] = "auto",
    log: Callable[[str], Any] = print,
) -> MemoryPlan:
    """Check the plan against the device; turn on gradient checkpointing if that makes it fit.

    Args:
        model: A TiT; its ``gradient_checkpointing`` may be set to True ("auto").
        batch_per_gpu: Images per GPU per micro-batch.
        precision: "no", "bf16" or "fp16".
        device_bytes: The device's total memory.
        num_processes: Processes.
        optimizer_states: fp32 moments per parameter.
        ema_copies: fp32 EMA / teacher copies.
        accumulating: Gradients accumulated over more than one micro-batch.
        optimizer_kernel: "fused", "foreach" or "loop" (see :func:`plan_memory`).
        no_grad_pass: The objective runs a no-grad pass after the training forward.
        monitor_start_ema, monitor_start_model: The few-step monitor's references (see
            :func:`~ucgm_lab.training.memory.plan_memory`).
        action: "auto" (turn checkpointing on, raise if even that does not fit) or "warn".
        log: Where the message goes (e.g. ``accelerator.print``).

    Returns:
        The plan that will run.

    Raises:
        MemoryPlanError: ("auto") if the batch does not fit even with checkpointing, naming
            the largest batch per GPU that fits.
    """
    common = dict(
        precision=precision,
        num_processes=num_processes,
        optimizer_states=optimizer_states,
        ema_copies=ema_copies,
        accumulating=accumulating,
        optimizer_kernel=optimizer_kernel,
        no_grad_pass=no_grad_pass,
        monitor_start_ema=monitor_start_ema,
        monitor_start_model=monitor_start_model,
    )
    on = getattr(model, "gradient_checkpointing", False)
    plan = plan_memory(model, batch_per_gpu, checkpointing=on, **common)
    usable = usable_bytes(device_bytes)
    budget = (
        f"{usable / GIB:.1f} GiB usable of {device_bytes / GIB:.1f} GiB (95 % minus 1.5 GiB for "
        "the CUDA context and workspaces)"
    )
    if plan.total <= usable:
        log(f"Memory plan: {plan.summary()}; fits in {budget}.")
        return plan
    fits_off = largest_batch(model, device_bytes, False, **common)
    fits_on = largest_batch(model, device_bytes, True, **common)
    if int(on) != 1:  # less than every block checkpointed: try more (the least that fits)
        every, with_ckpt = choose_checkpointing(model, batch_per_gpu, device_bytes, **common)
        if every and (not on or every < int(on)) and action == "auto":
            model.gradient_checkpointing = True if every == 1 else every
            depth = TiTShape.of(model).depth
            share = _recomputed_blocks(depth, every) / depth
            log(
                f"Memory plan: {plan.summary()} exceeds {budget}. Gradient checkpointing is now on "
                f"for {'every block' if every == 1 else f'every {every}-th block'} "
                f"({with_ckpt.total / GIB:.1f} GiB; about +{25 * share:.0f} % time). Without it "
                f"the largest batch per GPU that fits is {fits_off} (set "
                "model.gradient_checkpointing, or lower the batch per GPU with more "
                "gradient_accumulation_steps)."
            )
            return with_ckpt
    message = (
        f"Memory plan: {plan.summary()} exceeds {budget}. The largest batch per GPU that fits is "
        f"{fits_off} without and {fits_on} with gradient checkpointing: lower the global batch, "
        "raise gradient_accumulation_steps, or use more GPUs."
    )
    if action == "warn":
        warnings.warn(message, ResourceWarning, stacklevel=2)
        return plan
    raise MemoryPlanError(message)
