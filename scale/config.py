"""The YAML run configuration of scale/: sections, defaults and strict validation.

A config has the sections ``data``, ``model``, ``objective``, ``optimizer``, ``training`` and
``sampling`` (all required) and optionally ``autoencoder`` and ``evaluation``. Keys without a
default below are required. An unknown section or key, a missing required key, or a value of
the wrong type is a :class:`ConfigError` that names the file and the key. The resolved config
(every default filled in) is written beside the run as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scale.autoencoders import resolve_autoencoder_class

__all__ = [
    "AutoencoderConfig",
    "ConfigError",
    "DataConfig",
    "EvaluationConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimizerConfig",
    "RunConfig",
    "SamplingConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_to_dict",
    "dump_config",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A run configuration is invalid (unknown or missing key, wrong type or value)."""


@dataclass(frozen=True)
class DataConfig:
    """``data``: the latent folder written by scale/extract_latents.py.

    The model sees normalised latents; sampling inverts the map before decoding. Two
    conventions: "per_channel" (the default: zero mean, unit variance per channel, from the
    extracted statistics) and "scalar" with ``scale_factor: 0.18215``, the SD-VAE scaling
    (x * 0.18215, no shift) of the paper's reference code, DiT, SiT and REPA. Use "scalar" to
    reproduce the reference; a run keeps its choice (a resume refuses a change).

    Attributes:
        path: Latent folder (with index.json, shards and stats.safetensors).
        normalization: "per_channel" ((x - mean_c) / std_c from stats.safetensors), "scalar"
            (x * scale_factor) or "none".
        scale_factor: Factor for "scalar" (SD-VAE: 0.18215); a finite number > 0.
        flip: Use the flipped latents with probability 1/2 (horizontal-flip augmentation).
        preload: Load all shards into memory (small sets) instead of memory-mapped reads.
        verify_checksums: Check every shard's sha256 at start-up.
    """

    path: str
    normalization: Literal["per_channel", "scalar", "none"] = "per_channel"
    scale_factor: float = 0.18215
    flip: bool = True
    preload: bool = False
    verify_checksums: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """``model``: a named TiT; the input size and channels come from the latents.

    Attributes:
        name: ``TiT-<tiny|S|B|L|XL>/<patch>``, e.g. "TiT-XL/2".
        num_classes: Number of classes (the null class is num_classes).
        gradient_checkpointing: Recompute blocks in the backward pass (saves memory): true
            (every block), false, or an integer k >= 2 (every k-th block; the trainer's
            memory check picks the least that fits when the run would not fit).
    """

    name: str
    num_classes: int = 1000
    gradient_checkpointing: bool | int = False


@dataclass(frozen=True)
class ObjectiveConfig:
    """``objective``: arguments of :class:`ucgm_lab.UCGMObjective` (Tab. 6).

    Attributes:
        transport: Transport name of Tab. 2 (Tab. 6: linear).
        consistency_ratio: lambda (0 multi-step, 1 few-step).
        time_distribution: Beta (theta1, theta2) of the training times.
        time_scale: Multiplier of the Beta draw (reference ``time_dist_ctrl[2]``).
        enhancement_ratio: zeta.
        enhancement_range: (lo, s) of the enhanced target.
        label_dropout: Fraction of labels replaced by the null class.
        loss: "squared_l2" or "pseudo_huber".
        huber_c: Pseudo-Huber constant.
        cosine_term: Add (1 - cosine similarity) to the pseudo-Huber loss.
        clip: Clip of Delta f^x: a number, None (no clip) or "auto" (the library default:
            none at lambda = 0, 1 otherwise).
        epsilon: Half-width of the central difference for lambda = 1.
        time_weighting: "cosine" or "none".
        teacher_decay: Decay of the warm-up EMA teacher (lambda = 0 enhancement).
        difference_model: theta^- of the finite differences: "current" or "ema".
        fp32_no_grad_forwards: Run the extra no-grad forwards in float32 outside autocast.
    """

    consistency_ratio: float
    time_distribution: tuple[float, float]
    enhancement_ratio: float
    transport: str = "linear"
    time_scale: float = 1.0
    enhancement_range: tuple[float, float] = (0.0, 0.75)
    label_dropout: float = 0.1
    loss: Literal["squared_l2", "pseudo_huber"] = "squared_l2"
    huber_c: float = 0.0
    cosine_term: bool = False
    clip: float | Literal["auto"] | None = "auto"
    epsilon: float = 0.005
    time_weighting: Literal["cosine", "none"] = "cosine"
    teacher_decay: float = 0.999
    difference_model: Literal["current", "ema"] = "current"
    fp32_no_grad_forwards: bool = False


