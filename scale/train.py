r"""Train a TiT with UCGM-T on sharded latents: ``accelerate launch -m scale.train --config C``.

Everything numerical is the library's: :class:`ucgm_lab.UCGMObjective` (the loss),
:class:`ucgm_lab.training.Trainer` (accelerate, bf16 autocast on GPUs, TF32, torch.compile,
EMA, atomic checkpoints with per-rank RNG and data positions, exact resume, tracker logging),
:func:`ucgm_lab.sample` (sample grids) and
:class:`ucgm_lab.training.latents.LatentShardDataSource` (rank-sharded, resumable data).
This script only wires them from a YAML config (scale/config.py) and adds:

* the run folder: ``config.yaml`` (resolved config), ``latents/index.json`` and
  ``latents/stats.safetensors`` (copies, for sampling), ``checkpoints/last.pt``,
  ``samples/step_XXXXXXX.png``, ``logs/`` (TensorBoard), ``ema.safetensors`` (final EMA
  weights) and ``sync_check.json`` (per-rank parameter digests and losses);
* automatic resume from ``checkpoints/last.pt`` (``--resume auto``), refusing changes to the
  data, model, objective or optimizer sections of an existing run;
* few-step training from a multi-step checkpoint (``training.init_from``);
* preemption: SIGTERM (or Ctrl-C) stops every rank after the same step with a checkpoint of it
  (:mod:`ucgm_lab.training.signals`); the script says so and exits with status 128 + the
  signal number (143 for SIGTERM) without the final ``ema.safetensors``; rerunning the same
  command resumes.

Examples::

    accelerate launch --num_processes 8 --mixed_precision bf16 -m scale.train \
        --config scale/configs/in1k256_sdvae_xl2_multistep.yaml
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 -m scale.train \
        --config scale/configs/tiny_cpu.yaml --override data.path=/tmp/latents
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (`accelerate launch scale/train.py`), not with -m:
    # this checkout's packages come first, not an installed `scale` (nor scale/ as a top level)
    _HERE = Path(__file__).resolve()
    sys.path[:] = [str(_HERE.parents[1])] + [
        p for p in sys.path if Path(p or ".").resolve() != _HERE.parent
    ]

import torch
from torch import nn

from scale.builders import (
    build_model,
    build_objective,
    check_distributed_type,
    check_sampling,
    check_world_size,
    decode_latents,
    generate_latents,
    load_autoencoder,
    load_model_weights,
    use_cpu,
)
from scale.config import ConfigError, RunConfig, config_to_dict, dump_config, load_config
from scale.errors import report_user_errors
from scale.images import latent_preview, make_grid, save_png
from ucgm_lab.training import Trainer, TrainerConfig, TrainResult, save_weights
from ucgm_lab.training.checkpoint import atomic_write, check_writable_dir
from ucgm_lab.training.collectives import gather_objects
from ucgm_lab.training.latents import (
    INDEX_FILE,
    STATS_FILE,
    LatentIndex,
    LatentNormalizer,
    LatentShardDataSource,
)
from ucgm_lab.training.trainer import resolve_precision

__all__ = ["RESUME_MUTABLE_KEYS", "RUN_IMMUTABLE_SECTIONS", "main", "parameter_digest", "train"]

RUN_IMMUTABLE_SECTIONS = ("data", "model", "objective", "optimizer")
"""Sections that must not change when a run resumes (plus training.global_batch_size, seed and
gradient_accumulation_steps). The number of processes may change (elastic resume)."""

RESUME_MUTABLE_KEYS = frozenset(
    {"data.path", "data.preload", "data.verify_checksums", "model.gradient_checkpointing"}
)
"""Keys of those sections that may change on resume: where the latents live, how they are
read, and recomputation (none of them changes what is computed)."""


def parameter_digest(model: nn.Module) -> str:
    """sha256 over the names and exact bytes of all parameters (equal iff bitwise equal)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------- run folder
