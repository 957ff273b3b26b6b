"""Memory planner: the peak memory per GPU of TiT training, before the first step.

The peak of a training step is the memory held across steps plus the largest of three phases
(each named component is a field of :class:`MemoryPlan`):

* **state**, held across steps (bytes per parameter P): fp32 weights 4, AdamW's two moments 8
  (allocated at the first optimizer step, so the first step peaks lower), 4 per fp32 EMA copy
  (the trainer's EMA, plus the objective's EMA or frozen teacher when it has one) and DDP's
  gradient buckets 4 (more than one process; accelerate's DDP copies gradients into buckets).
  In a few-step (lambda > 0) run, add the **monitor**: the references that
  :class:`~ucgm_lab.training.diagnostics.FewStepMonitor` keeps from the start of ``fit`` to
  its end, the EMA's starting parameters (4 per parameter) and, when the objective has no
  frozen teacher (lambda > 0 without the enhanced target), a copy of the starting model (its
  parameters, 4 each, and buffers).
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

The package: :mod:`.plan` (:class:`TiTShape`, :class:`MemoryPlan`, :func:`plan_memory`: the
estimate) and :mod:`.fit` (:func:`usable_bytes`, :func:`largest_batch`,
:func:`choose_checkpointing`, :func:`ensure_fits`: the estimate against a device); every name
is importable from ``ucgm_lab.training.memory`` as before.
"""

from .fit import MemoryPlanError, ensure_fits, largest_batch, usable_bytes
from .fit import choose_checkpointing as choose_checkpointing
from .plan import GIB as GIB
from .plan import MemoryPlan, TiTShape, plan_memory
from .plan import OptimizerKernel as OptimizerKernel
from .plan import block_bytes_per_image as block_bytes_per_image
from .plan import block_bytes_per_token as block_bytes_per_token

__all__ = [
    "MemoryPlan",
    "MemoryPlanError",
    "TiTShape",
    "ensure_fits",
    "largest_batch",
    "plan_memory",
    "usable_bytes",
]