@dataclass(frozen=True)
class OptimizerConfig:
    """``optimizer`` (Tab. 6: AdamW 2e-4 (0.9, 0.95) multi-step; RAdam 1e-4 (0.9, 0.999) few-step).

    Attributes:
        name: "adamw" or "radam".
        lr: Learning rate.
        betas: Adam betas.
        weight_decay: Decoupled weight decay.
        grad_clip: Max gradient norm (None: no clipping).
    """

    name: Literal["adamw", "radam"]
    lr: float
    betas: tuple[float, float]
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0


@dataclass(frozen=True)
class TrainingConfig:
    """``training``: the loop, checkpoints, logging and sample grids.

    Attributes:
        output_dir: Run folder (config.yaml, checkpoints/, samples/, logs).
        steps: Total optimizer steps (a resumed run continues to it).
        global_batch_size: Batch size summed over all processes.
        seed: Seed of the data order, the objective's draws and the model initialisation.
        ema_decay: Decay of the EMA of weights (Tab. 6: 0.9999).
        mixed_precision: "auto" (bf16 on CUDA GPUs that have it), "no", "bf16" or "fp16".
        compile: torch.compile: "auto" (every TiT block, teachers included, on CUDA; none on
            CPUs), true (every block), "model" (the whole model) or false.
        gradient_accumulation_steps: Micro-batches per optimizer step: each process runs
            global_batch_size / (processes x k) images at a time; the optimizer step, the EMA
            and the step count see the global batch as without accumulation.
        memory_check: Before the first step on CUDA, estimate the memory per GPU
            (ucgm_lab.training.memory): "auto" turns gradient checkpointing on if the estimate
            does not fit (and stops, naming the largest batch per GPU that fits, if even that
            does not), "warn" only warns, "off" skips it.
        checkpoint_every: Checkpoint every this many steps (0: only at the end).
        keep_last: Numbered checkpoints ``step_XXXXXXXXX.pt`` kept beside ``last.pt``
            (0: only ``last.pt``).
        log_every: Log loss, images/s and memory every this many steps.
        log_with: Tracker: "tensorboard" or "none".
        sample_every: Save a sample grid every this many steps (0: never).
        sample_grid_size: Images in a sample grid.
        init_from: A training checkpoint (last.pt) to start from, e.g. the multi-step model
            for few-step training; its EMA or raw weights (init_weights) initialise the model.
            Ignored when the run resumes from its own checkpoint.
        init_weights: "ema" or "model".
        progress: Show a progress bar.
    """

    output_dir: str
    steps: int
    global_batch_size: int
    seed: int = 0
    ema_decay: float = 0.9999
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: bool | Literal["auto", "model"] = "auto"
    gradient_accumulation_steps: int = 1
    memory_check: Literal["auto", "warn", "off"] = "auto"
    checkpoint_every: int = 0
    keep_last: int = 2
    log_every: int = 100
    log_with: Literal["tensorboard", "none"] = "tensorboard"
    sample_every: int = 0
    sample_grid_size: int = 16
    init_from: str | None = None
    init_weights: Literal["ema", "model"] = "ema"
    progress: bool = True


@dataclass(frozen=True)
class SamplingConfig:
    """``sampling``: UCGM-S settings (Alg. 2) for grids and evaluation.

    Attributes:
        steps: Number of network evaluations N (order 1).
        order: 1 or 2.
        kappa: Extrapolation ratio.
        rho: Stochastic ratio in [0, 1], or "auto".
        schedule: "uniform", "auto" (Kumaraswamy (1.17, 0.8, 1.1)) or [a, b, c].
        gap_noise: Gap at the noise end (t_0 = 1 - k(gap_noise)).
        gap_data: Gap at the data end (sets the second point of 2-step models).
        time_points: Explicit decreasing times (overrides schedule and steps).
        guidance_scale: Classifier-free guidance scale (1: none).
        guidance_interval: Times where guidance applies.
        extrapolation_start: First step that extrapolates.
        seed: Seed of the sampling noise.
    """

    steps: int
    order: Literal[1, 2] = 1
    kappa: float = 0.0
    rho: float | Literal["auto"] = 0.0
    schedule: Literal["uniform", "auto"] | tuple[float, float, float] = "auto"
    gap_noise: float = 0.001
    gap_data: float = 0.001
    time_points: tuple[float, ...] | None = None
    guidance_scale: float = 1.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    extrapolation_start: int = 1
    seed: int = 0


