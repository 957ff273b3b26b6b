"""The Trainer's checkpoints: save, resume (exact or elastic), start a new run from weights.

:class:`TrainerCheckpoints` is a mixin of :class:`~ucgm_lab.training.Trainer` (the methods
read the trainer's model, EMA, optimizer, objective, data and generator); the files themselves
are written and read by :mod:`ucgm_lab.training.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..ema import ExponentialMovingAverage
from .checkpoint import (
    atomic_write,
    load_checkpoint,
    remove_orphan_temporaries,
    save_checkpoint,
)
from .collectives import gather_objects
from .trainer_config import ResumeMismatchError, TrainerConfig

__all__ = ["TrainerCheckpoints"]

_NUMBERED = re.compile(r"^step_(\d+)\.pt$")


class TrainerCheckpoints:
    """Checkpoint methods of :class:`~ucgm_lab.training.Trainer` (a mixin; no state of its own)."""

    config: TrainerConfig
    accelerator: Any
    objective: Any
    data: Any
    ema: ExponentialMovingAverage
    optimizer: Any
    generator: torch.Generator
    step: int
    skipped_steps: int
    losses: list[float]
    metrics: dict[str, list[tuple[int, float]]]
    last_checkpoint: Path | None
    written_checkpoint: Path | None
    _saved_step: int | None
    _tmp_cleaned: bool
    unwrapped_model: nn.Module  # properties of the Trainer
    is_main_process: bool

    def _gather_rank_states(self) -> list[dict[str, Any]]:
        """Every process's RNG states and data position (a collective: all processes call it)."""
        rank_state = {
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "data": self.data.state_dict(),
        }
        return gather_objects(rank_state, self.accelerator.device)

    def state_dict(self, ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything needed to resume exactly; the weights, EMA and teachers as host copies.

        Args:
            ranks: The per-process states from :meth:`_gather_rank_states` (default: gathered
                here, so then every process must call this).
        """
        if ranks is None:
            ranks = self._gather_rank_states()
        model = self.unwrapped_model
        scaler = getattr(self.accelerator, "scaler", None)
        return {
            "step": self.step,
            # one host copy per tensor (.cpu().clone() made two of CPU tensors)
            "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
            "model_config": getattr(model, "config", None),
            "ema": self.ema.state_dict(),  # host copies (ExponentialMovingAverage.state_dict)
            # live references: torch.save copies device tensors to the host one at a time
            "optimizer": self.optimizer.state_dict(),
            "objective": self.objective.state_dict(),  # host copies of the teachers
            "objective_settings": (
                self.objective.settings() if hasattr(self.objective, "settings") else None
            ),
            "ranks": ranks,
            "python_random": random.getstate(),
            "numpy_random": np.random.get_state(),
            "losses": list(self.losses),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "config": dataclasses.asdict(self.config),
            "num_processes": self.accelerator.num_processes,
            "gradient_accumulation_steps": self.config.gradient_accumulation_steps,
            "scaler": None if scaler is None else scaler.state_dict(),
            "skipped_steps": self.skipped_steps,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (main process); all processes must call it.

        Without ``path`` it writes ``<checkpoint_dir>/last.pt`` and, when ``keep_last > 0``,
        the numbered ``step_XXXXXXXXX.pt`` beside it, keeping the newest ``keep_last`` of those.
        """
        numbered = path is None and self.config.keep_last > 0
        if path is None:
            if not self.config.checkpoint_dir:
                raise ValueError("No path given and config.checkpoint_dir is not set.")
            path = Path(self.config.checkpoint_dir) / "last.pt"
        path = Path(path)
        # Only the main process builds the full state (CPU copies); the others send their RNG
        # states and data positions and hold no second copy of the weights, EMA or optimizer.
        ranks = self._gather_rank_states()
        if self.is_main_process:
            state = self.state_dict(ranks)
            if not self._tmp_cleaned:
                remove_orphan_temporaries(path.parent)
                self._tmp_cleaned = True
            save_checkpoint(path, state)
            if numbered:
                self._keep_numbered(path)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = self.written_checkpoint = path
        self._saved_step = self.step
        return path

    def _keep_numbered(self, last: Path) -> None:
        """Link (or copy) ``last`` to ``step_XXXXXXXXX.pt`` and delete numbered files beyond keep_last."""
        target = last.parent / f"step_{self.step:09d}.pt"
        tmp = last.parent / f".{target.name}.link.tmp"
        try:
            tmp.unlink(missing_ok=True)
            os.link(last, tmp)
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)
            atomic_write(target, lambda t: _copy(last, t))
        steps = sorted(
            (int(m.group(1)), p)
            for p in last.parent.iterdir()
            if (m := _NUMBERED.match(p.name)) is not None
        )
        for _, old in steps[: -self.config.keep_last]:
            old.unlink(missing_ok=True)

    def resume(self, path: str | Path) -> int:
        """Load a checkpoint written by :meth:`save` and continue from its step.

        Everything is checked before anything is loaded, so a failed resume leaves the model,
        the EMA, the optimizer and the data position untouched. Temporary files that a killed
        save left in the checkpoint's folder are deleted.

        Returns:
            The step resumed from.

        Raises:
            CheckpointError: Missing, corrupt or unsafe file.
            ResumeMismatchError: A checkpoint from a different number of processes where the
                data source cannot keep the global data order (see
                :meth:`_elastic_rank_state`), with other gradient accumulation or gradient
                scaling, of a model
                of other parameter names or shapes, or trained with another objective (e.g.
                lambda = 0 into a lambda = 1 run: use :meth:`start_from` to start a new run
                from its weights).
        """
        path = Path(path)
        state = load_checkpoint(path, mmap=True)  # one copy per node, in the page cache
        if self.is_main_process:
            remove_orphan_temporaries(path.parent)
        saved_k = int(state.get("gradient_accumulation_steps", 1))
        if saved_k != self.config.gradient_accumulation_steps:
            raise ResumeMismatchError(
                f"{path} was trained with gradient_accumulation_steps={saved_k}; this run has "
                f"{self.config.gradient_accumulation_steps}. Exact resume needs the same value "
                "(the micro-batches, and so the random draws, depend on it)."
            )
        scaler = getattr(self.accelerator, "scaler", None)
        if (state.get("scaler") is None) != (scaler is None):
            raise ResumeMismatchError(
                f"{path} was trained {'with' if state.get('scaler') is not None else 'without'} "
                f"a gradient scaler (fp16); this run is {'with' if scaler is not None else 'without'}"
                ". Resume with the same mixed_precision."
            )
        elastic = state["num_processes"] != self.accelerator.num_processes
        if elastic:
            rank = self._elastic_rank_state(path, state)
        else:
            rank = state["ranks"][self.accelerator.process_index]
        self._check_objective(path, state.get("objective_settings"))
        config = state.get("model_config")
        _check_tensors(path, "model", state["model"], self.unwrapped_model.state_dict(), config)
        _check_tensors(path, "EMA", state["ema"]["model"], self.ema.model.state_dict(), config)
        groups = state["optimizer"].get("param_groups", [])
        mine = [len(g["params"]) for g in self.optimizer.state_dict()["param_groups"]]
        if [len(g["params"]) for g in groups] != mine:
            raise ResumeMismatchError(
                f"{path}: the optimizer state is for parameter groups of sizes "
                f"{[len(g['params']) for g in groups]}, this run has {mine}."
            )
        self.data.load_state_dict(rank["data"])  # checks size and seed before changing anything
        self.unwrapped_model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if elastic:
            # A new, deterministic stream per rank: the per-rank draws of the old process
            # count have no counterpart in the new one.
            seed = _elastic_seed(
                self.config.seed, int(state["step"]), self.accelerator.process_index
            )
            self.generator.manual_seed(seed)
            torch.manual_seed(seed)
            self.accelerator.print(
                f"Elastic resume: {path} was written by {state['num_processes']} processes, this "
                f"run has {self.accelerator.num_processes}. The global batches continue in the "
                "same order; the per-process random draws (t, z, label dropout) are reseeded, so "
                "the run is not bit-identical to an uninterrupted one."
            )
        else:
            self.generator.set_state(rank["generator"])
            torch.set_rng_state(rank["torch_rng"])
            if rank["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state(rank["cuda_rng"])
        random.setstate(_as_tuple(state["python_random"]))
        np.random.set_state(state["numpy_random"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])
        self.metrics = {k: [tuple(p) for p in v] for k, v in state["metrics"].items()}
        self.last_checkpoint = path
        self._saved_step = self.step
        return self.step

    def _elastic_rank_state(self, path: Path, state: dict[str, Any]) -> dict[str, Any]:
        """The data position for a resume with another number of processes, or raise.

        Allowed when the data source declares ``global_order = True`` (its stream of global
        batches depends only on its seed and position, not on the process count or rank, as
        for :class:`~ucgm_lab.training.data.TensorDataSource` and
        :class:`~ucgm_lab.training.latents.LatentShardDataSource`) and every rank of the
        checkpoint stood at the same position. The per-rank random streams (the objective's
        draws of t, z and label dropout) cannot be carried over; they are reseeded from
        (seed, step, rank), so the continuation sees the same global batches as an
        uninterrupted run but other noise.
        """
        old, new = state["num_processes"], self.accelerator.num_processes
        if not getattr(self.data, "global_order", False):
            raise ResumeMismatchError(
                f"{path} was written by {old} processes; this run has {new}. The data source "
                f"{type(self.data).__name__} does not declare global_order = True (a stream of "
                "global batches independent of the process count), so the data order could "
                "not be kept: resume with the same number of processes."
            )
        positions = [r["data"] for r in state["ranks"]]
        if any(p != positions[0] for p in positions):
            raise ResumeMismatchError(
                f"{path}: its {old} ranks stood at different data positions {positions}; a "
                "resume with another number of processes needs one global position."
            )
        return {"data": positions[0]}

    def start_from(self, path: str | Path, weights: Literal["ema", "model"] = "ema") -> None:
        """Start a new run (step 0, fresh optimizer) from the weights of a training checkpoint.

        This is the explicit way to train with another objective from a checkpoint (e.g. a
        few-step lambda = 1 model from a multi-step lambda = 0 one, as the paper does).

        Args:
            path: A checkpoint written by :meth:`save`.
            weights: "ema" (the averaged weights, default) or "model" (the raw weights).

        Raises:
            CheckpointError: Missing, corrupt or unsafe file.
            ResumeMismatchError: The weights are of another model.
        """
        if weights not in ("ema", "model"):
            raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}.")
        path = Path(path)
        state = load_checkpoint(path, mmap=True)
        tensors = state["ema"]["model"] if weights == "ema" else state["model"]
        _check_tensors(
            path, "model", tensors, self.unwrapped_model.state_dict(), state.get("model_config")
        )
        self.unwrapped_model.load_state_dict(tensors)
        self.ema.model.load_state_dict(tensors)
        self.ema.restart()  # a new run: the EMA ramp starts again from these weights

    def _check_objective(self, path: Path, saved: dict[str, Any] | None) -> None:
        if saved is None:  # checkpoints written before the settings were stored
            return
        if not hasattr(self.objective, "settings"):
            return
        mine = self.objective.settings()
        changed = {
            k: (saved[k], mine[k]) for k in sorted(set(saved) & set(mine)) if saved[k] != mine[k]
        }
        if changed:
            text = "; ".join(
                f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in changed.items()
            )
            raise ResumeMismatchError(
                f"{path} was trained with another objective ({text}). Resuming would continue its "
                "step count, optimizer state and loss history as if nothing had changed. Use the "
                "same objective to resume, or start a new run from its weights with "
                "Trainer.start_from(path) (scale/train.py: training.init_from)."
            )


