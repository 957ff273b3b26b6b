r"""The whole scale/ pipeline in one command on any machine: ``python -m scale.rehearse``.

Runs, on ``--processes`` CPU processes through ``accelerate launch`` (gloo), what a real run
does on GPUs, on generated data small enough for a 2-core CPU (about a minute there):

1. **images**: ``--classes`` x ``--per-class`` generated 24 x 24 PNGs in ImageFolder layout
   (:func:`scale.synthetic.make_image_folder`);
2. **autoencoder**: a tiny randomly initialised diffusers ``AutoencoderKL`` built from
   :data:`scale.synthetic.TINY_AUTOENCODER_CONFIG` (16 x 16 RGB <-> 4 x 4 x 4), saved with
   ``save_pretrained`` (nothing is downloaded);
3. **extract**: ``scale.extract_latents`` (center crop to 16, encode images and flips, shards,
   per-channel statistics);
4. **train**: ``scale.train`` with ``scale/configs/tiny_cpu.yaml`` for half the steps, then
5. **resume**: the same command continues from ``checkpoints/last.pt`` to ``--steps``;
6. **reference**: the run's own reference statistics: the features of the extracted latents
   decoded by the same autoencoder;
7. **sample**: ``scale.sample`` (class-balanced, sharded over the processes) and the FID of the
   samples against those statistics.

Then it prints a one-screen summary: wall and CPU time per stage, losses, FID and the files
written. **The FID uses 8 x 8 pixel features** (``evaluation.features: pixels``, the extractor
the tests use on CPUs), not InceptionV3, whose weights cannot be downloaded everywhere: the
number checks the plumbing, it is not comparable to published FIDs. Each stage's output is kept in ``<workdir>/logs/<stage>.log``.

A rehearsal that is killed takes its launched stage down with it (:func:`scale.launch.run_tied`;
SIGTERM or Ctrl-C first let the training ranks checkpoint). A rerun with the same ``--workdir``
is refused unless it says what to do with the folder: ``--resume`` continues (the generated
images and autoencoder are regenerated identically, extraction skips finished shards, training
resumes from ``run/checkpoints/last.pt``), ``--clean`` deletes the earlier rehearsal's files
and starts over (only in a folder that holds nothing but a rehearsal's files).

Examples::

    python -m scale.rehearse                      # writes runs/rehearsal_<date>_<time>/
    python -m scale.rehearse --workdir /tmp/rh --steps 400 --processes 2
    python -m scale.rehearse --workdir /tmp/rh --steps 400 --processes 2 --resume
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["RehearsalError", "RehearsalReport", "StageTime", "main", "rehearse"]

TINY_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny_cpu.yaml"
WORKDIR_ENTRIES = frozenset({"images", "vae", "latents", "run", "logs", "reference_stats.npz"})
"""What a rehearsal writes into its workdir (``--clean`` deletes these and nothing else)."""
IMAGE_SIZE = 16
"""Side of the center crop the tiny autoencoder encodes (its ``sample_size``)."""


class RehearsalError(RuntimeError):
    """A stage of the rehearsal failed (the message names it and its log file)."""


@dataclass(frozen=True)
class StageTime:
    """Wall-clock and CPU seconds of one stage (CPU: this process and its children)."""

    name: str
    wall_s: float
    cpu_s: float
    detail: str = ""


@dataclass
class RehearsalReport:
    """What the rehearsal did and measured.

    Attributes:
        workdir: The folder holding everything it wrote.
        processes: Processes of each launched stage.
        stages: Time of every stage, in order.
        losses: The training loss of every step (all-reduced over processes).
        resumed_at: Step the second training launch resumed from.
        fid: FID of the samples against the run's own reference statistics (pixel features).
        nfe: Network evaluations per sample.
        files: Main outputs (name -> path).
    """

    workdir: Path
    processes: int
    stages: list[StageTime] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    resumed_at: int | None = None
    fid: float | None = None
    nfe: int | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        """Total wall-clock seconds."""
        return sum(s.wall_s for s in self.stages)

    @property
    def cpu_s(self) -> float:
        """Total CPU seconds (all processes)."""
        return sum(s.cpu_s for s in self.stages)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(report: RehearsalReport, name: str, run: Callable[[], str | None]) -> None:
    """Run one stage, record its time; print a progress line."""
    print(f"[rehearsal] {name} ...", flush=True)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    detail = run() or ""
    stage = StageTime(name, time.perf_counter() - wall, _cpu_seconds() - cpu, detail)
    report.stages.append(stage)
    print(f"[rehearsal] {name}: {stage.wall_s:.1f} s {detail}", flush=True)


def _launch(
    report: RehearsalReport,
    stage: str,
    module: str,
    args: list[str],
    timeout: float,
    complete: Callable[[], bool] | None = None,
) -> str:
    """Launch ``module`` on the report's processes; keep its output in logs/<stage>.log.

    ``complete`` checks the stage's outputs: a launch that exits non-zero after writing complete
    outputs that check out (a rank aborting in its exit handlers) is reported, not failed.
    """
    from scale.launch import launch_on_cpu

    log = report.workdir / "logs" / f"{stage}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            result = launch_on_cpu(module, args, report.processes, timeout)
        except BaseException as exc:  # stopped or timed out: keep what the stage said
            said = getattr(exc, "launch_output", None)
            if said is not None:
                log.write_text(f"$ accelerate launch -m {module} {' '.join(args)}\n\n{said}")
            raise
    except subprocess.TimeoutExpired as exc:
        raise RehearsalError(
            f"stage '{stage}' ({module}) did not finish within {timeout:g} s (--timeout); is the "
            "machine busy?"
        ) from exc
    log.write_text(
        f"$ ACCELERATE_USE_CPU=true accelerate launch "
        f"{'--multi_gpu ' if report.processes > 1 else ''}--num_processes {report.processes} "
        f"-m {module} {' '.join(args)}\n\n" + result.stdout + result.stderr
    )
    if result.returncode != 0 and complete is not None and complete():
        print(
            f"[rehearsal] {stage}: the launch exited with status {result.returncode} after its "
            f"outputs were complete and valid; continuing (details: {log})",
            flush=True,
        )
    elif result.returncode != 0:
        lines = result.stderr.splitlines()
        # the scripts' own one-line reports first, else the last exception line
        ours = [line for line in lines if ": error: " in line]
        other = [line for line in lines if "Error" in line and "ChildFailedError" not in line]
        cause = (ours or other or ["see the log"])[-1].strip()
        raise RehearsalError(
            f"stage '{stage}' ({module}) failed with exit status {result.returncode}: {cause} "
            f"(full output: {log})"
        )
    return result.stdout


def _reference_stats(report: RehearsalReport, latents: Path, vae: Path, out: Path) -> str:
    """Pixel-feature statistics of the extracted latents decoded by the same autoencoder."""
    import torch

    from scale.builders import decode_latents, load_autoencoder
    from scale.config import AutoencoderConfig
    from scale.fid import FeatureMoments, PixelFeatures, ReferenceStats
    from ucgm_lab.training.latents import LatentIndex, read_shard

    ae = load_autoencoder(AutoencoderConfig(str(vae)))
    features = PixelFeatures()
    moments = FeatureMoments(torch.zeros(features.dim))
    index = LatentIndex.load(latents)
    with torch.no_grad():
        for shard in index.shards:
            tensors = read_shard(latents / shard.name)
            for key in ("latents", "latents_flip"):
                moments.update(features(decode_latents(ae, tensors[key].float())))
    mu, sigma = moments.stats()
    ReferenceStats(mu, sigma).save(out)
    report.files["reference statistics"] = out
    return f"({int(moments.count)} decoded latents, {features.dim}-d pixel features)"


def _latents_complete(latents: Path) -> bool:
    """Whether an extraction's index, statistics and every shard (sha256) check out."""
    from ucgm_lab.training.checkpoint import file_sha256
    from ucgm_lab.training.latents import STATS_FILE, LatentIndex

    try:
        index = LatentIndex.load(latents)
        return (latents / STATS_FILE).is_file() and all(
            file_sha256(latents / shard.name) == shard.sha256 for shard in index.shards
        )
    except Exception:  # noqa: BLE001 - anything unreadable is incomplete
        return False