def _check_resume_compatible(run_dir: Path, cfg: RunConfig) -> None:
    """Raise if an existing run's config differs in what a resume must keep."""
    import yaml

    old_path = run_dir / "config.yaml"
    if not old_path.is_file():
        return
    old, new = yaml.safe_load(old_path.read_text()), config_to_dict(cfg)
    changed = [
        f"{section}.{key}"
        for section in RUN_IMMUTABLE_SECTIONS
        for key in sorted(set(old.get(section, {})) | set(new[section]))
        if old.get(section, {}).get(key) != new[section].get(key)
        and f"{section}.{key}" not in RESUME_MUTABLE_KEYS
    ]
    defaults = {"gradient_accumulation_steps": 1}  # runs from before the key existed
    changed += [
        f"training.{key}"
        for key in ("global_batch_size", "seed", "gradient_accumulation_steps")
        if old.get("training", {}).get(key, defaults.get(key)) != new["training"][key]
    ]
    if changed:
        raise ConfigError(
            f"{run_dir} holds a run whose config differs in {changed} ({old_path}); exact resume "
            "needs the same settings. Use a new training.output_dir, or restore those values."
        )


def _prepare_run_dir(run_dir: Path, cfg: RunConfig, is_main: bool) -> None:
    """Write the resolved config and copies of the latent index and statistics (main process)."""
    if not is_main:
        return
    text = dump_config(cfg)
    atomic_write(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(text))
    latents = Path(cfg.data.path)
    for name in (INDEX_FILE, STATS_FILE):
        if (latents / name).is_file():
            atomic_write(
                run_dir / "latents" / name, lambda tmp, n=name: shutil.copyfile(latents / n, tmp)
            )


def _find_resume(run_dir: Path, resume: str) -> Path | None:
    last = run_dir / "checkpoints" / "last.pt"
    if resume == "never":
        if last.exists():
            raise FileExistsError(
                f"{last} exists and --resume never was given: refusing to overwrite a run. Use "
                "--resume auto to continue it, or a new training.output_dir."
            )
        return None
    if resume == "auto":
        return last if last.exists() else None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"--resume {resume}: no such checkpoint file.")
    return path


