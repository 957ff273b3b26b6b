r"""Class-balanced UCGM-S sampling and FID on many processes: ``accelerate launch -m scale.sample``.

Image i (of ``evaluation.num_samples``) has class ``i mod num_classes`` and its own initial
noise drawn from a generator seeded by ``sampling.seed`` and i, so the images do not depend on
the number of processes or the batch size (for rho = 0). Process r generates images r, r + W,
..., with the UCGM-S settings of the config's ``sampling`` section, decodes them with the
autoencoder and feeds them to the feature extractor; only the feature moments are summed
across processes (scale/fid.py), never images or features.

Outputs in ``evaluation.output_dir`` (default ``<run>/eval``): ``results.json`` (FID when
reference statistics are given, NFE, counts, settings), ``features_stats.npz`` (mu, sigma of
the generated images' features: usable as reference statistics), ``grid.png`` and, with
``evaluation.save_images``, PNGs of the first images of every process.

Examples::

    accelerate launch --num_processes 8 -m scale.sample --config runs/xl2/config.yaml \
        --override evaluation.reference_stats=refs/in1k256.npz \
        --override evaluation.inception_weights=weights-inception-2015-12-05-6726825d.pth
    python -m scale.sample --config runs/tiny/config.yaml --override evaluation.features=pixels
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (`accelerate launch scale/train.py`), not with -m:
    # this checkout's packages come first, not an installed `scale` (nor scale/ as a top level)
    _HERE = Path(__file__).resolve()
    sys.path[:] = [str(_HERE.parents[1])] + [
        p for p in sys.path if Path(p or ".").resolve() != _HERE.parent
    ]

import numpy as np
import torch
from torch import nn

from scale.builders import (
    build_model,
    check_distributed_type,
    check_sampling,
    check_world_size,
    decode_latents,
    generate_latents,
    load_autoencoder,
    load_model_weights,
    use_cpu,
)
from scale.config import ConfigError, RunConfig, config_to_dict, load_config
from scale.errors import report_user_errors
from scale.fid import (
    FeatureMoments,
    PixelFeatures,
    ReferenceStats,
    fid_from_moments,
    load_inception,
)
from scale.images import make_grid, save_png
from ucgm_lab.training.checkpoint import atomic_write
from ucgm_lab.training.collectives import all_reduce
from ucgm_lab.training.latents import INDEX_FILE, LatentIndex, LatentNormalizer

__all__ = ["evaluate", "initial_noise", "main", "sample_indices"]


def sample_indices(num_samples: int, rank: int, world_size: int) -> list[int]:
    """The global image indices of one process: rank, rank + W, ... below num_samples."""
    return list(range(rank, num_samples, world_size))


def initial_noise(indices: list[int], shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Per-image initial noise, shape (len(indices), *shape): image i from seed * 1_000_003 + i."""
    out = torch.empty((len(indices), *shape))
    for row, i in enumerate(indices):
        out[row] = torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
    return out


def _latent_folder(cfg: RunConfig) -> Path:
    """The run's copy of the latent index/stats, else the data folder."""
    run_copy = Path(cfg.training.output_dir) / "latents"
    return run_copy if (run_copy / INDEX_FILE).is_file() else Path(cfg.data.path)


def _default_checkpoint(cfg: RunConfig) -> Path:
    run = Path(cfg.training.output_dir)
    exported = run / "ema.safetensors"
    return exported if exported.is_file() else run / "checkpoints" / "last.pt"


def _feature_extractor(cfg: RunConfig, device: torch.device) -> tuple[nn.Module | None, int]:
    kind = cfg.evaluation.features
    if kind == "none":
        return None, 0
    if kind == "pixels":
        extractor = PixelFeatures()
        return extractor, extractor.dim
    extractor = load_inception(cfg.evaluation.inception_weights, device)
    return extractor, extractor.dim