def _prepare_workdir(workdir: Path, existing: str) -> None:
    """Refuse, reuse (``resume``) or empty (``clean``) a workdir that holds files."""
    if existing not in ("refuse", "resume", "clean"):
        raise ValueError(f"existing must be 'refuse', 'resume' or 'clean', got {existing!r}.")
    if workdir.exists() and not workdir.is_dir():
        raise FileExistsError(f"{workdir} is a file; give a folder as --workdir.")
    entries = sorted(p.name for p in workdir.iterdir()) if workdir.is_dir() else []
    if not entries:
        return
    foreign = [name for name in entries if name not in WORKDIR_ENTRIES]
    if existing == "refuse" or foreign:
        why = (
            f"holds files that are not a rehearsal's ({', '.join(foreign[:5])})"
            if foreign
            else "holds an earlier rehearsal"
        )
        ways = (
            "Give a new --workdir (or leave it out for a fresh dated folder)."
            if foreign
            else "Rerun with --resume to continue it, --clean to delete it and start over, "
            "or give a new --workdir."
        )
        raise FileExistsError(
            f"{workdir} exists and is not an empty folder: it {why}; the rehearsal overwrites "
            f"nothing unasked. {ways}"
        )
    if existing == "clean":
        for name in entries:
            path = workdir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def rehearse(
    workdir: Path,
    processes: int = 2,
    steps: int = 200,
    classes: int = 4,
    per_class: int = 16,
    num_samples: int = 256,
    timeout: float = 600,
    existing: Literal["refuse", "resume", "clean"] = "refuse",
) -> RehearsalReport:
    """Run the whole pipeline in ``workdir`` (see the module docstring).

    Args:
        existing: What to do when ``workdir`` holds an earlier rehearsal: "refuse", "resume"
            (continue it) or "clean" (delete its files first).

    Raises:
        RehearsalError: A stage failed (names it and its log file).
        FileExistsError: ``workdir`` is not empty and ``existing`` is "refuse", or it holds
            files that are not a rehearsal's (nothing is overwritten or deleted).
        ValueError: A setting out of range.
    """
    for name, value, low in (
        ("processes", processes, 1),
        ("steps", steps, 2),
        ("classes", classes, 2),
        ("per_class", per_class, 2),
        ("num_samples", num_samples, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    workdir = Path(workdir)
    _prepare_workdir(workdir, existing)
    workdir.mkdir(parents=True, exist_ok=True)
    report = RehearsalReport(workdir.resolve(), processes)
    images, vae, latents = workdir / "images", workdir / "vae", workdir / "latents"
    run, reference = workdir / "run", workdir / "reference_stats.npz"

    def make_images() -> str:
        from scale.synthetic import make_image_folder

        make_image_folder(images, classes, per_class)
        report.files["images"] = images
        return f"({classes} classes x {per_class} PNGs)"

    def make_vae() -> str:
        from scale.synthetic import tiny_autoencoder

        ae = tiny_autoencoder(vae)
        report.files["autoencoder"] = vae
        return f"({sum(p.numel() for p in ae.parameters()) / 1e3:.1f}k parameters)"

    def extract() -> str:
        shard = max(1, classes * per_class // (2 * processes))
        args = ["--data-dir", str(images), "--output", str(latents)]
        args += ["--image-size", str(IMAGE_SIZE), "--autoencoder", str(vae)]
        args += ["--shard-size", str(shard), "--batch-size", "16", "--num-workers", "0"]
        _launch(
            report,
            "extract",
            "scale.extract_latents",
            args,
            timeout,
            complete=lambda: _latents_complete(latents),
        )
        report.files["latents"] = latents
        return f"({len(list(latents.glob('shard-*.safetensors')))} shards)"

    every = max(1, steps // 4)
    train_args = ["--config", str(TINY_CONFIG)]
    for item in (
        f"data.path={latents}",
        f"model.num_classes={classes}",
        f"training.output_dir={run}",
        "training.global_batch_size=16",
        f"training.checkpoint_every={every}",
        f"training.log_every={every}",
        f"training.sample_every={2 * every}",
        "training.sample_grid_size=8",
        f"autoencoder.pretrained={vae}",
        f"evaluation.num_samples={num_samples}",
        "evaluation.batch_size=64",
        "evaluation.features=pixels",
    ):
        train_args += ["--override", item]

    def train_first_half() -> str:
        _launch(
            report,
            "train",
            "scale.train",
            [*train_args, f"--override=training.steps={steps // 2}"],
            timeout,
        )
        return f"(steps 1-{steps // 2}, checkpoint every {every})"

    def train_resume() -> str:
        from ucgm_lab.training.checkpoint import load_checkpoint

        out = _launch(
            report,
            "resume",
            "scale.train",
            [*train_args, f"--override=training.steps={steps}"],
            timeout,
        )
        for line in out.splitlines():
            if line.startswith("Resumed from") and " at step " in line:
                report.resumed_at = int(line.rsplit(" at step ", 1)[1].rstrip("."))
        sync = json.loads((run / "sync_check.json").read_text())
        if not sync["in_sync"]:  # pragma: no cover - scale.train raises first
            raise RehearsalError(f"ranks diverged: {run / 'sync_check.json'}")
        # the whole loss history (sync_check.json keeps only the last 100), read safely
        state = load_checkpoint(run / "checkpoints" / "last.pt", mmap=True)
        report.losses = [float(v) for v in state["losses"]]
        report.files["run"] = run
        return f"(resumed at step {report.resumed_at}, steps {report.resumed_at + 1}-{steps})"

    def sample() -> str:
        args = ["--config", str(run / "config.yaml")]
        args += ["--override", f"evaluation.reference_stats={reference}"]
        _launch(report, "sample", "scale.sample", args, timeout)
        result = json.loads((run / "eval" / "results.json").read_text())
        report.fid, report.nfe = float(result["fid"]), int(result["nfe"])
        report.files["evaluation"] = run / "eval"
        return f"({result['num_samples']} images, {result['nfe']} NFE)"

    _timed(report, "images", make_images)
    _timed(report, "autoencoder", make_vae)
    _timed(report, "extract", extract)
    _timed(report, "train", train_first_half)
    _timed(report, "resume", train_resume)
    _timed(report, "reference", lambda: _reference_stats(report, latents, vae, reference))
    _timed(report, "sample", sample)
    return report


def format_summary(report: RehearsalReport) -> str:
    """The one-screen summary: stages, losses, FID, files."""
    lines = [
        f"scale/ rehearsal on {report.processes} CPU process{'es' if report.processes > 1 else ''} "
        f"(accelerate launch{', gloo' if report.processes > 1 else ''}): "
        f"{report.wall_s:.0f} s wall, {report.cpu_s:.0f} s CPU",
        "",
        f"  {'stage':<12}{'wall s':>8}{'CPU s':>8}  detail",
    ]
    lines += [f"  {s.name:<12}{s.wall_s:>8.1f}{s.cpu_s:>8.1f}  {s.detail}" for s in report.stages]
    if report.losses:
        k = max(1, min(20, len(report.losses) // 10))
        first, last = report.losses[:k], report.losses[-k:]
        lines += [
            "",
            f"  loss: step 1 {report.losses[0]:.4f} -> step {len(report.losses)} "
            f"{report.losses[-1]:.4f} (mean of the first {k}: {sum(first) / k:.4f}, "
            f"of the last {k}: {sum(last) / k:.4f}); resumed at step {report.resumed_at}",
        ]
    if report.fid is not None:
        lines.append(
            f"  FID {report.fid:.4f} at {report.nfe} NFE against the run's own statistics "
            "(8x8 pixel features, not InceptionV3: a plumbing check, not a published-FID number)"
        )
    lines += ["", "  files:"]
    lines += [f"    {name:<24}{path}" for name, path in report.files.items()]
    for name in ("checkpoints/last.pt", "ema.safetensors", "samples", "logs", "eval/grid.png"):
        path = report.workdir / "run" / name
        if path.exists():
            lines.append(f"    {'run/' + name:<24}{path}")
    lines.append(f"    {'stage logs':<24}{report.workdir / 'logs'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--workdir",
        default=None,
        help="Empty or new folder for everything (default: runs/rehearsal_<date>_<time>).",
    )
    p.add_argument("--processes", type=int, default=2, help="Processes of each stage (gloo).")
    p.add_argument("--steps", type=int, default=200, help="Training steps (resumed at half).")
    p.add_argument("--classes", type=int, default=4, help="Classes of generated images.")
    p.add_argument("--per-class", type=int, default=16, help="Generated images per class.")
    p.add_argument("--num-samples", type=int, default=256, help="Images sampled for the FID.")
    p.add_argument(
        "--timeout", type=float, default=600, help="Seconds before a launched stage is killed."
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="Continue the rehearsal already in --workdir (finished shards and checkpoints kept).",
    )
    again.add_argument(
        "--clean",
        action="store_true",
        help="Delete the earlier rehearsal's files in --workdir and start over.",
    )
    return p.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as an exception, so that the launched stage is stopped (and checkpoints) first."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the summary and returns the exit status (2 on a failed stage)."""
    args = parse_args(argv)
    workdir = Path(args.workdir or time.strftime("runs/rehearsal_%Y%m%d_%H%M%S"))
    existing = "resume" if args.resume else "clean" if args.clean else "refuse"
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        report = rehearse(
            workdir,
            processes=args.processes,
            steps=args.steps,
            classes=args.classes,
            per_class=args.per_class,
            num_samples=args.num_samples,
            timeout=args.timeout,
            existing=existing,
        )
    except (RehearsalError, FileExistsError, ValueError) as exc:
        print(f"scale.rehearse: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as exc:
        how = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
        print(
            f"scale.rehearse: stopped by {how}; the running stage was stopped with it (training "
            f"writes a checkpoint when stopped; its output is in {workdir / 'logs'}). Continue "
            f"with --workdir {workdir} --resume, or start over with --clean.",
            file=sys.stderr,
        )
        return exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n" + format_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