# ---------------------------------------------------------------------- callbacks
class SampleGrid:
    """Callback: a grid of EMA samples on the main process, saved as PNG and logged.

    The noise and labels are fixed for the run (seeded by sampling.seed), so grids of
    different steps are comparable. Sampling uses its own generators and leaves the training
    RNG states untouched (exact resume is unaffected). The network samples in
    ``evaluation.precision`` as scale/sample.py does (fp32 by default, TF32 matmuls on CUDA;
    bf16 autocast on request), not under the training's mixed precision.
    """

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        normalizer: LatentNormalizer,
        latent_shape: tuple[int, ...],
        autoencoder: nn.Module | None = None,
    ):
        self.cfg, self.run_dir, self.normalizer = cfg, run_dir, normalizer
        n, k = cfg.training.sample_grid_size, cfg.model.num_classes
        g = torch.Generator().manual_seed(cfg.sampling.seed)
        self.noise = torch.randn((n, *latent_shape), generator=g)
        self.labels = (torch.arange(n) * max(1, k // n)) % k
        self._ae: nn.Module | None = autoencoder

    def __call__(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        """Write ``samples/step_XXXXXXX.png`` (main process only)."""
        if not trainer.is_main_process:
            return None
        acc = trainer.accelerator
        device = acc.device
        gen = torch.Generator(device=device).manual_seed(self.cfg.sampling.seed)
        # fork_rng: nothing here (e.g. building the autoencoder) may move the training RNGs.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            bf16 = self.cfg.evaluation.precision == "bf16"
            with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                latents, _ = generate_latents(
                    trainer.ema_model,
                    self.labels.to(device),
                    self.noise.to(device),
                    self.cfg.objective.transport,
                    self.cfg.sampling,
                    generator=gen,
                )
            if self.cfg.autoencoder is not None:
                if self._ae is None:
                    self._ae = load_autoencoder(self.cfg.autoencoder, device)
                images = decode_latents(self._ae, self.normalizer.denormalize(latents)).cpu()
            else:
                images = latent_preview(latents).cpu()
        grid = make_grid(images)
        save_png(grid, self.run_dir / "samples" / f"step_{step:07d}.png")
        if self.cfg.training.log_with == "tensorboard":
            tracker = acc.get_tracker("tensorboard", unwrap=True)
            tracker.add_image("samples", grid, step)
        return None


def log_memory(trainer: Trainer, step: int, logs: dict[str, float]) -> dict[str, float] | None:
    """Callback: log peak host memory (and accelerator memory reserved) with the step's logs."""
    values = {"host_max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if trainer.accelerator.device.type == "cuda":
        values["max_memory_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    if trainer.config.log_with is not None:
        trainer.accelerator.log(values, step=step)
    return None


# ---------------------------------------------------------------------- training
def _rank_sync_check(trainer: Trainer, run_dir: Path, last: int = 100) -> dict[str, Any]:
    """Write every rank's parameter digests and last losses to sync_check.json; raise if unequal."""
    acc = trainer.accelerator
    mine = {
        "rank": acc.process_index,
        "params_sha256": parameter_digest(trainer.unwrapped_model),
        "ema_sha256": parameter_digest(trainer.ema_model),
        "losses": trainer.losses[-last:],
    }
    ranks = gather_objects(mine, acc.device)
    report = {
        "step": trainer.step,
        "num_processes": acc.num_processes,
        "in_sync": len({r["params_sha256"] for r in ranks}) == 1
        and len({r["ema_sha256"] for r in ranks}) == 1
        and all(r["losses"] == ranks[0]["losses"] for r in ranks),
        "ranks": ranks,
    }
    if acc.is_main_process:
        text = json.dumps(report, indent=2)
        atomic_write(run_dir / "sync_check.json", lambda tmp: Path(tmp).write_text(text))
    acc.wait_for_everyone()
    if not report["in_sync"]:
        raise RuntimeError(
            f"Ranks diverged (parameters or losses differ); see {run_dir / 'sync_check.json'}."
        )
    return report


def train(cfg: RunConfig, resume: str = "auto", source: str = "config") -> TrainResult:
    """Run (or resume) training from a validated config; returns the trainer's result.

    Everything that can be checked is checked before the first step: the run folder is
    writable, the sampling settings work (a dry run of the sampler), the autoencoder loads
    when sample grids need it, the checkpoint to resume fits the model and the objective. A
    fresh run that fails before its first checkpoint removes the files it wrote.
    """
    run_dir = Path(cfg.training.output_dir)
    created = _snapshot_run_dir(run_dir)
    try:
        return _train(cfg, resume, source)
    except BaseException:
        _remove_failed_start(run_dir, created)
        raise


_STARTUP_FILES = ("config.yaml", f"latents/{INDEX_FILE}", f"latents/{STATS_FILE}")
_STARTUP_DIRS = ("latents", "checkpoints", "samples", "logs", ".")


def _snapshot_run_dir(run_dir: Path) -> set[str]:
    """The start-up files and folders of a run that do not exist yet (so a failure may remove them)."""
    if (run_dir / "checkpoints" / "last.pt").exists():
        return set()
    return {p for p in (*_STARTUP_FILES, *_STARTUP_DIRS) if not (run_dir / p).exists()}


def _remove_failed_start(run_dir: Path, created: set[str]) -> None:
    """Delete what a fresh run created if it stopped before writing a checkpoint."""
    if not created or (run_dir / "checkpoints" / "last.pt").exists():
        return
    try:
        for name in _STARTUP_FILES:
            if name in created:
                (run_dir / name).unlink(missing_ok=True)
        for name in _STARTUP_DIRS:
            folder = run_dir / name
            if name in created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    except OSError:  # another process removed it first, or it is not ours to remove
        pass


def _train(cfg: RunConfig, resume: str, source: str) -> TrainResult:
    from accelerate import Accelerator

    t = cfg.training
    run_dir = Path(t.output_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{source}:training.output_dir: {run_dir} is a file; give a folder")
    check_sampling(cfg.sampling, cfg.objective.transport, cfg.model.num_classes, source)
    try:  # the objective's own checks, before anything is written
        build_objective(cfg.objective)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}:objective: {exc}") from exc
    log_with = None if t.log_with == "none" else t.log_with
    check_distributed_type()  # before accelerate's own errors for FSDP/DeepSpeed
    cpu = use_cpu()
    acc = Accelerator(
        cpu=cpu,
        mixed_precision=resolve_precision(t.mixed_precision, cpu=cpu),
        log_with=log_with,
        project_dir=str(run_dir / "logs"),
        gradient_accumulation_steps=t.gradient_accumulation_steps,
    )
    check_world_size(acc.num_processes)
    check_distributed_type(acc.distributed_type)
    if acc.is_main_process:
        check_writable_dir(run_dir, f"run folder ({source}:training.output_dir)")
    resume_path = _find_resume(run_dir, resume)
    if resume_path is not None:
        _check_resume_compatible(run_dir, cfg)
    index = LatentIndex.load(cfg.data.path)
    if index.num_classes > cfg.model.num_classes:
        raise ConfigError(
            f"the latents in {cfg.data.path} have {index.num_classes} classes but "
            f"model.num_classes is {cfg.model.num_classes}."
        )
    normalizer = LatentNormalizer.from_folder(
        cfg.data.path, cfg.data.normalization, cfg.data.scale_factor
    )
    # The data source checks every shard, so a missing or corrupt one stops the run here,
    # before anything in the run folder is written.
    data = LatentShardDataSource(
        cfg.data.path,
        batch_size=t.global_batch_size,
        seed=t.seed,
        rank=acc.process_index,
        world_size=acc.num_processes,
        flip=cfg.data.flip,
        normalizer=normalizer,
        preload=cfg.data.preload,
        verify_checksums=cfg.data.verify_checksums,
    )
    torch.manual_seed(t.seed)  # identical initialisation on every rank
    model = build_model(cfg.model, index.latent_shape)
    if t.init_from is not None and resume_path is None:
        load_model_weights(model, t.init_from, t.init_weights)
    autoencoder = None
    if t.sample_every and cfg.autoencoder is not None and acc.is_main_process:
        # Loaded now, so that a missing autoencoder stops the run before any training.
        autoencoder = load_autoencoder(cfg.autoencoder, acc.device)
    objective = build_objective(cfg.objective)
    trainer_cfg = TrainerConfig(
        steps=t.steps,
        lr=cfg.optimizer.lr,
        optimizer=cfg.optimizer.name,
        betas=cfg.optimizer.betas,
        weight_decay=cfg.optimizer.weight_decay,
        grad_clip=cfg.optimizer.grad_clip,
        ema_decay=t.ema_decay,
        mixed_precision=t.mixed_precision,
        seed=t.seed,
        checkpoint_dir=str(run_dir / "checkpoints"),
        checkpoint_every=t.checkpoint_every,
        keep_last=t.keep_last,
        log_every=t.log_every,
        progress=t.progress,
        log_with=log_with,
        project_dir=str(run_dir / "logs"),
        compile="blocks" if t.compile is True else t.compile,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        memory_check=t.memory_check,
    )
    callbacks: list[tuple[int, Any]] = [(t.log_every, log_memory)]
    if t.sample_every:
        grid = SampleGrid(cfg, run_dir, normalizer, index.latent_shape, autoencoder)
        callbacks.append((t.sample_every, grid))
    trainer = Trainer(model, objective, data, trainer_cfg, callbacks=callbacks, accelerator=acc)
    if resume_path is not None:
        step = trainer.resume(resume_path)
        acc.print(f"Resumed from {resume_path} at step {step}.")
    # Every check passed: only now write the run folder's config and latent copies.
    _prepare_run_dir(run_dir, cfg, acc.is_main_process)
    acc.wait_for_everyone()
    result = trainer.fit()
    if result.stopped_by is not None:  # SIGTERM / SIGINT: checkpointed; no final export
        acc.end_training()
        return result
    report = _rank_sync_check(trainer, run_dir)
    last_loss = result.losses[-1] if result.losses else float("nan")
    acc.print(
        f"Finished at step {result.step} on {report['num_processes']} processes in "
        f"{result.seconds:.1f} s; last loss {last_loss:.4f}; checkpoint {result.checkpoint}; ranks "
        "in sync."
    )
    if acc.is_main_process:
        ema_state = trainer.ema_model.state_dict()
        save_weights(
            run_dir / "ema.safetensors",
            ema_state,
            {"model_config": trainer.unwrapped_model.config, "step": trainer.step},
        )
    acc.wait_for_everyone()
    acc.end_training()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", required=True, help="YAML run configuration (see scale/configs/)."
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="Override one config value (YAML syntax); may be repeated.",
    )
    parser.add_argument(
        "--resume",
        default="auto",
        help="'auto' (continue from <output_dir>/checkpoints/last.pt if present), 'never', "
        "or a checkpoint path.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="Show the full traceback of a configuration error."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)

    def run() -> int:
        cfg = load_config(args.config, args.override)
        result = train(cfg, resume=args.resume, source=str(args.config))
        if result.stopped_by is not None:
            # The conventional status of a process ended by the signal, so that a chained
            # command (train && sample) does not take the stopped run for a finished one.
            return 128 + int(signal.Signals[result.stopped_by])
        return 0

    return report_user_errors("scale/train.py", run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
