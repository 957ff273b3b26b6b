"""Library objects from a run config: model, objective, sampler settings, autoencoder.

Nothing here re-implements the library: these functions only wire its pieces together.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scale.autoencoders import resolve_autoencoder_class
from scale.config import (
    AutoencoderConfig,
    ConfigError,
    ModelConfig,
    ObjectiveConfig,
    SamplingConfig,
)
from ucgm_lab import BetaTimeDistribution, KumaraswamySchedule, UCGMObjective, sample
from ucgm_lab.networks.tit import TiT, tit_from_name
from ucgm_lab.training import CheckpointError, load_checkpoint, load_weights
from ucgm_lab.training import distributed as _training_distributed

__all__ = [
    "SHARDED_DISTRIBUTED_TYPES",
    "build_model",
    "check_distributed_type",
    "check_world_size",
    "use_cpu",
    "build_objective",
    "check_sampling",
    "decode_latents",
    "encode_images",
    "generate_latents",
    "load_autoencoder",
    "load_model_weights",
    "sampler_kwargs",
]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def use_cpu() -> bool:
    """Whether accelerate must be told to use the CPU (its ``cpu=`` argument).

    True when ``ACCELERATE_USE_CPU`` is set, or when the script was launched on several
    processes (``WORLD_SIZE`` > 1) on a machine without CUDA: otherwise accelerate would start
    every process as an independent single-process run.
    """
    flag = os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes")
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return flag or (launched and not torch.cuda.is_available())


def check_world_size(num_processes: int) -> None:
    """Raise if the launcher started more processes than accelerate joined into one group."""
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if num_processes != expected:
        raise RuntimeError(
            f"The launcher started {expected} processes (WORLD_SIZE) but accelerate formed a group "
            f"of {num_processes}; on CPUs launch with ACCELERATE_USE_CPU=true accelerate launch "
            "--multi_gpu ..."
        )


SHARDED_DISTRIBUTED_TYPES = _training_distributed.SHARDED_DISTRIBUTED_TYPES
"""accelerate's ``DistributedType`` names that shard the model, which scale/ refuses; it runs on
one process or with data parallelism (a full copy of the model on every process)."""


def check_distributed_type(distributed_type: Any = None) -> None:
    """Refuse accelerate configurations that shard the model (FSDP, DeepSpeed, Megatron-LM).

    :func:`ucgm_lab.training.distributed.check_distributed_type` (which the trainer also runs),
    with scale/'s wording and error type. Called before the ``Accelerator`` is made and after,
    before anything is written.

    Args:
        distributed_type: ``Accelerator.distributed_type`` (an enum or its name), or None to
            check only the launcher's environment variables.

    Raises:
        ConfigError: One line naming the configuration and what to use instead.
    """
    try:
        _training_distributed.check_distributed_type(
            distributed_type,
            who="scale/",
            memory_hint="model.gradient_checkpointing: true",
        )
    except _training_distributed.UnsupportedDistributedError as err:
        raise ConfigError(str(err)) from None


def build_model(cfg: ModelConfig, latent_shape: tuple[int, int, int]) -> TiT:
    """A freshly initialised TiT for latents of shape (C, H, W) (H = W)."""
    c, h, w = latent_shape
    if h != w:
        raise ValueError(f"TiT needs square latents, got shape {latent_shape}.")
    return tit_from_name(
        cfg.name,
        input_size=h,
        in_channels=c,
        num_classes=cfg.num_classes,
        gradient_checkpointing=cfg.gradient_checkpointing,
    )


def build_objective(cfg: ObjectiveConfig) -> UCGMObjective:
    """The library's UCGM-T objective with the config's arguments."""
    theta1, theta2 = cfg.time_distribution
    return UCGMObjective(
        cfg.transport,
        cfg.consistency_ratio,
        time_distribution=BetaTimeDistribution(theta1, theta2, scale=cfg.time_scale),
        epsilon=cfg.epsilon,
        clip=cfg.clip,
        time_weighting=cfg.time_weighting,
        loss=cfg.loss,
        huber_c=cfg.huber_c,
        cosine_term=cfg.cosine_term,
        enhancement_ratio=cfg.enhancement_ratio,
        enhancement_range=cfg.enhancement_range,
        label_dropout=cfg.label_dropout,
        teacher_decay=cfg.teacher_decay,
        difference_model=cfg.difference_model,
        fp32_no_grad_forwards=cfg.fp32_no_grad_forwards,
    )


def sampler_kwargs(cfg: SamplingConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`ucgm_lab.sample` (all but model, noise, transport, y)."""
    kwargs: dict[str, Any] = {
        "order": cfg.order,
        "kappa": cfg.kappa,
        "rho": cfg.rho,
        "guidance_scale": cfg.guidance_scale,
        "guidance_interval": cfg.guidance_interval,
        "extrapolation_start": cfg.extrapolation_start,
    }
    if cfg.time_points is not None:
        kwargs["time_points"] = list(cfg.time_points)
        return kwargs
    if cfg.schedule == "uniform":
        schedule = KumaraswamySchedule(gap_noise=cfg.gap_noise, gap_data=cfg.gap_data)
    elif cfg.schedule == "auto":
        schedule = KumaraswamySchedule.auto(gap_noise=cfg.gap_noise, gap_data=cfg.gap_data)
    else:
        a, b, c = cfg.schedule
        schedule = KumaraswamySchedule(a, b, c, gap_noise=cfg.gap_noise, gap_data=cfg.gap_data)
    kwargs.update(steps=cfg.steps, schedule=schedule)
    return kwargs


