r"""Training throughput of a TiT under the shared trainer: images/s, peak memory and MFU.

Runs the library's :class:`~ucgm_lab.training.Trainer` (the same loop as scale/train.py, on one
process) on random latents and reports, after ``--warmup`` steps:

* images per second over ``--steps`` timed optimizer steps;
* peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak resident set on
  the CPU (everything the process holds, including the Python runtime);
* model FLOPs utilisation: model FLOPs per step / step time / peak FLOP/s. Model FLOPs count
  every network evaluation of the step from ``TiT.forward_flops`` (the matmuls of one forward):
  3x for each forward that is back-propagated (forward + backward) and 1x for the objective's
  extra no-grad forwards (EMA teacher, finite differences); recomputation by gradient
  checkpointing is not counted, as usual for MFU. The peak is ``--peak-tflops``, else a table
  of dense bf16 peaks of known GPUs, else the measured throughput of a large matmul on the
  device (reported as ``peak_source``);
* the memory planner's estimate (:mod:`ucgm_lab.training.memory`) beside what was measured:
  the activations autograd saves in one training forward (saved-tensor hooks, each storage
  once, parameters excluded; on every device) against the planner's activations, and the
  planner's total per GPU against ``torch.cuda.max_memory_allocated`` on CUDA (on the CPU the
  peak resident set of this process holds the Python runtime, so it is printed but not
  compared here);
* with ``--grid cpu``, also the planner against the growth of the peak resident set of real
  training steps in fresh processes over a runtime baseline (:mod:`ucgm_lab.training.rss`),
  for TiT-S/2 and a small TiT, fp32 and bf16, checkpointing off and on, with glibc handing
  freed blocks back (what the planner predicts) and with glibc as it is (it keeps freed
  blocks, a cache the planner leaves out).

The trainer's own memory check is set to "warn" here, so that ``--gradient-checkpointing``
stays what was asked for.

Usage::

    python benchmarks/scale_throughput.py --model TiT-B/2 --batch-size 32
    python benchmarks/scale_throughput.py --model TiT-XL/2 --batch-size 128 --compile \
        --json out.json
    python benchmarks/scale_throughput.py --model TiT-S/2 --batch-size 4 --cpu --steps 1
    python benchmarks/scale_throughput.py --grid gpu    # B/2 and XL/2, bf16 (scale/gpu_check.sh
                                                        # is the GPU check with deadlines)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ucgm_lab import BetaTimeDistribution, UCGMObjective  # noqa: E402
from ucgm_lab.networks.tit import TiT, tit_from_name  # noqa: E402
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig  # noqa: E402
from ucgm_lab.training.memory import plan_memory  # noqa: E402
from ucgm_lab.training.rss import RSSRun, measure_training_rss  # noqa: E402

# Dense (non-sparse) bf16 tensor-core peaks in TFLOP/s, by substring of the device name.
GPU_BF16_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 NVL": 835.5,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "A100": 312.0,
}


def measured_matmul_tflops(
    device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10
) -> float:
    """Achieved TFLOP/s of an n x n matmul on the device (a practical peak where none is known)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(args: argparse.Namespace, device: torch.device, precision: str) -> tuple[float, str]:
    if args.peak_tflops:
        return args.peak_tflops, "--peak-tflops"
    if device.type == "cuda" and precision == "bf16":
        name = torch.cuda.get_device_name(device)
        for key, value in GPU_BF16_PEAK_TFLOPS.items():
            if key in name:
                return value, f"bf16 dense peak of {name}"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return measured_matmul_tflops(device, dtype), f"measured {dtype} matmul throughput"


