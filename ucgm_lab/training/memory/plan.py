"""The memory estimate of one TiT training step (the model in :mod:`ucgm_lab.training.memory`).

:class:`TiTShape` (what the planner reads from a TiT), :class:`MemoryPlan` (the estimate by
component and phase) and :func:`plan_memory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

__all__ = [
    "GIB",
    "MemoryPlan",
    "OptimizerKernel",
    "TiTShape",
    "block_bytes_per_image",
    "block_bytes_per_token",
    "plan_memory",
]

GIB = 2**30
_F = 4  # float32 bytes


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
        buffer_bytes: Bytes of the model's buffers (a whole copy of the model holds them too).
    """

    tokens: int
    width: int
    hidden: int
    heads: int
    depth: int
    parameters: int
    block_parameters: int
    largest_parameter: int = 0
    buffer_bytes: int = 0

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
            buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        )


@dataclass(frozen=True)
class MemoryPlan:
    """The estimate for one GPU (bytes); the components are described in the module docstring.

    Attributes:
        batch_per_gpu: Images per GPU per micro-batch.
        precision: "no", "bf16" or "fp16".
        checkpointing: Gradient checkpointing on.
        block_bytes_per_image: Saved activations of one block per image (no checkpointing).
        state: Held across steps: fp32 weights, optimizer moments, EMA copies, DDP buckets
            and ``monitor``.
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
    monitor: int = 0
    """Part of ``state``: the few-step monitor's references (the EMA's starting parameters,
    and the starting model when it keeps one)."""

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
            "monitor",
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
    monitor_start_ema: bool = False,
    monitor_start_model: bool = False,
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
        monitor_start_ema: The few-step monitor keeps the EMA's starting parameters (every
            :meth:`~ucgm_lab.training.Trainer.fit` at lambda > 0): 4 bytes per parameter.
        monitor_start_model: The few-step monitor keeps a copy of the starting model (lambda > 0
            without a frozen teacher): 4 bytes per parameter plus the buffers.

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
        raise ValueError(
            f"checkpointing must be a bool or an integer k >= 0, got {checkpointing!r}."
        )
    every = int(checkpointing)
    recomputed = _recomputed_blocks(shape.depth, every)
    kept = shape.depth - recomputed
    # recomputed blocks keep their inputs; the others everything (Eq. of block_bytes_per_image)
    activations = batch_per_gpu * (recomputed * n * a * d + kept * block + head)
    recompute = batch_per_gpu * block if recomputed else 0
    autocast_weights = 2 * shape.block_parameters * kept // shape.depth if precision != "no" else 0
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
    monitor = int(monitor_start_ema) * _F * shape.parameters
    monitor += int(monitor_start_model) * (_F * shape.parameters + shape.buffer_bytes)
    state = copies * _F * shape.parameters + monitor
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
        monitor=monitor,
    )


def _recomputed_blocks(depth: int, every: int) -> int:
    """Blocks that checkpointing every ``every``-th block recomputes (0, k, 2k, ...: ceil)."""
    return -(-depth // every) if every else 0


def _ckpt_label(checkpointing: bool | int) -> str:
    k = int(checkpointing)
    return "off" if k == 0 else ("on" if k == 1 else f"every {k} blocks")