@dataclass(frozen=True)
class AutoencoderConfig:
    """``autoencoder``: the diffusers autoencoder that decodes latents (and encoded them).

    Attributes:
        pretrained: Hub id or local folder for ``from_pretrained`` (e.g.
            "stabilityai/sd-vae-ft-ema").
        class_path: The autoencoder class: a diffusers autoencoder of
            :data:`scale.autoencoders.SUPPORTED_AUTOENCODERS` ("diffusers.AutoencoderKL" or
            "AutoencoderKL"), or with ``allow_custom_class`` any "package.Class" /
            "module:Class".
        subfolder: Subfolder inside ``pretrained``.
        dtype: "float32", "bfloat16" or "float16".
        allow_custom_class: Accept a ``class_path`` outside the supported diffusers classes;
            its module is imported, so its code runs (off by default).
    """

    pretrained: str
    class_path: str = "diffusers.AutoencoderKL"
    subfolder: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    allow_custom_class: bool = False


@dataclass(frozen=True)
class EvaluationConfig:
    """``evaluation``: scale/sample.py (FID-50K by default).

    Attributes:
        num_samples: Images to generate (class-balanced: image i has class i mod K).
        batch_size: Images per process per batch.
        features: "inception" (torch-fidelity InceptionV3, FID), "pixels" (8 x 8 pixel
            features, a smoke test, not FID) or "none" (only generate).
        reference_stats: A .npz with ``mu`` and ``sigma`` of the reference features.
        reference_stats_unverified: Accept reference statistics without the digest that
            ucgm-lab writes (statistics from elsewhere, e.g. ADM's reference batches).
        inception_weights: Path of torch-fidelity's InceptionV3 weights
            (weights-inception-2015-12-05-6726825d.pth).
        save_images: PNGs to save per process (0: none).
        output_dir: Where results go (default: <run>/eval).
        precision: Precision of the sampling network: "fp32" (float32 weights and
            activations, TF32 matmuls on CUDA GPUs: what the reference and REPA evaluate with)
            or "bf16" (bf16 autocast: faster, may move FID slightly). The autoencoder runs in
            ``autoencoder.dtype``.
    """

    num_samples: int = 50000
    batch_size: int = 125
    features: Literal["inception", "pixels", "none"] = "inception"
    reference_stats: str | None = None
    reference_stats_unverified: bool = False
    inception_weights: str | None = None
    save_images: int = 0
    output_dir: str | None = None
    precision: Literal["fp32", "bf16"] = "fp32"


@dataclass(frozen=True)
class RunConfig:
    """A whole run configuration."""

    data: DataConfig
    model: ModelConfig
    objective: ObjectiveConfig
    optimizer: OptimizerConfig
    training: TrainingConfig
    sampling: SamplingConfig
    autoencoder: AutoencoderConfig | None = None
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)


_OPTIONAL_SECTIONS = {"autoencoder", "evaluation"}


