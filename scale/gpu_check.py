r"""The first-GPU-day check: ``bash scale/gpu_check.sh [--out DIR]`` (or ``python -m scale.gpu_check``).

Refuses within seconds when CUDA is absent (one line on stderr, exit status 2). On a GPU it
runs a fixed list of rows, each in its own process with a time limit (``--row-timeout``,
90 s, compilation included), and writes each row's JSON to ``--out`` as soon as the row
ends, so whatever was done comes back even if the session is cut short:

* ``00_memory_decision.json``: the memory planner's decision for TiT-XL/2 at 64, 128, 256
  images per GPU on this device (fits, checkpointing every k-th block, or does not fit), with
  its usable-memory rule (:func:`ucgm_lab.training.memory.usable_bytes`);
* ``01_nan_check.json``: one bf16 training step of a TiT with inductor-compiled blocks
  against eager (:mod:`ucgm_lab.training.compile_check`): finite, and the largest relative
  gradient difference;
* ``02_...`` to ``06_...``: ``benchmarks/scale_throughput.py`` rows (TiT-B/2 and TiT-XL/2,
  bf16, eager and compiled, checkpointing): images/s, MFU, peak memory against the planner;
* ``07_train_20.json`` and ``08_resume_30.json``: ``scale.train`` on synthetic latents, 20
  steps with a checkpoint, then resumed to 30.

Every row's JSON holds ``status`` ("ok", "failed", "timed out" or "skipped"), its command,
seconds and (when it ran) its report. ``summary.json`` and ``summary.md`` are rewritten after
every row. The whole check has a global deadline: no row starts after ``--budget`` seconds
(480: 8 minutes), and a running row is stopped at ``--hard-stop`` (540: 9 minutes); rows not
started are written as "skipped". ``--allow-cpu --tiny`` runs tiny rows on the CPU (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "scale_throughput.py"

__all__ = ["Row", "gpu_rows", "main", "run_check", "tiny_rows"]


@dataclass(frozen=True)
class Row:
    """One row of the check: a command run in its own process.

    Attributes:
        name: File stem of the row's JSON (``NN_name``).
        argv: Arguments after ``python`` (``{json}`` is replaced by the row's report path,
            ``{out}`` by the output folder).
        report_json: Whether the command writes a JSON report to ``{json}``.
    """

    name: str
    argv: tuple[str, ...]
    report_json: bool = True
    env: dict[str, str] = field(default_factory=dict)


def _bench(name: str, *args: str, steps: int = 5, warmup: int = 2) -> Row:
    return Row(
        name,
        (str(BENCH), *args, "--steps", str(steps), "--warmup", str(warmup), "--json", "{json}"),
    )


def _train_rows(model: str, shape: str, batch: int, precision: str, cpu: bool) -> list[Row]:
    common = (
        "-m", "scale.gpu_check", "--train-row", "--out", "{out}", "--json", "{json}",
        "--train-model", model, "--train-shape", shape, "--train-batch", str(batch),
        "--train-precision", precision,
    ) + (("--allow-cpu",) if cpu else ())
    return [
        Row("train_20", (*common, "--train-steps", "20")),
        Row("resume_30", (*common, "--train-steps", "30")),
    ]


def gpu_rows() -> list[Row]:
    """The rows on one GPU (bf16), each meant to end well within 90 s on an H100."""
    bf16 = ("--precision", "bf16")
    return [
        Row("nan_check", ("-m", "scale.gpu_check", "--nan-row", "--json", "{json}")),
        _bench("bench_B2_128_eager", "--model", "TiT-B/2", "--batch-size", "128", *bf16),
        _bench("bench_B2_128_compile", "--model", "TiT-B/2", "--batch-size", "128", "--compile",
               *bf16),
        _bench("bench_XL2_64_eager", "--model", "TiT-XL/2", "--batch-size", "64", *bf16),
        _bench("bench_XL2_128_compile", "--model", "TiT-XL/2", "--batch-size", "128",
               "--compile", *bf16),
        _bench("bench_XL2_128_ckpt", "--model", "TiT-XL/2", "--batch-size", "128",
               "--gradient-checkpointing", *bf16),
        *_train_rows("TiT-S/2", "4,32,32", 64, "bf16", cpu=False),
    ]


def tiny_rows() -> list[Row]:
    """Tiny CPU rows with the same structure (tests; ``--allow-cpu --tiny``)."""
    tiny = ("--model", "TiT-tiny/1", "--latent-size", "4", "--batch-size", "4", "--cpu")
    return [
        Row("nan_check", ("-m", "scale.gpu_check", "--nan-row", "--allow-cpu", "--tiny",
                          "--json", "{json}")),
        _bench("bench_tiny", *tiny, steps=1, warmup=1),
        *_train_rows("TiT-tiny/1", "4,4,4", 8, "no", cpu=True),
    ]


def _refuse_without_cuda(allow_cpu: bool) -> str | None:
    import torch

    if torch.cuda.is_available() or allow_cpu:
        return None
    return (
        "scale/gpu_check: no CUDA device (torch.cuda.is_available() is False, torch "
        f"{torch.__version__}); this check runs on a GPU only (--allow-cpu --tiny is for tests)."
    )


def memory_decision(device_bytes: int) -> dict[str, Any]:
    """The planner's choice for TiT-XL/2 (bf16, 256 x 256 images: 32 x 32 x 4 latents).

    What the trainer's memory check (``memory_check="auto"``) would do at 64, 128 and 256
    images per GPU on one process with fused AdamW, an EMA and the enhanced target's teacher:
    the least checkpointing (every k-th block) that fits, by the run-time usable-memory rule.
    """
    import torch

    from ucgm_lab.networks.tit import tit_from_name
    from ucgm_lab.training.memory import (
        TiTShape,
        choose_checkpointing,
        plan_memory,
        usable_bytes,
    )

    with torch.device("meta"):
        shape = TiTShape.of(tit_from_name("TiT-XL/2", input_size=32, in_channels=4,
                                          num_classes=1000))
    room = usable_bytes(device_bytes)
    rows = []
    for batch in (64, 128, 256):
        off = plan_memory(shape, batch, "bf16", checkpointing=False)
        on = plan_memory(shape, batch, "bf16", checkpointing=True)
        every, chosen = choose_checkpointing(shape, batch, device_bytes, precision="bf16")
        decision = ("does not fit" if every is None else "no checkpointing" if every == 0
                    else f"checkpointing every {every}-th block" if every > 1
                    else "checkpointing every block")
        rows.append({"batch_per_gpu": batch, "decision": decision, "checkpoint_every": every,
                     "planner_gib_chosen": chosen.total / 2**30,
                     "planner_gib_off": off.total / 2**30, "planner_gib_on": on.total / 2**30})
    return {"model": "TiT-XL/2", "device_gib": device_bytes / 2**30,
            "usable_gib": room / 2**30, "rows": rows}


def _nan_row(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ucgm_lab import BetaTimeDistribution, UCGMObjective
    from ucgm_lab.networks.tit import tit_from_name
    from ucgm_lab.training.compile_check import compare_compiled_gradients

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    torch.manual_seed(0)
    if args.tiny:
        name, size, batch, backend = "TiT-tiny/1", 4, 4, "aot_eager"
    else:
        name, size, batch, backend = "TiT-B/2", 32, 16, "inductor"
    model = tit_from_name(name, input_size=size, in_channels=4, num_classes=1000).to(device)
    with torch.no_grad():  # random gates: gradients through every block at the first step
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    x = torch.randn(batch, 4, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)

    def objective() -> UCGMObjective:
        return UCGMObjective(
            "linear", 0.0, time_distribution=BetaTimeDistribution(2.4, 2.4),
            enhancement_ratio=0.44,
        )

    result = compare_compiled_gradients(model, objective, x, y, dtype=torch.bfloat16,
                                        backend=backend)
    return {"model": name, "batch": batch, "backend": backend, "device": str(device),
            **result.as_dict()}


def _train_row(args: argparse.Namespace) -> dict[str, Any]:
    """``scale.train`` on synthetic latents (the folder is made by the first train row)."""
    from scale.synthetic import make_latent_folder

    out = Path(args.out)
    latents = out / "train_latents"
    shape = tuple(int(v) for v in args.train_shape.split(","))
    if not (latents / "index.json").exists():
        make_latent_folder(latents, n=4 * args.train_batch, shape=shape, num_classes=4)
    overrides = [
        f"data.path={latents}", f"model.name={args.train_model}", "model.num_classes=4",
        f"training.output_dir={out / 'train_run'}", f"training.steps={args.train_steps}",
        f"training.global_batch_size={args.train_batch}", "training.checkpoint_every=10",
        f"training.mixed_precision='{args.train_precision}'", "training.sample_every=0",
        "training.log_with=none", "training.compile=false",  # compile: the bench rows
    ]
    cmd = [sys.executable, "-m", "scale.train", "--config", str(ROOT / "scale/configs/tiny_cpu.yaml")]
    for o in overrides:
        cmd += ["--override", o]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"scale.train exited {done.returncode}: {tail}")
    from ucgm_lab.training.checkpoint import load_checkpoint

    state = load_checkpoint(out / "train_run" / "checkpoints" / "last.pt", mmap=True)
    resumed = [ln for ln in done.stdout.splitlines() if ln.startswith("Resumed from")]
    losses = [float(v) for v in state["losses"]]
    return {"steps": int(state["step"]), "resumed": resumed[0] if resumed else None,
            "last_losses": losses[-5:], "all_finite": all(v == v for v in losses)}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _run_row(row: Row, path: Path, out: Path, timeout: float) -> dict[str, Any]:
    report = path.with_suffix(".report.json")
    argv = [a.replace("{json}", str(report)).replace("{out}", str(out)) for a in row.argv]
    cmd = [sys.executable, *argv]
    start = time.monotonic()
    # own process group: a timed-out row is stopped with everything it started
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**_env(), **row.env}, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=max(timeout, 0.1))
        status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        status = "timed out"
    entry: dict[str, Any] = {"row": row.name, "status": status, "command": " ".join(cmd),
                             "seconds": round(time.monotonic() - start, 1),
                             "limit_s": round(timeout, 1)}
    if status == "ok" and report.exists():
        entry["report"] = json.loads(report.read_text())
        report.unlink()
    elif status != "ok":
        entry["error"] = (stderr.strip().splitlines() or [f"timed out after {timeout:.0f} s"])[-1][:300]
        entry["stderr_tail"] = stderr[-2000:]
    return entry


def _summary_md(entries: list[dict[str, Any]]) -> str:
    lines = ["| row | status | s | images/s | MFU | peak GiB | planner GiB | note |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        r = e.get("report", {})
        note = e.get("error", "")
        if e["row"] == "nan_check" and r:
            note = f"finite {r['finite']}, max rel. grad diff {r['max_relative_error']:.3g}"
        if e["row"] == "memory_decision" and r:
            note = "; ".join(f"{x['batch_per_gpu']}: {x['decision']}" for x in r["rows"])
        if e["row"].startswith(("train", "resume")) and r:
            note = f"step {r['steps']}, finite {r['all_finite']}, {r['resumed'] or 'fresh'}"

        def num(key: str, fmt: str, r: dict[str, Any] = r) -> str:
            v = r.get(key)
            return "" if v is None else format(v, fmt)

        lines.append(
            f"| {e['row']} | {e['status']} | {e.get('seconds', '')} | "
            f"{num('images_per_second', '.1f')} | {num('mfu', '.3f')} | "
            f"{num('peak_memory_gib', '.2f')} | {num('planner_total_gib', '.2f')} | {note} |"
        )
    return "\n".join(lines) + "\n"


def run_check(rows: list[Row], out: Path, *, budget: float, hard_stop: float,
              row_timeout: float, device_bytes: int | None) -> list[dict[str, Any]]:
    """Run the rows in order under the deadlines; write each row's JSON as it ends."""
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []

    def record(i: int, entry: dict[str, Any]) -> None:
        _write(out / f"{i:02d}_{entry['row']}.json", entry)
        entries.append(entry)
        _write(out / "summary.json", {"elapsed_s": round(time.monotonic() - start, 1),
                                      "rows": entries})
        (out / "summary.md").write_text(_summary_md(entries))
        print(f"[{time.monotonic() - start:6.1f} s] {entry['row']}: {entry['status']}"
              + (f" ({entry['error']})" if "error" in entry else ""), flush=True)

    if device_bytes is not None:
        record(0, {"row": "memory_decision", "status": "ok", "seconds": 0.0,
                   "report": memory_decision(device_bytes)})
    for i, row in enumerate(rows, start=1):
        elapsed = time.monotonic() - start
        left = hard_stop - elapsed
        if elapsed >= budget or left <= 1:
            record(i, {"row": row.name, "status": "skipped",
                       "error": f"not started: {elapsed:.0f} s elapsed of the {budget:.0f} s "
                                f"budget (hard stop {hard_stop:.0f} s)"})
            continue
        record(i, _run_row(row, out / f"{i:02d}_{row.name}.json", out, min(row_timeout, left)))
    return entries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None,
                   help="Output folder (default runs/gpu_check_<UTC time>); kept, never temporary.")
    p.add_argument("--budget", type=float, default=480.0, help="No row starts after this (s).")
    p.add_argument("--hard-stop", type=float, default=540.0, help="Running rows stop here (s).")
    p.add_argument("--row-timeout", type=float, default=90.0, help="Limit of one row (s).")
    p.add_argument("--allow-cpu", action="store_true", help="Run without CUDA (tests only).")
    p.add_argument("--tiny", action="store_true", help="Tiny rows (with --allow-cpu, tests).")
    p.add_argument("--only", default=None, help="Comma-separated row names to run (others skipped).")
    p.add_argument("--nan-row", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--train-row", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--train-model", default="TiT-S/2", help=argparse.SUPPRESS)
    p.add_argument("--train-shape", default="4,32,32", help=argparse.SUPPRESS)
    p.add_argument("--train-batch", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--train-steps", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--train-precision", default="bf16", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2: no CUDA; 1: a row did not end "ok")."""
    args = parse_args(argv)
    refusal = _refuse_without_cuda(args.allow_cpu)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if args.nan_row or args.train_row:
        report = _nan_row(args) if args.nan_row else _train_row(args)
        Path(args.json).write_text(json.dumps(report, indent=2))
        return 0 if report.get("finite", report.get("all_finite", True)) else 1
    import torch

    out = Path(args.out or ROOT / "runs" / time.strftime("gpu_check_%Y%m%d_%H%M%S", time.gmtime()))
    rows = tiny_rows() if args.tiny else gpu_rows()
    if args.only:
        keep = set(args.only.split(","))
        rows = [r for r in rows if r.name in keep]
    device_bytes = (torch.cuda.get_device_properties(0).total_memory
                    if torch.cuda.is_available() else (80 * 10**9 if args.tiny else None))
    print(f"scale/gpu_check: {len(rows)} rows, JSON per row in {out}", flush=True)
    entries = run_check(rows, out, budget=args.budget, hard_stop=args.hard_stop,
                        row_timeout=args.row_timeout, device_bytes=device_bytes)
    print((out / "summary.md").read_text())
    return 0 if all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