def run(args: argparse.Namespace) -> dict[str, object]:
    """Build, warm up, time; return the report."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = tit_from_name(
        args.model,
        input_size=args.latent_size,
        in_channels=args.channels,
        num_classes=1000,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    objective = UCGMObjective(
        "linear",
        args.consistency_ratio,
        time_distribution=BetaTimeDistribution(2.4, 2.4),
        enhancement_ratio=args.enhancement_ratio,
    )
    total = args.batch_size * (args.warmup + args.steps + 1)
    x = torch.randn(total, args.channels, args.latent_size, args.latent_size)
    y = torch.randint(0, 1000, (total,))
    data = TensorDataSource(x, y, batch_size=args.batch_size, seed=0)
    cfg = TrainerConfig(
        steps=args.warmup + args.steps,
        mixed_precision=args.precision,
        progress=False,
        compile=args.compile,
        compile_backend=args.compile_backend,
        ema_decay=0.9999,
        cpu=args.cpu,
        memory_check="warn",
    )
    trainer = Trainer(model, objective, data, cfg)
    device = trainer.accelerator.device
    precision = trainer.accelerator.mixed_precision

    counts = {"grad": 0, "no_grad": 0}

    def count(module: torch.nn.Module, inputs: tuple) -> None:
        if isinstance(module, TiT):
            counts["grad" if torch.is_grad_enabled() else "no_grad"] += int(inputs[0].shape[0])

    for _ in range(args.warmup):
        trainer.train_step()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(count)
    trainer.train_step()  # one counted step (the network calls per step do not vary)
    handle.remove()
    flops_per_step = model.forward_flops() * (3 * counts["grad"] + counts["no_grad"])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    _sync(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        memory_kind = "cuda max_memory_allocated"
    else:
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        memory_kind = "process peak RSS"
    saved = saved_activation_bytes(trainer, x[: args.batch_size], y[: args.batch_size])
    teacher = objective.uses_ema_teacher or objective.uses_frozen_teacher
    plan = plan_memory(
        model,
        args.batch_size,
        precision if precision in ("bf16", "fp16") else "no",
        checkpointing=args.gradient_checkpointing,
        ema_copies=1 + int(teacher),
        optimizer_kernel="fused" if device.type == "cuda" else "loop",
        no_grad_pass=args.enhancement_ratio > 0 or args.consistency_ratio > 0,
    )
    # what the training forward saves: activations and autocast's weight copies (with
    # checkpointing only the block inputs; the recomputed block comes in the backward pass)
    planned_saved = plan.activations + plan.autocast_weights
    peak_tflops, peak_source = _peak(args, device, precision)
    achieved = flops_per_step * args.steps / seconds / 1e12
    return {
        "model": args.model,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "latent": [args.channels, args.latent_size, args.latent_size],
        "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "mixed_precision": precision,
        "compile": args.compile,
        "gradient_checkpointing": args.gradient_checkpointing,
        "consistency_ratio": args.consistency_ratio,
        "enhancement_ratio": args.enhancement_ratio,
        "steps_timed": args.steps,
        "seconds_per_step": seconds / args.steps,
        "images_per_second": args.batch_size * args.steps / seconds,
        "peak_memory_gib": peak_gib,
        "peak_memory_kind": memory_kind,
        "planner_total_gib": plan.total / 2**30,
        "planner_total_over_peak": plan.total / 2**30 / peak_gib if device.type == "cuda" else None,
        "planner_saved_activations_gib": planned_saved / 2**30,
        "measured_saved_activations_gib": saved / 2**30,
        "planner_over_measured_saved": planned_saved / saved,
        "planner_summary": plan.summary(),
        "forward_gflops_per_image": model.forward_flops() / 1e9,
        "network_images_per_step": dict(counts),
        "model_tflops_per_step": flops_per_step / 1e12,
        "achieved_tflops": achieved,
        "peak_tflops": peak_tflops,
        "peak_source": peak_source,
        "mfu": achieved / peak_tflops,
    }


def saved_activation_bytes(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of one training forward (objective included).

    Every distinct storage that a saved-tensor hook sees counts once; the parameters do not
    (they are state). No step is taken; the gradients are discarded.
    """
    acc = trainer.accelerator
    params = {p.untyped_storage().data_ptr() for p in trainer.model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    trainer.model.train()
    g = torch.Generator(device=acc.device).manual_seed(0)
    with acc.autocast(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = trainer.objective(
            trainer.model, x.to(acc.device), y.to(acc.device), generator=g, update_teachers=False
        )
    del out
    return sum(seen.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="TiT-B/2", help="TiT-<tiny|S|B|L|XL>/<1|2|4>")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--latent-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--steps", type=int, default=5, help="Timed steps.")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--consistency-ratio", type=float, default=0.0, help="lambda")
    p.add_argument("--enhancement-ratio", type=float, default=0.44, help="zeta")
    p.add_argument("--precision", default="auto", choices=["auto", "no", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="Compile every TiT block.")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend.")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--cpu", action="store_true", help="Force the CPU.")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads).")
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="Peak FLOP/s of the device for MFU."
    )
    p.add_argument("--json", default=None, help="Also write the report to this file.")
    p.add_argument(
        "--no-rss", action="store_true", help="With --grid cpu: skip the peak-RSS check."
    )
    p.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default=None,
        help="Run a grid of models, batches, compile and checkpointing settings, each in a "
        "fresh process, and print one table ('gpu': needs CUDA, not timed yet, "
        "scale/gpu_check.sh is the check with deadlines; 'cpu': a tiny smoke run).",
    )
    return p.parse_args(argv)


GRIDS: dict[str, list[list[str]]] = {
    # model, images per GPU, then flags; bf16 on the GPU
    "gpu": [
        ["--model", "TiT-B/2", "--batch-size", "128"],
        ["--model", "TiT-B/2", "--batch-size", "128", "--compile"],
        ["--model", "TiT-B/2", "--batch-size", "256", "--compile"],
        ["--model", "TiT-XL/2", "--batch-size", "64", "--compile"],
        ["--model", "TiT-XL/2", "--batch-size", "128"],
        ["--model", "TiT-XL/2", "--batch-size", "128", "--compile"],
        ["--model", "TiT-XL/2", "--batch-size", "128", "--compile", "--gradient-checkpointing"],
        ["--model", "TiT-XL/2", "--batch-size", "256", "--compile", "--gradient-checkpointing"],
    ],
    "cpu": [
        ["--model", "TiT-tiny/1", "--latent-size", "4", "--batch-size", "4", "--cpu"],
        ["--model", "TiT-tiny/1", "--latent-size", "4", "--batch-size", "4", "--cpu"]
        + ["--gradient-checkpointing"],
    ],
}
"""The --grid settings (each row is run as ``scale_throughput.py <row> --json ...``)."""