# ---------------------------------------------------------------------- checking
def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _check_value(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation; return it converted (lists -> tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        errors = []
        for option in options:
            try:
                return _check_value(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[-1])
        raise _fail(where, f"{value!r} is none of the allowed forms ({'; '.join(errors)})")
    if annotation is type(None):
        if value is not None:
            raise _fail(where, f"expected null, got {value!r}")
        return None
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed or isinstance(value, bool) != any(
            isinstance(a, bool) for a in allowed
        ):
            raise _fail(where, f"must be one of {list(allowed)}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise _fail(where, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(where, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(
            _check_value(v, a, f"{where}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if annotation is bool:
        if not isinstance(value, bool):
            raise _fail(where, f"expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, f"expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, f"expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise _fail(where, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} at {where}")  # pragma: no cover


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise _fail(where, f"must be a mapping of keys to values, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise _fail(where, f"unknown keys {unknown}; allowed keys: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise _fail(key, "missing required key")
            continue
        kwargs[name] = _check_value(raw[name], hints[name], key)
    return cls(**kwargs)


def _check_semantics(cfg: RunConfig, where: str) -> None:
    t, o, s = cfg.training, cfg.optimizer, cfg.sampling
    positive = {
        "training.steps": t.steps >= 0,
        "training.global_batch_size": t.global_batch_size >= 1,
        "training.gradient_accumulation_steps": t.gradient_accumulation_steps >= 1,
        "training.log_every": t.log_every >= 1,
        "training.checkpoint_every": t.checkpoint_every >= 0,
        "training.keep_last": t.keep_last >= 0,
        "training.sample_every": t.sample_every >= 0,
        "training.sample_grid_size": t.sample_grid_size >= 1,
        "optimizer.lr": o.lr > 0,
        "sampling.steps": s.steps >= 1,
        "model.num_classes": cfg.model.num_classes >= 1,
        "evaluation.num_samples": cfg.evaluation.num_samples >= 1,
        "evaluation.batch_size": cfg.evaluation.batch_size >= 1,
    }
    if cfg.model.gradient_checkpointing < 0:
        raise _fail(
            f"{where}:model.gradient_checkpointing",
            "must be true, false or an integer k >= 0 (checkpoint every k-th block), got "
            f"{cfg.model.gradient_checkpointing}",
        )
    if not (math.isfinite(cfg.data.scale_factor) and cfg.data.scale_factor > 0):
        raise _fail(
            f"{where}:data.scale_factor",
            f"must be a finite number > 0 (SD-VAE: 0.18215), got {cfg.data.scale_factor}",
        )
    for key, ok in positive.items():
        if not ok:
            raise _fail(f"{where}:{key}", "must be positive (steps, every-intervals: non-negative)")
    if t.global_batch_size % t.gradient_accumulation_steps:
        raise _fail(
            f"{where}:training.gradient_accumulation_steps",
            f"{t.gradient_accumulation_steps} does not divide training.global_batch_size "
            f"{t.global_batch_size} (it must divide it, and so must processes x steps)",
        )
    if s.time_points is not None and len(s.time_points) != s.steps:
        raise _fail(
            f"{where}:sampling.time_points",
            f"has {len(s.time_points)} points but sampling.steps is {s.steps}; they must agree",
        )
    if isinstance(s.rho, float) and not 0 <= s.rho <= 1:
        raise _fail(f"{where}:sampling.rho", f"must lie in [0, 1] or be 'auto', got {s.rho}")
    if not 0 <= s.kappa <= 1:
        raise _fail(f"{where}:sampling.kappa", f"must lie in [0, 1], got {s.kappa}")
    if not math.isfinite(s.guidance_scale):
        raise _fail(
            f"{where}:sampling.guidance_scale",
            f"must be a finite number (1: no guidance), got {s.guidance_scale}",
        )
    finite = {
        "optimizer.lr": o.lr,
        "training.ema_decay": t.ema_decay,
        "objective.consistency_ratio": cfg.objective.consistency_ratio,
        "objective.enhancement_ratio": cfg.objective.enhancement_ratio,
    }
    for key, value in finite.items():
        if not math.isfinite(value):
            raise _fail(f"{where}:{key}", f"must be a finite number, got {value}")
    if cfg.autoencoder is not None:
        try:
            resolve_autoencoder_class(
                cfg.autoencoder.class_path, cfg.autoencoder.allow_custom_class
            )
        except ValueError as exc:
            raise _fail(f"{where}:autoencoder.class_path", str(exc)) from None


def parse_config(raw: Any, source: str = "<config>") -> RunConfig:
    """Validate a parsed YAML mapping.

    Args:
        raw: The mapping (e.g. from ``yaml.safe_load``).
        source: Name of the file, for error messages.

    Returns:
        The :class:`RunConfig`.

    Raises:
        ConfigError: Naming the file and the key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping of sections, got {type(raw).__name__}"
        )
    sections = {f.name: f for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(
            f"{source}: unknown sections {unknown}; allowed sections: {sorted(sections)}"
        )
    hints = typing.get_type_hints(RunConfig)
    kwargs: dict[str, Any] = {}
    for name in sections:
        if name not in raw or (name in _OPTIONAL_SECTIONS and raw[name] is None):
            if name in _OPTIONAL_SECTIONS:
                continue
            raise ConfigError(f"{source}: missing required section '{name}'")
        cls = next(a for a in typing.get_args(hints[name]) or (hints[name],) if a is not type(None))
        kwargs[name] = _build(cls, raw[name], f"{source}:{name}")
    cfg = RunConfig(**kwargs)
    _check_semantics(cfg, source)
    return cfg


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (value parsed as YAML) to a raw config mapping.

    Raises:
        ConfigError: For a malformed override.
    """
    import yaml

    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        path, text = item.split("=", 1)
        section, key = path.split(".", 1)
        if section not in raw or raw[section] is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"override {item!r}: section {section!r} is not a mapping")
        raw[section][key] = yaml.safe_load(text)
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read and validate a YAML config file, with optional ``section.key=value`` overrides.

    Raises:
        ConfigError: If the file is missing, is not YAML, or is invalid (naming the key).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if isinstance(raw, dict) and overrides:
        raw = apply_overrides(raw, overrides)
    return parse_config(raw, str(path))


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config as plain YAML-able data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML text (parses back to an equal :class:`RunConfig`)."""
    import yaml

    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
