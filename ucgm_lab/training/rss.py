"""The memory planner against the peak resident memory of real training steps on the CPU.

:func:`measure_training_rss` runs, in a fresh process, what :class:`~ucgm_lab.training.Trainer`
does for a small TiT and measures the growth of the process's peak resident set (Linux
``VmHWM``) over a baseline, next to the planner's estimate
(:func:`~ucgm_lab.training.memory.plan_memory`) for the same run:

1. Runtime first: imports, then a warm-up that trains a one-block copy of the model (same
   width, tokens, batch, precision, checkpointing and objective) for two steps and is
   deleted: it loads kernels, autocast and accelerate's state and makes the math libraries'
   buffers for these matrix shapes (GEMM packing buffers, oneDNN's primitive cache), the
   runtime, not the model; on a GPU the planner leaves the CUDA context and workspaces out
   the same way.
2. Baseline: the resident set after a garbage collection, with the peak counter reset
   (``echo 5 > /proc/self/clear_refs``), so the peak measured later starts from it.
3. The model, objective, data, optimizer and EMA are built by the trainer, as in a real run,
   and ``steps`` optimizer steps run (AdamW's moments appear at the first step, the objective's
   teacher at its first call: the peak comes from the second step on).
4. The peak resident set minus the baseline is what the planner predicts.

The C allocator matters. glibc's default keeps many freed blocks in its heap (its mmap
threshold rises to the largest freed block, up to 32 MiB), a cache like the CUDA allocator's
reserved memory; the planner, like ``torch.cuda.max_memory_allocated``, counts live tensors.
``allocator="returning"`` (the default) runs the child with ``MALLOC_MMAP_THRESHOLD_=65536``,
so blocks from 64 KiB up are mapped on their own and handed back when freed, and the
resident set follows the live tensors; ``allocator="default"`` leaves glibc as it is (the
growth then depends on what its heap kept: 3-13 % above the "returning" figure for TiT-S/2,
and below it for a tiny TiT whose blocks fit into the heap the warm-up left; see
``benchmarks/scale_throughput.py --grid cpu``). Linux only (``/proc``).

Usage::

    python -m ucgm_lab.training.rss '{"batch": 4, "precision": "bf16"}'
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["RSSMeasurement", "RSSRun", "measure_here", "measure_training_rss"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class RSSRun:
    """A small training run to measure.

    Attributes:
        latent_size: Side S of the (S, S, channels) inputs.
        channels: Input channels.
        patch_size: Patch side (tokens = (S / patch)^2).
        hidden_size: Width D.
        depth: Blocks.
        num_heads: Heads.
        num_classes: Classes (labels are drawn uniformly).
        batch: Images per step.
        precision: "no", "bf16" or "fp16" (the trainer's ``mixed_precision``; fp16 runs fp32
            on the CPU, so use "no" or "bf16").
        checkpointing: Gradient checkpointing of every block.
        gradient_accumulation_steps: Micro-batches per step.
        enhancement_ratio: The objective's zeta (> 0: an EMA teacher and a no-grad pass).
        consistency_ratio: The objective's lambda.
        steps: Optimizer steps (>= 2, so that the optimizer's moments exist at a peak).
        threads: torch threads.
    """

    latent_size: int = 32
    channels: int = 4
    patch_size: int = 2
    hidden_size: int = 384
    depth: int = 12
    num_heads: int = 6
    num_classes: int = 1000
    batch: int = 4
    precision: Literal["no", "bf16", "fp16"] = "no"
    checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    enhancement_ratio: float = 0.44
    consistency_ratio: float = 0.0
    steps: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        if self.precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"precision must be 'no', 'bf16' or 'fp16', got {self.precision!r}.")
        if self.steps < 2:
            raise ValueError(
                f"steps must be >= 2 (the optimizer's moments come at the first), got {self.steps}."
            )


@dataclass(frozen=True)
class RSSMeasurement:
    """A measured peak beside the planner's estimate (bytes).

    Attributes:
        run: What ran.
        allocator: "returning" or "default" (see the module docstring).
        baseline: Resident set after the runtime warm-up, before the model.
        peak: Peak resident set over the steps.
        planned: The planner's total for the run.
        components: The planner's named components and phases.
        peak_phase: The planner's peak phase.
    """

    run: RSSRun
    allocator: str
    baseline: int
    peak: int
    planned: int
    components: dict[str, int]
    peak_phase: str

    @property
    def measured(self) -> int:
        """The growth the planner predicts: peak - baseline."""
        return self.peak - self.baseline

    @property
    def ratio(self) -> float:
        """The planner's total over the measured growth."""
        return self.planned / self.measured


def _status() -> dict[str, int]:
    values = {}
    for line in _STATUS.read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def _reset_peak() -> None:
    _CLEAR_REFS.write_text("5")


def _objective(run: RSSRun) -> Any:
    from ..objective import UCGMObjective
    from ..schedules import BetaTimeDistribution

    return UCGMObjective(
        "linear",
        run.consistency_ratio,
        time_distribution=BetaTimeDistribution(2.4, 2.4),
        enhancement_ratio=run.enhancement_ratio,
    )


def _trainer(run: RSSRun, model: Any, data: Any) -> Any:
    from .trainer import Trainer, TrainerConfig

    cfg = TrainerConfig(
        steps=run.steps,
        mixed_precision=run.precision,
        progress=False,
        cpu=True,
        memory_check="off",
        gradient_accumulation_steps=run.gradient_accumulation_steps,
    )
    return Trainer(model, _objective(run), data, cfg)


def _data(run: RSSRun, size: int, batch: int) -> Any:
    import torch

    from .data import TensorDataSource

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch * (run.steps + 1), run.channels, size, size, generator=g)
    y = torch.randint(0, run.num_classes, (x.shape[0],), generator=g)
    return TensorDataSource(x, y, batch_size=batch, seed=0)