def _elastic_seed(seed: int, step: int, rank: int) -> int:
    """Seed of a rank's random stream after a resume with another number of processes."""
    return (seed * 1_000_003 + step) * 7919 + rank + 1


def _copy(src: Path, dst: str) -> None:
    import shutil

    shutil.copyfile(src, dst)


def _as_tuple(value: Any) -> Any:
    """Python's random state as the nested tuple ``random.setstate`` wants."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def _check_tensors(
    path: Path,
    what: str,
    saved: dict[str, torch.Tensor],
    mine: dict[str, torch.Tensor],
    model_config: dict[str, Any] | None = None,
) -> None:
    """Raise unless ``saved`` has exactly the names and shapes of ``mine`` (with a fitting hint)."""
    missing = sorted(set(mine) - set(saved))
    extra = sorted(set(saved) - set(mine))
    shapes = [
        f"{k}: checkpoint {tuple(saved[k].shape)}, this model {tuple(mine[k].shape)}"
        for k in sorted(set(mine) & set(saved))
        if tuple(saved[k].shape) != tuple(mine[k].shape)
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        if shapes:
            parts.append("other shapes " + "; ".join(shapes[:5]))
        raise ResumeMismatchError(
            f"{path} holds {what} weights of another architecture ({', '.join(parts)}); nothing "
            f"was loaded. {_architecture_hint(saved, mine, model_config)}"
        )


def _inner_names(tensors: dict[str, torch.Tensor]) -> set[str]:
    """The names of a state dict as the network inside a TimeScaled wrapper has them."""
    return {k.removeprefix("network.") for k in tensors if k != "time_scale"}


def _architecture_hint(
    saved: dict[str, torch.Tensor], mine: dict[str, torch.Tensor], config: dict[str, Any] | None
) -> str:
    """What to do about a checkpoint of another architecture: wrap, unwrap, or rebuild."""
    saved_wrapped = "time_scale" in saved and any(k.startswith("network.") for k in saved)
    mine_wrapped = "time_scale" in mine and any(k.startswith("network.") for k in mine)
    inner_saved, inner_mine = _inner_names(saved), _inner_names(mine)
    if saved_wrapped and not mine_wrapped:
        factor = float(saved["time_scale"])
        same = " (the same network inside)" if inner_saved == set(mine) else ""
        return (
            f"The checkpoint holds a network wrapped in TimeScaled (time_scale = {factor:g}){same}"
            ": wrap yours the same way, ucgm_lab.networks.TimeScaled(network, "
            f"time_scale={factor:g}), before loading."
        )
    if mine_wrapped and not saved_wrapped:
        same = " (the same network inside)" if set(saved) == inner_mine else ""
        return (
            "This model is wrapped in TimeScaled but the checkpoint holds an unwrapped network"
            f"{same}: load it into the network without the wrapper (wrapping a trained network "
            "changes its function; train with the wrapper from the lambda = 0 run on)."
        )
    if config is not None:
        return (
            "Build the model with the checkpoint's model_config "
            "(ucgm_lab.networks.build_network(load_checkpoint(path)['model_config']))."
        )
    return (
        "The checkpoint stores no model_config (a network of your own): build the same network "
        "class with the same sizes (and the same TimeScaled wrapper, if any) as the run that "
        "wrote it."
    )
