"""Memory planner: activation and state memory per GPU of TiT training, before the first step.

Training memory per GPU = state + saved activations + a transient term:

* **state** (bytes per parameter P): fp32 weights 4, gradients 4, DDP's gradient buckets 4
  (more than one process; accelerate's DDP copies gradients into buckets), AdamW's two
  moments 8, and 4 per fp32 EMA copy (the trainer's EMA, plus the objective's EMA or frozen
  teacher when it has one). Under autocast the half-precision copies of the block weights that
  the linears save for the backward pass add 2 per block parameter (without checkpointing;
  with it, only the recomputed block's copies live at a time).
* **saved activations** of one block per token (a = bytes of the autocast dtype, 2 for bf16 /
  fp16 or 4 without autocast; f = 4; D = width, h = SwiGLU hidden width, H = heads), counted
  from what the block's operations keep for the backward pass (each storage once):

  - attention: the float32 copy made by ``rms_norm`` (f D; without autocast the input itself),
    its output and the modulated input of the QKV projection (2 a D), the fused QKV output
    (3 a D; the values are a view of it), float32 copies of q and k for their RMSNorm (2 f D;
    without autocast they are views of the QKV output, not copies), the rotated q and k
    (2 a D), the attention output (a D; the projection reads a view of it) and the projection
    output (a D, kept by the gate's multiplication);
  - feed-forward: ``rms_norm``'s float32 copy (f D), its output and the modulated input
    (2 a D), the fused W1/W2 output (2 a h), ``silu`` of the gate (a h), the product (a h) and
    the output (a D);
  - per token scalars: two RMSNorm reciprocals (2 f), two per head for q and k (2 f H) and
    the attention's log-sum-exp (f H);
  - per image: the conditioning c (f D), its ``silu`` (a D) and the adaLN output (6 a D).

  That is ``(4 f + 12 a) D + 4 a h + 2 f + 3 f H`` per token with autocast and
  ``(2 f + 12 a) D + 4 a h + 2 f + 3 f H`` without (f D + 7 a D per image on top). The
  formula is checked against the bytes that ``torch.autograd.graph.saved_tensors_hooks``
  sees for a small TiT on the CPU (tests/ucgm_lab/training/test_memory.py; CPU and CUDA
  both run flash-style attention, which keeps the output and the log-sum-exp, not the
  N x N weights). The final layer adds about (f + 2 a) D per token.
  With gradient checkpointing only every block's input (a D per token) is kept, and one
  block's activations are recomputed at a time in the backward pass.
* **transient**: one block's activations again (the gradients of the block being
  back-propagated).

Usable device memory is taken as 95 % of the device's memory minus 1.5 GiB (CUDA context,
cuBLAS and NCCL workspaces, allocator fragmentation): an assumption, stated in the message.

Worked example (the issue's case): TiT-XL/2 on 256 x 256 images (32 x 32 x 4 latents, 256
tokens), bf16, 128 images per GPU on 8 GPUs, two EMA copies: 17.3 MiB per block per image,
28 blocks -> 60.9 GiB of activations, 2.2 GiB for the backward pass and 18.8 GiB of state
(675 M parameters x 28 bytes + 1.2 GiB of bf16 weight copies) = 81.9 GiB, more than the
69.2 GiB the planner lets an 80 GB H100 use; with gradient checkpointing 24.2 GiB. The largest
batch per GPU without checkpointing is 102 on 80 GB and 211 on 141 GB (H200).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

__all__ = [
    "MemoryPlan",
    "MemoryPlanError",
    "TiTShape",
    "ensure_fits",
    "largest_batch",
    "plan_memory",
    "usable_bytes",
]

GIB = 2**30
_F = 4  # float32 bytes


class MemoryPlanError(RuntimeError):
    """Training would not fit in the device's memory even with gradient checkpointing."""


@dataclass(frozen=True)
class TiTShape:
    """What the planner needs to know about a TiT.

    Attributes:
        tokens: Tokens per image N = (input_size / patch_size)^2.
        width: Hidden size D.
        hidden: SwiGLU hidden width h = int(2/3 mlp_ratio D).
        heads: Attention heads H.
        depth: Blocks.
        parameters: All parameters P.
        block_parameters: Parameters of all blocks (their weights get autocast copies).
    """

    tokens: int
    width: int
    hidden: int
    heads: int
    depth: int
    parameters: int
    block_parameters: int

    @classmethod
    def of(cls, model: nn.Module) -> TiTShape:
        """Read the shape from a :class:`~ucgm_lab.networks.TiT` (or anything with its attributes)."""
        for name in ("grid", "hidden_size", "num_heads", "depth", "mlp_ratio", "blocks"):
            if not hasattr(model, name):
                raise TypeError(
                    f"The memory planner needs a TiT-like model (attribute {name!r} missing); "
                    f"got {type(model).__name__}."
                )
        return cls(
            tokens=int(model.grid) ** 2,
            width=int(model.hidden_size),
            hidden=int(2 / 3 * float(model.mlp_ratio) * int(model.hidden_size)),
            heads=int(model.num_heads),
            depth=int(model.depth),
            parameters=sum(p.numel() for p in model.parameters()),
            block_parameters=sum(p.numel() for p in model.blocks.parameters()),
        )