def evaluate(
    cfg: RunConfig, checkpoint: str | None = None, weights: str = "ema", source: str = "config"
) -> dict[str, Any] | None:
    """Generate ``evaluation.num_samples`` images across processes and compute FID.

    Returns:
        The results dict on the main process, None elsewhere.

    Raises:
        ConfigError: Without an autoencoder section.
        FileNotFoundError: Missing checkpoint, reference statistics or Inception weights (before
            any sampling starts).
        ImportError: torch-fidelity missing while features = inception.
    """
    from accelerate import Accelerator

    ev = cfg.evaluation
    if cfg.autoencoder is None:
        raise ConfigError(
            "sampling images needs the config's autoencoder section (to decode the latents)."
        )
    check_distributed_type()  # before accelerate's own errors for FSDP/DeepSpeed
    cpu = use_cpu()
    # fp32 by default (TF32 matmuls on CUDA), as the reference and REPA sample; bf16 on request.
    acc = Accelerator(cpu=cpu, mixed_precision="bf16" if ev.precision == "bf16" else "no")
    if ev.precision == "fp32" and acc.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    check_world_size(acc.num_processes)
    check_distributed_type(acc.distributed_type)
    device = acc.device
    out_dir = Path(ev.output_dir) if ev.output_dir else Path(cfg.training.output_dir) / "eval"

    # Everything that can be missing or invalid is checked before sampling starts.
    check_sampling(cfg.sampling, cfg.objective.transport, cfg.model.num_classes, source)
    ckpt = Path(checkpoint) if checkpoint else _default_checkpoint(cfg)
    if not ckpt.is_file():
        raise FileNotFoundError(
            f"No checkpoint {ckpt}: give --checkpoint (ema.safetensors or a training checkpoint)."
        )
    reference = (
        ReferenceStats.load(ev.reference_stats, allow_unverified=ev.reference_stats_unverified)
        if ev.reference_stats
        else None
    )
    extractor, dim = _feature_extractor(cfg, device)
    if reference is not None and extractor is not None and reference.mu.shape[0] != dim:
        raise ValueError(
            f"{ev.reference_stats} has {reference.mu.shape[0]}-d statistics but the {ev.features} "
            f"features are {dim}-d."
        )
    folder = _latent_folder(cfg)
    index = LatentIndex.load(folder)
    normalizer = LatentNormalizer.from_folder(folder, cfg.data.normalization, cfg.data.scale_factor)
    model = build_model(cfg.model, index.latent_shape)
    info = load_model_weights(model, ckpt, weights)
    model = model.to(device).eval().requires_grad_(False)
    ae = load_autoencoder(cfg.autoencoder, device)

    moments = None
    if extractor is not None:
        shift = reference.mu if reference is not None else np.zeros(dim)
        moments = FeatureMoments(shift, device)
    mine = sample_indices(ev.num_samples, acc.process_index, acc.num_processes)
    saved, nfe, start = 0, 0, time.perf_counter()
    for b in range(0, len(mine), ev.batch_size):
        idx = mine[b : b + ev.batch_size]
        labels = torch.tensor([i % cfg.model.num_classes for i in idx], device=device)
        noise = initial_noise(idx, index.latent_shape, cfg.sampling.seed).to(device)
        gen = torch.Generator(device=device).manual_seed(cfg.sampling.seed * 1_000_003 + idx[0] + 7)
        with torch.no_grad(), acc.autocast():
            latents, nfe = generate_latents(
                model, labels, noise, cfg.objective.transport, cfg.sampling, gen
            )
        images = decode_latents(ae, normalizer.denormalize(latents))
        if moments is not None:
            with torch.no_grad():
                moments.update(extractor(images))
        if b == 0 and acc.is_main_process:
            save_png(make_grid(images[:64].cpu()), out_dir / "grid.png")
        for row in range(min(len(idx), max(0, ev.save_images - saved))):
            save_png(images[row].cpu(), out_dir / "images" / f"{idx[row]:06d}.png")
            saved += 1
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "num_samples": ev.num_samples,
        "num_processes": acc.num_processes,
        "features": ev.features,
        "nfe": nfe,
        "checkpoint": info["source"],
        "step": info["step"],
        "weights": weights,
        "precision": ev.precision,
        "seconds": seconds,
        "sampling": config_to_dict(cfg)["sampling"],
    }
    if moments is not None:
        moments.all_reduce(all_reduce)
        result["feature_count"] = int(moments.count)
        if acc.is_main_process:
            mu, sigma = moments.stats()
            ReferenceStats(mu, sigma).save(out_dir / "features_stats.npz")  # with its digest
            if reference is not None:
                result["fid"] = fid_from_moments(moments, reference)
                result["reference_stats"] = str(ev.reference_stats)
    acc.wait_for_everyone()
    # Nothing collective follows: tear the process group down now, not in the exit handlers
    # (where its threads may be destroyed while joinable and abort the rank).
    acc.state.destroy_process_group()
    if not acc.is_main_process:
        return None
    text = json.dumps(result, indent=2)
    atomic_write(out_dir / "results.json", lambda tmp: Path(tmp).write_text(text))
    acc.print(
        json.dumps(
            {k: result[k] for k in ("num_samples", "nfe", "seconds") if k in result}
            | ({"fid": result["fid"]} if "fid" in result else {})
        )
    )
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="The run's config.yaml (or any run config).")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="Override a config value, e.g. evaluation.num_samples=10000 or sampling.steps=40.",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="ema.safetensors or a training checkpoint "
        "(default: <run>/ema.safetensors, else last.pt).",
    )
    p.add_argument(
        "--weights",
        default="ema",
        choices=["ema", "model"],
        help="Weights of a training checkpoint.",
    )
    p.add_argument(
        "--debug", action="store_true", help="Show the full traceback of a configuration error."
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)

    def run() -> int:
        cfg = load_config(args.config, args.override)
        evaluate(cfg, args.checkpoint, args.weights, source=str(args.config))
        return 0

    return report_user_errors("scale/sample.py", run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