class _ZeroNetwork(nn.Module):
    """F = 0 for every input: lets :func:`check_sampling` run the sampler without a model."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.null_class = num_classes

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.zeros_like(x)


def check_sampling(
    cfg: SamplingConfig, transport: str, num_classes: int, source: str = "config"
) -> None:
    """Run the sampler once with the config's settings on a zero network and a 1-d toy state.

    Every setting the sampler checks (kappa, rho, the time grid, the order-2 correction's
    divisor, guidance) is checked here, before training or sampling starts, instead of at the
    first sample grid.

    Raises:
        ConfigError: Naming the file and the sampling section, with the sampler's message.
    """
    try:
        sample(
            _ZeroNetwork(num_classes),
            torch.zeros(1, 1),
            transport,
            y=torch.zeros(1, dtype=torch.long),
            **sampler_kwargs(cfg),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}:sampling: {exc}") from exc


def generate_latents(
    model: nn.Module,
    labels: Tensor,
    noise: Tensor,
    transport: str,
    cfg: SamplingConfig,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, int]:
    """UCGM-S samples in the model's (normalised) latent space.

    Args:
        model: The (EMA) network.
        labels: Class ids, shape (B,).
        noise: Initial noise, shape (B, C, H, W).
        transport: The transport the model was trained with.
        cfg: Sampling settings.
        generator: Generator of the fresh noise (rho > 0).

    Returns:
        (samples of shape (B, C, H, W) in float32, number of network evaluations).
    """
    out = sample(model, noise, transport, y=labels, generator=generator, **sampler_kwargs(cfg))
    return out.sample.float(), out.nfe


def load_model_weights(model: nn.Module, path: str | Path, weights: str = "ema") -> dict[str, Any]:
    """Load weights into ``model`` from a training checkpoint (.pt) or exported safetensors.

    Args:
        model: The network to fill.
        path: ``last.pt`` written by the trainer, or ``ema.safetensors`` exported by train.py.
        weights: For a .pt checkpoint: "ema" (the EMA weights) or "model" (raw weights).

    Returns:
        Metadata: ``{"step": ..., "source": ...}``.

    Raises:
        CheckpointError: Naming the file, if it is missing, corrupt or of another model.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        tensors, meta = load_weights(path)
        step = meta.get("step")
    else:
        state = load_checkpoint(path, mmap=True)  # only the chosen weights are read from disk
        if weights not in ("ema", "model"):
            raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}.")
        tensors = state["ema"]["model"] if weights == "ema" else state["model"]
        step = state.get("step")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} holds weights of a different model: {exc}") from exc
    return {"step": step, "source": str(path)}


# ---------------------------------------------------------------------- autoencoder
def _autoencoder_class(class_path: str, allow_custom: bool = False) -> type:
    """Import the autoencoder class; supported diffusers classes only, unless ``allow_custom``."""
    module_name, attr = resolve_autoencoder_class(class_path, allow_custom)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"Cannot import {module_name!r} for the autoencoder {class_path!r} ({exc}). Install "
            "the scale extra: pip install -e '.[scale]' (diffusers)."
        ) from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "from_pretrained", None)):
        what = "no class" if cls is None else "no class with from_pretrained named"
        raise ImportError(
            f"{module_name!r} has {what} {attr!r} (autoencoder class_path {class_path!r})."
        )
    return cls


def load_autoencoder(cfg: AutoencoderConfig, device: torch.device | str = "cpu") -> nn.Module:
    """Load the autoencoder with ``from_pretrained`` (local folder or hub id), frozen, in eval."""
    cls = _autoencoder_class(cfg.class_path, cfg.allow_custom_class)
    kwargs: dict[str, Any] = {"torch_dtype": _DTYPES[cfg.dtype]}
    if cfg.subfolder:
        kwargs["subfolder"] = cfg.subfolder
    try:
        ae = cls.from_pretrained(cfg.pretrained, **kwargs)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"Could not load the autoencoder {cfg.class_path} from {cfg.pretrained!r} ({exc}). "
            "Give a local folder written by save_pretrained, or a hub id on a machine with "
            "network access."
        ) from exc
    return ae.to(device).eval().requires_grad_(False)


@torch.no_grad()
def encode_images(
    ae: nn.Module, images: Tensor, mode: str = "mean", generator: torch.Generator | None = None
) -> Tensor:
    """Encode images in [-1, 1] of shape (B, 3, H, W) to latents (B, C, h, w), float32.

    ``mode`` "mean" takes the posterior mean, "sample" a posterior sample (diffusers
    ``AutoencoderKL``); autoencoders without a posterior (``.latent``) ignore it.
    """
    dtype = next(ae.parameters()).dtype
    out = ae.encode(images.to(dtype))
    dist = getattr(out, "latent_dist", None)
    if dist is not None:
        z = dist.mean if mode == "mean" else dist.sample(generator=generator)
    else:
        z = out.latent if hasattr(out, "latent") else out[0]
    return z.float()


@torch.no_grad()
def decode_latents(ae: nn.Module, latents: Tensor) -> Tensor:
    """Decode autoencoder latents (B, C, h, w) to uint8 images (B, 3, H, W)."""
    dtype = next(ae.parameters()).dtype
    out = ae.decode(latents.to(dtype))
    images = out.sample if hasattr(out, "sample") else out[0]
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