@dataclass(frozen=True)
class MemoryPlan:
    """The estimate for one GPU (bytes).

    Attributes:
        batch_per_gpu: Images per GPU per micro-batch.
        precision: "no", "bf16" or "fp16".
        checkpointing: Gradient checkpointing on.
        block_bytes_per_image: Saved activations of one block per image (no checkpointing).
        activations: Saved activations of the whole model for the batch.
        transient: Working memory of the backward pass (one block's activations).
        state: Weights, gradients, DDP buckets, optimizer moments, EMA copies, autocast
            weight copies.
        total: activations + transient + state.
    """

    batch_per_gpu: int
    precision: str
    checkpointing: bool
    block_bytes_per_image: int
    activations: int
    transient: int
    state: int
    total: int

    def summary(self) -> str:
        """One line: the parts in GiB."""
        return (
            f"{self.batch_per_gpu} images/GPU, {self.precision}, checkpointing "
            f"{'on' if self.checkpointing else 'off'}: activations {self.activations / GIB:.1f} "
            f"GiB ({self.block_bytes_per_image / 2**20:.2f} MiB per block per image) + backward "
            f"{self.transient / GIB:.1f} GiB + state {self.state / GIB:.1f} GiB = "
            f"{self.total / GIB:.1f} GiB"
        )


def block_bytes_per_token(shape: TiTShape, precision: str) -> float:
    """Saved activation bytes of one block per token (see the module docstring)."""
    a = _F if precision == "no" else 2
    d, h, heads = shape.width, shape.hidden, shape.heads
    float_copies = (4 if precision != "no" else 2) * _F * d
    return float_copies + 12 * a * d + 4 * a * h + 2 * _F + 3 * _F * heads


def block_bytes_per_image(shape: TiTShape, precision: str) -> int:
    """Saved activation bytes of one block per image (tokens plus the per-image terms)."""
    a = _F if precision == "no" else 2
    per_image = _F * shape.width + 7 * a * shape.width
    return int(round(shape.tokens * block_bytes_per_token(shape, precision) + per_image))


def plan_memory(
    model: nn.Module | TiTShape,
    batch_per_gpu: int,
    precision: Literal["no", "bf16", "fp16"] = "bf16",
    checkpointing: bool = False,
    num_processes: int = 1,
    optimizer_states: int = 2,
    ema_copies: int = 2,
) -> MemoryPlan:
    """Estimate the memory of one GPU for a training step.

    Args:
        model: A TiT, or its :class:`TiTShape`.
        batch_per_gpu: Images per GPU per micro-batch (global batch / processes /
            gradient accumulation steps).
        precision: Autocast dtype: "bf16", "fp16" or "no" (float32).
        checkpointing: Gradient checkpointing of every block.
        num_processes: Processes (DDP buckets exist for more than one).
        optimizer_states: fp32 moments per parameter (AdamW and RAdam: 2).
        ema_copies: fp32 copies of the weights besides the model (trainer EMA, teacher).

    Returns:
        :class:`MemoryPlan`.
    """
    if precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"precision must be 'no', 'bf16' or 'fp16', got {precision!r}.")
    if isinstance(batch_per_gpu, bool) or not isinstance(batch_per_gpu, int) or batch_per_gpu < 1:
        raise ValueError(f"batch_per_gpu must be a positive integer, got {batch_per_gpu!r}.")
    shape = model if isinstance(model, TiTShape) else TiTShape.of(model)
    a = _F if precision == "no" else 2
    block = block_bytes_per_image(shape, precision)
    head = shape.tokens * (_F + 2 * a) * shape.width
    if checkpointing:
        kept = shape.depth * shape.tokens * a * shape.width  # every block's input
        activations = batch_per_gpu * (kept + block + head)  # one block recomputed
    else:
        activations = batch_per_gpu * (shape.depth * block + head)
    transient = batch_per_gpu * block
    copies = 1 + 1 + (1 if num_processes > 1 else 0) + optimizer_states + ema_copies
    state = copies * _F * shape.parameters
    if precision != "no" and not checkpointing:  # with checkpointing: one block's at a time
        state += 2 * shape.block_parameters
    return MemoryPlan(
        batch_per_gpu=batch_per_gpu,
        precision=precision,
        checkpointing=checkpointing,
        block_bytes_per_image=block,
        activations=activations,
        transient=transient,
        state=state,
        total=activations + transient + state,
    )


def usable_bytes(device_bytes: int) -> int:
    """Memory the planner lets a run use: 95 % of the device minus 1.5 GiB (context, workspaces)."""
    return int(0.95 * device_bytes - 1.5 * GIB)


def largest_batch(
    model: nn.Module | TiTShape, device_bytes: int, checkpointing: bool, **kwargs: Any
) -> int:
    """The largest images per GPU whose estimate fits in ``usable_bytes(device_bytes)`` (0: none)."""
    shape = model if isinstance(model, TiTShape) else TiTShape.of(model)
    one = plan_memory(shape, 1, checkpointing=checkpointing, **kwargs)
    per_image = one.activations + one.transient
    room = usable_bytes(device_bytes) - one.state
    return max(0, math.floor(room / per_image))


def ensure_fits(
    model: nn.Module,
    batch_per_gpu: int,
    *,
    precision: Literal["no", "bf16", "fp16"],
    device_bytes: int,
    num_processes: int = 1,
    optimizer_states: int = 2,
    ema_copies: int = 2,
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
    )
    on = bool(getattr(model, "gradient_checkpointing", False))
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
    if not on:
        with_ckpt = plan_memory(model, batch_per_gpu, checkpointing=True, **common)
        if with_ckpt.total <= usable and action == "auto":
            model.gradient_checkpointing = True
            log(
                f"Memory plan: {plan.summary()} exceeds {budget}. Gradient checkpointing is now on "
                f"({with_ckpt.total / GIB:.1f} GiB; about +25 % time). Without it the largest batch "
                f"per GPU that fits is {fits_off} (set model.gradient_checkpointing, or lower "
                "the batch per GPU with more gradient_accumulation_steps)."
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