def run_grid(args: argparse.Namespace, timeout: float = 900.0) -> list[dict[str, object]]:
    """Run every row of a grid in its own process (fresh compile caches and peak counters).

    A row that fails (e.g. out of memory) is reported with its error instead of numbers.
    """
    import subprocess
    import tempfile

    common = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.grid == "gpu":
        common += ["--precision", "bf16"]
    if args.peak_tflops:
        common += ["--peak-tflops", str(args.peak_tflops)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, row in enumerate(GRIDS[args.grid]):
            out = Path(tmp) / f"{i}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *row, *common, "--json", str(out)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
                error = (
                    None
                    if done.returncode == 0
                    else (done.stderr.strip().splitlines() or ["?"])[-1]
                )
            except subprocess.TimeoutExpired:
                error = f"timed out after {timeout:.0f} s"
            if error is None:
                reports.append(json.loads(out.read_text()))
            else:
                reports.append({"row": " ".join(row), "error": error[:200]})
    return reports


def grid_table(reports: list[dict[str, object]]) -> str:
    """A markdown table of grid reports."""
    lines = [
        "| model | images/GPU | compile | checkpointing | images/s | peak GiB | planner GiB "
        "| planner / peak | planner / saved | MFU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        if "error" in r:
            lines.append(f"| {r['row']} | | | | failed: {r['error']} | | | | | |")
            continue
        ratio = r["planner_total_over_peak"]
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {'on' if r['compile'] else 'off'} | "
            f"{'on' if r['gradient_checkpointing'] else 'off'} | {r['images_per_second']:.1f} | "
            f"{r['peak_memory_gib']:.2f} ({r['peak_memory_kind']}) | {r['planner_total_gib']:.2f} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {r['planner_over_measured_saved']:.3f} | "
            f"{r['mfu']:.3f} |"
        )
    return "\n".join(lines)


RSS_ROWS: list[tuple[str, dict[str, object]]] = [
    ("TiT-S/2", {}),
    ("TiT-S/2", {"precision": "bf16"}),
    ("TiT-S/2", {"checkpointing": True}),
    ("TiT-S/2", {"precision": "bf16", "checkpointing": True}),
    (
        "small (D 256, 4 blocks, 8 images)",
        {"hidden_size": 256, "depth": 4, "num_heads": 4, "batch": 8},
    ),
    (
        "small (D 256, 4 blocks, 8 images)",
        {"hidden_size": 256, "depth": 4, "num_heads": 4, "batch": 8, "precision": "bf16"},
    ),
    (
        "small, k = 2 micro-batches",
        {
            "hidden_size": 256,
            "depth": 4,
            "num_heads": 4,
            "batch": 8,
            "gradient_accumulation_steps": 2,
        },
    ),
    (
        "tiny (D 128, 2 blocks, 4 images)",
        {"hidden_size": 128, "depth": 2, "num_heads": 2, "batch": 4},
    ),
]
"""Runs of the CPU peak-RSS check (TiT-S/2: 4 images of 32 x 32 x 4 latents)."""


def rss_table(threads: int = 1) -> str:
    """The planner against the measured peak-RSS growth (fresh processes; both allocators)."""
    lines = [
        "| model | precision | checkpointing | allocator | measured MiB | planner MiB "
        "| planner / measured | planner's peak phase |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, kwargs in RSS_ROWS:
        run = RSSRun(**kwargs, threads=threads)  # type: ignore[arg-type]
        for allocator in ("returning", "default"):
            try:
                m = measure_training_rss(run, allocator)  # type: ignore[arg-type]
            except (RuntimeError, OSError) as err:
                lines.append(f"| {name} | {run.precision} | | {allocator} | failed: {err} | | | |")
                continue
            lines.append(
                f"| {name} | {run.precision} | {'on' if run.checkpointing else 'off'} | "
                f"{allocator} | {m.measured / 2**20:.1f} | {m.planned / 2**20:.1f} | "
                f"{m.ratio:.3f} | {m.peak_phase} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.grid == "gpu" and not torch.cuda.is_available():
        print("scale_throughput: --grid gpu needs CUDA (none found); on a GPU prefer "
              "bash scale/gpu_check.sh, which writes each row as it ends.", file=sys.stderr)
        return 2
    if args.grid:
        reports = run_grid(args)
        print(grid_table(reports))
        if args.grid == "cpu" and not args.no_rss:
            print("\nPeak resident set growth over the runtime baseline (CPU):")
            print(rss_table(args.threads or 1))
        if args.json:
            Path(args.json).write_text(json.dumps(reports, indent=2))
        return 0
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