def _model(run: RSSRun, depth: int) -> Any:
    import torch

    from ..networks.tit import TiT

    torch.manual_seed(0)
    return TiT(
        input_size=run.latent_size,
        in_channels=run.channels,
        patch_size=run.patch_size,
        hidden_size=run.hidden_size,
        depth=depth,
        num_heads=run.num_heads,
        num_classes=run.num_classes,
        gradient_checkpointing=run.checkpointing,
    )


def measure_here(run: RSSRun, allocator: str = "unknown") -> RSSMeasurement:
    """Measure in this process (call it in a fresh one; see :func:`measure_training_rss`)."""
    import torch

    from .memory import plan_memory

    if not _CLEAR_REFS.exists():
        raise RuntimeError("measuring the peak resident set needs Linux's /proc/self/clear_refs.")
    torch.set_num_threads(run.threads)
    k = run.gradient_accumulation_steps
    # 1. the runtime: a one-block TiT of the same shapes trained the same way, then dropped
    # (kernels, autocast, accelerate's state, and the math libraries' buffers for these
    # matrix shapes: GEMM packing buffers, oneDNN's primitive cache, as the CUDA context and
    # cuBLAS workspaces are left out of the planner on a GPU)
    warm = _trainer(run, _model(run, depth=1), _data(run, run.latent_size, run.batch))
    for _ in range(2):
        warm.train_step()
    data = _data(run, run.latent_size, run.batch)
    del warm
    gc.collect()
    # 2. the baseline
    _reset_peak()
    baseline = _status()["VmRSS"]
    # 3. the run
    model = _model(run, run.depth)
    trainer = _trainer(run, model, data)
    for _ in range(run.steps):
        trainer.train_step()
    peak = _status()["VmHWM"]
    objective = trainer.objective
    teacher = objective.uses_ema_teacher or objective.uses_frozen_teacher
    plan = plan_memory(
        model,
        run.batch // k,
        "no" if run.precision == "fp16" else run.precision,  # fp16 runs fp32 on the CPU
        checkpointing=run.checkpointing,
        ema_copies=1 + int(teacher),
        accumulating=k > 1,
        optimizer_kernel="loop",
        no_grad_pass=run.enhancement_ratio > 0 or run.consistency_ratio > 0,
    )
    parts = plan.components() | {
        "forward": plan.forward,
        "backward": plan.backward,
        "step": plan.step,
    }
    return RSSMeasurement(
        run=run,
        allocator=allocator,
        baseline=baseline,
        peak=peak,
        planned=plan.total,
        components=parts,
        peak_phase=plan.peak_phase,
    )


def measure_training_rss(
    run: RSSRun, allocator: Literal["returning", "default"] = "returning", timeout: float = 300.0
) -> RSSMeasurement:
    """Measure a run in a fresh Python process (a clean resident set).

    Args:
        run: The run.
        allocator: "returning" (glibc hands freed blocks from 64 KiB up back at once) or
            "default" (glibc as it is; it keeps freed blocks).
        timeout: Seconds before the child is stopped.

    Returns:
        :class:`RSSMeasurement`.

    Raises:
        RuntimeError: If the child fails (its last error line is in the message).
    """
    if allocator not in ("returning", "default"):
        raise ValueError(f"allocator must be 'returning' or 'default', got {allocator!r}.")
    env = dict(os.environ)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if allocator == "returning":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["OMP_NUM_THREADS"] = str(run.threads)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's ucgm_lab first
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    spec = json.dumps(dataclasses.asdict(run) | {"allocator": allocator})
    done = subprocess.run(
        [sys.executable, "-m", "ucgm_lab.training.rss", spec],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the measuring process failed: {last}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["run"] = RSSRun(**out["run"])
    return RSSMeasurement(**out)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: measure the run given as JSON, print the result as one JSON line."""
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    allocator = spec.pop("allocator", "unknown")
    result = measure_here(RSSRun(**spec), allocator)
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
