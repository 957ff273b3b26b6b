"""Memory planner: the peak memory per GPU of TiT training, before the first step.

The peak of a training step is the memory held across steps plus the largest of three phases
(each named component is a field of :class:`MemoryPlan`):

* **state**, held across steps (bytes per parameter P): fp32 weights 4, AdamW's two moments 8
  (allocated at the first optimizer step, so the first step peaks lower), 4 per fp32 EMA copy
  (the trainer's EMA, plus the objective's EMA or frozen teacher when it has one) and DDP's
  gradient buckets 4 (more than one process; accelerate's DDP copies gradients into buckets).
* **gradients**: 4 per parameter. They exist from the backward pass to the optimizer step
  (``zero_grad(set_to_none=True)``), and through every micro-batch when gradients are
  accumulated over more than one.
* **activations**: what the training forward saves for the backward pass. Per block and token
  (a = bytes of the autocast dtype, 2 for bf16 / fp16 or 4 without autocast; f = 4; D = width,
  h = SwiGLU hidden width, H = heads), counted from what the block's operations keep (each
  storage once):

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
  ``(2 f + 12 a) D + 4 a h + 2 f + 3 f H`` without (f D + 7 a D per image on top); the final
  layer adds about (f + 2 a) D per token. CPU and CUDA both run flash-style attention, which
  keeps the output and the log-sum-exp, not the N x N weights. With gradient checkpointing the
  forward keeps only every block's input (a D per token) and the final layer's tensors.
* **autocast_weights**: under autocast the linears save half-precision copies of the block
  weights for the backward pass (2 per block parameter); with checkpointing they are made
  again per recomputed block and are not counted.
* **recompute**: with checkpointing, one block's activations, rebuilt in the backward pass.
* **forward_transient**: the working memory of a no-grad pass of the network after the
  training forward (the objective's teacher and finite-difference passes, while all
  activations are still held): the largest set of temporaries one block holds at a time,
  ``(f + a) D + 4 a h`` per token, in its SwiGLU: the block input (f D), the modulated input
  (a D), the fused W1/W2 output (2 a h), ``silu`` of the gate (a h) and the product (a h).
  None when the objective makes no such pass (zeta = 0 and lambda = 0).
* **backward_transient**: the working memory of a block's backward pass beside the saved
  tensors it is releasing: the gradient of the fused W1/W2 output (2 a h per token), the
  largest gradient a block makes, created while the tensors it replaces are still held
  (measured for TiT-S/2: 1.5 a h).
* **optimizer_step**: temporaries of the optimizer step: none for the fused AdamW kernel (the
  trainer's default on CUDA), one fp32 copy of all parameters for the multi-tensor
  (``foreach``) kernel (the square root of the second moment), and two copies of the largest
  parameter for the per-tensor loop that torch runs on the CPU.

The phases (each on top of the state):

* forward: activations + autocast_weights + forward_transient (+ gradients when
  accumulating);
* backward: max(activations + autocast_weights, gradients) + recompute + backward_transient (the
  gradients of each block are made while its saved tensors are released, so the sum of the two
  moves linearly from one end to the other and peaks at an end; with accumulation the
  gradients are there from the start: their sum);
* step: gradients + optimizer_step.

``total`` = state + the largest phase. It estimates live tensor bytes: what
``torch.cuda.max_memory_allocated`` reports on CUDA, and the growth of the peak resident set
on the CPU when the C allocator hands freed blocks back to the system
(:mod:`ucgm_lab.training.rss`, which checks the estimate within 15 %). glibc's default
allocator keeps many freed blocks (up to its dynamic 32 MiB mmap threshold) in its heap, a
cache like the CUDA allocator's reserved memory, which this estimate leaves out; the
activation formula alone is checked against the bytes that
``torch.autograd.graph.saved_tensors_hooks`` sees (tests/ucgm_lab/training/test_memory.py).

Usable device memory is taken as 95 % of the device's memory minus 1.5 GiB (CUDA context,
cuBLAS and NCCL workspaces, allocator fragmentation): an assumption, stated in the message.

Worked example (the issue's case): TiT-XL/2 on 256 x 256 images (32 x 32 x 4 latents, 256
tokens), bf16, 128 images per GPU on 8 GPUs, two EMA copies, fused AdamW: 17.3 MiB per block
per image, 28 blocks -> 60.9 GiB of activations, 1.25 GiB of bf16 weight copies, 0.96 GiB of
working memory for the teacher's pass and 15.1 GiB of state (675 M parameters x 24 bytes):
78.2 GiB at the end of the forward pass; with gradient checkpointing of every block 20.1 GiB
(peak in the backward pass). Whether it fits depends on the device's ``total_memory`` through
:func:`usable_bytes` (the same rule in scale/README.md's table, written by
scripts/scale_memory_table.py); :func:`choose_checkpointing` then picks the least partial
checkpointing (every k-th block) that fits.
"""

from __future__ import annotations

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
        largest_parameter: Elements of the largest parameter tensor (the per-tensor
            optimizer loop's temporaries).
    """

    tokens: int
    width: int
    hidden: int
    heads: int
    depth: int
    parameters: int
    block_parameters: int
    largest_parameter: int = 0

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
            largest_parameter=max((p.numel() for p in model.parameters()), default=0),
        )


@dataclass(frozen=True)
class MemoryPlan:
    """The estimate for one GPU (bytes); the components are described in the module docstring.

    Attributes:
        batch_per_gpu: Images per GPU per micro-batch.
        precision: "no", "bf16" or "fp16".
        checkpointing: Gradient checkpointing on.
        block_bytes_per_image: Saved activations of one block per image (no checkpointing).
        state: Held across steps: fp32 weights, optimizer moments, EMA copies, DDP buckets.
        gradients: fp32 gradients (from the backward pass to the optimizer step).
        activations: Saved by the training forward for the backward pass (with
            checkpointing: the block inputs and the final layer's tensors).
        autocast_weights: Half-precision block weight copies saved under autocast.
        recompute: One block's activations rebuilt in the backward pass (checkpointing).
        forward_transient: Working memory of a no-grad pass after the training forward.
        backward_transient: Working memory of a block's backward pass.
        optimizer_step: Temporaries of the optimizer step.
        forward: Peak of the forward phase above the state.
        backward: Peak of the backward phase above the state.
        step: Peak of the optimizer step above the state.
        total: state + max(forward, backward, step).
    """

    batch_per_gpu: int
    precision: str
    checkpointing: bool | int
    block_bytes_per_image: int
    state: int
    gradients: int
    activations: int
    autocast_weights: int
    recompute: int
    forward_transient: int
    backward_transient: int
    optimizer_step: int
    forward: int
    backward: int
    step: int
    total: int

    @property
    def peak_phase(self) -> str:
        """The phase that sets the peak: "forward", "backward" or "step"."""
        phases = {"forward": self.forward, "backward": self.backward, "step": self.step}
        return max(phases, key=phases.__getitem__)

    def components(self) -> dict[str, int]:
        """The named components (bytes), for reports."""
        names = (
            "state",
            "gradients",
            "activations",
            "autocast_weights",
            "recompute",
            "forward_transient",
            "backward_transient",
            "optimizer_step",
        )
        return {name: getattr(self, name) for name in names}

    def phase_parts(self) -> list[tuple[str, int]]:
        """What the peak phase holds above the state: (label, bytes), non-zero parts only."""
        held = self.activations + self.autocast_weights
        if self.peak_phase == "forward":
            parts = [
                ("activations", self.activations),
                ("autocast weight copies", self.autocast_weights),
                ("teacher pass", self.forward_transient),
                ("accumulated gradients", self.forward - held - self.forward_transient),
            ]
        elif self.peak_phase == "backward":
            rest = self.backward - self.recompute - self.backward_transient
            if rest == held + self.gradients and held and self.gradients:
                label = "activations and accumulated gradients"
            else:
                label = "gradients" if rest == self.gradients else "activations"
            parts = [
                (label, rest),
                ("recomputed block", self.recompute),
                ("block backward", self.backward_transient),
            ]
        else:
            parts = [("gradients", self.gradients), ("optimizer temporaries", self.optimizer_step)]
        return [(label, size) for label, size in parts if size > 0]

    def summary(self) -> str:
        """One line: the parts in GiB."""
        inside = ", ".join(f"{label} {size / GIB:.1f}" for label, size in self.phase_parts())
        return (
            f"{self.batch_per_gpu} images/GPU, {self.precision}, checkpointing "
            f"{_ckpt_label(self.checkpointing)}: state {self.state / GIB:.1f} GiB + "
            f"{self.peak_phase} peak {(self.total - self.state) / GIB:.1f} GiB ({inside}; "
            f"{self.block_bytes_per_image / 2**20:.2f} MiB of activations per block per image) "
            f"= {self.total / GIB:.1f} GiB"
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


OptimizerKernel = Literal["fused", "foreach", "loop"]


def plan_memory(
    model: nn.Module | TiTShape,
    batch_per_gpu: int,
    precision: Literal["no", "bf16", "fp16"] = "bf16",
    checkpointing: bool | int = False,
    num_processes: int = 1,
    optimizer_states: int = 2,
    ema_copies: int = 2,
    accumulating: bool = False,
    optimizer_kernel: OptimizerKernel = "fused",
    no_grad_pass: bool = True,
) -> MemoryPlan:
    """Estimate the peak memory of one GPU (or of a CPU process) for a training step.

    Args:
        model: A TiT, or its :class:`TiTShape`.
        batch_per_gpu: Images per GPU per micro-batch (global batch / processes /
            gradient accumulation steps).
        precision: Autocast dtype: "bf16", "fp16" or "no" (float32).
        checkpointing: Gradient checkpointing: True (or 1) every block, k >= 2 every k-th
            block (``ceil(depth / k)`` blocks keep only their inputs; the others keep all
            their activations and autocast weight copies), False (or 0) none.
        num_processes: Processes (DDP buckets exist for more than one).
        optimizer_states: fp32 moments per parameter (AdamW and RAdam: 2).
        ema_copies: fp32 copies of the weights besides the model (trainer EMA, teacher).
        accumulating: Gradients are accumulated over more than one micro-batch (they are then
            held through the forward passes).
        optimizer_kernel: "fused" (AdamW ``fused=True``, the trainer's default on CUDA),
            "foreach" (multi-tensor kernels: CUDA without fusing, e.g. RAdam) or "loop" (the
            per-tensor loop torch runs on the CPU).
        no_grad_pass: The objective runs a no-grad network pass after the training forward
            (enhanced target: zeta > 0; finite difference: lambda > 0).

    Returns:
        :class:`MemoryPlan`.
    """
    if precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"precision must be 'no', 'bf16' or 'fp16', got {precision!r}.")
    if isinstance(batch_per_gpu, bool) or not isinstance(batch_per_gpu, int) or batch_per_gpu < 1:
        raise ValueError(f"batch_per_gpu must be a positive integer, got {batch_per_gpu!r}.")
    if optimizer_kernel not in ("fused", "foreach", "loop"):
        raise ValueError(
            f"optimizer_kernel must be 'fused', 'foreach' or 'loop', got {optimizer_kernel!r}."
        )
    shape = model if isinstance(model, TiTShape) else TiTShape.of(model)
    a = _F if precision == "no" else 2
    n, d, h = shape.tokens, shape.width, shape.hidden
    block = block_bytes_per_image(shape, precision)
    head = n * (_F + 2 * a) * d
    if not isinstance(checkpointing, int) or checkpointing < 0:  # bool is an int
        raise ValueError(f"checkpointing must be a bool or an integer k >= 0, got {checkpointing!r}.")
    every = int(checkpointing)
    recomputed = _recomputed_blocks(shape.depth, every)
    kept = shape.depth - recomputed
    # recomputed blocks keep their inputs; the others everything (Eq. of block_bytes_per_image)
    activations = batch_per_gpu * (recomputed * n * a * d + kept * block + head)
    recompute = batch_per_gpu * block if recomputed else 0
    autocast_weights = (
        2 * shape.block_parameters * kept // shape.depth if precision != "no" else 0
    )
    forward_transient = batch_per_gpu * n * ((_F + a) * d + 4 * a * h) if no_grad_pass else 0
    backward_transient = batch_per_gpu * n * 2 * a * h
    gradients = _F * shape.parameters
    optimizer_step = {
        "fused": 0,
        "foreach": _F * shape.parameters,
        "loop": 2 * _F * shape.largest_parameter,
    }[optimizer_kernel]
    held = activations + autocast_weights
    forward = held + forward_transient + (gradients if accumulating else 0)
    backward = (held + gradients if accumulating else max(held, gradients)) + recompute
    backward += backward_transient
    step = gradients + optimizer_step
    copies = 1 + optimizer_states + ema_copies + (1 if num_processes > 1 else 0)
    state = copies * _F * shape.parameters
    return MemoryPlan(
        batch_per_gpu=batch_per_gpu,
        precision=precision,
        checkpointing=checkpointing,
        block_bytes_per_image=block,
        state=state,
        gradients=gradients,
        activations=activations,
        autocast_weights=autocast_weights,
        recompute=recompute,
        forward_transient=forward_transient,
        backward_transient=backward_transient,
        optimizer_step=optimizer_step,
        forward=forward,
        backward=backward,
        step=step,
        total=state + max(forward, backward, step),
    )


def _recomputed_blocks(depth: int, every: int) -> int:
    """Blocks that checkpointing every ``every``-th block recomputes (0, k, 2k, ...: ceil)."""
    return -(-depth // every) if every else 0


def _ckpt_label(checkpointing: bool | int) -> str:
    k = int(checkpointing)
    return "off" if k == 0 else ("on" if k == 1 else f"every {k} blocks")


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
