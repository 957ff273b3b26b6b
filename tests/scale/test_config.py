import copy
from pathlib import Path

import pytest
import yaml

from scale.builders import build_objective, sampler_kwargs
from scale.config import ConfigError, dump_config, load_config, parse_config
from tests.scale.helpers import REPO, TINY_CONFIG

CONFIGS = sorted((REPO / "scale" / "configs").glob("*.yaml"))


def _raw():
    return yaml.safe_load(TINY_CONFIG.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_parse_and_round_trip(path):
    cfg = load_config(path)
    again = parse_config(yaml.safe_load(dump_config(cfg)), "dumped")
    assert again == cfg
    build_objective(cfg.objective)  # the library accepts every objective setting
    sampler_kwargs(cfg.sampling)


def test_configs_mirror_table_6():
    multi = load_config(REPO / "scale/configs/in1k256_sdvae_xl2_multistep.yaml")
    assert multi.model.name == "TiT-XL/2"
    assert multi.objective.time_distribution == (2.4, 2.4)
    assert (multi.objective.consistency_ratio, multi.objective.enhancement_ratio) == (0.0, 0.44)
    assert (
        multi.sampling.kappa,
        multi.sampling.rho,
        multi.sampling.schedule,
        multi.sampling.order,
    ) == (0.21, 0.0, "auto", 1)
    assert (multi.optimizer.name, multi.optimizer.lr, multi.optimizer.betas) == (
        "adamw",
        2e-4,
        (0.9, 0.95),
    )
    assert multi.training.ema_decay == 0.9999
    few = load_config(REPO / "scale/configs/in1k256_sdvae_xl2_fewstep.yaml")
    assert few.objective.time_distribution == (0.8, 1.0)
    assert (few.objective.consistency_ratio, few.objective.enhancement_ratio) == (1.0, 2.0)
    assert (few.sampling.steps, few.sampling.rho, few.sampling.kappa) == (2, 1.0, 0.0)
    assert (few.optimizer.name, few.optimizer.lr, few.optimizer.betas) == (
        "radam",
        1e-4,
        (0.9, 0.999),
    )
    times = sampler_kwargs(few.sampling)["schedule"].time_points(2)
    assert times.tolist() == pytest.approx([0.999, 0.3, 0.0])
    big = load_config(REPO / "scale/configs/in1k512_sdvae_xl4_multistep.yaml")
    assert (big.model.name, big.objective.enhancement_ratio, big.sampling.kappa) == (
        "TiT-XL/4",
        0.6,
        0.4,
    )


def test_unknown_key_names_the_file_and_key(tmp_path):
    raw = _raw()
    raw["training"]["stpes"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"bad.yaml:training: unknown keys \['stpes'\]"):
        load_config(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("sampling"), "missing required section 'sampling'"),
        (lambda r: r["model"].pop("name"), "model.name: missing required key"),
        (lambda r: r["optimizer"].pop("lr"), "optimizer.lr: missing required key"),
        (lambda r: r.update(extra={}), r"unknown sections \['extra'\]"),
        (lambda r: r["training"].update(steps="4"), "training.steps: expected an integer"),
        (lambda r: r["training"].update(progress=1), "training.progress: expected true or false"),
        (lambda r: r["optimizer"].update(name="sgd"), "optimizer.name: must be one of"),
        (lambda r: r["optimizer"].update(betas=[0.9]), "optimizer.betas: expected a list of 2"),
        (lambda r: r["sampling"].update(rho="sometimes"), "sampling.rho"),
        (lambda r: r["sampling"].update(time_points=[1.0, 0.5]), "sampling.time_points"),
        (lambda r: r["training"].update(global_batch_size=0), "training.global_batch_size"),
        (
            lambda r: r["training"].update(gradient_accumulation_steps=0),
            "training.gradient_accumulation_steps: must be positive",
        ),
        (
            lambda r: r["training"].update(gradient_accumulation_steps=3),
            r"training.gradient_accumulation_steps: 3 does not divide training.global_batch_size",
        ),
        (lambda r: r["training"].update(compile="fast"), "training.compile"),
        (lambda r: r["training"].update(memory_check="maybe"), "training.memory_check"),
    ],
)
def test_invalid_configs(mutate, message):
    raw = copy.deepcopy(_raw())
    mutate(raw)
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, "tiny.yaml")


def test_overrides_are_validated_like_the_file():
    cfg = load_config(
        TINY_CONFIG,
        ["training.steps=9", "sampling.schedule=[1.0, 1.0, 1.0]", "autoencoder.pretrained=x"],
    )
    assert cfg.training.steps == 9 and cfg.sampling.schedule == (1.0, 1.0, 1.0)
    assert cfg.autoencoder is not None and cfg.autoencoder.class_path == "diffusers.AutoencoderKL"
    with pytest.raises(ConfigError, match=r"training: unknown keys \[.stepz.\]"):
        load_config(TINY_CONFIG, ["training.stepz=9"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(TINY_CONFIG, ["steps=9"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("nope.yaml"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.scale_factor=0", r"data.scale_factor: must be a finite number > 0"),
        ("data.scale_factor=.inf", r"data.scale_factor: must be a finite number > 0"),
        ("data.normalization=sd_vae", r"data.normalization: must be one of \['per_channel'"),
        ("evaluation.precision=fp16", r"evaluation.precision: must be one of \['fp32', 'bf16'\]"),
    ],
)
def test_new_keys_fail_in_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(TINY_CONFIG, [override])
    assert "\n" not in str(info.value) and str(TINY_CONFIG) in str(info.value)


def test_reference_sd_vae_scaling_is_x_times_0_18215(latents):
    """normalization: scalar is the reference's SD-VAE convention: x * 0.18215, no shift."""
    import torch

    from ucgm_lab.training.latents import LatentNormalizer

    cfg = load_config(TINY_CONFIG, ["data.normalization=scalar"])
    assert cfg.data.scale_factor == 0.18215 and cfg.evaluation.precision == "fp32"
    norm = LatentNormalizer.from_folder(latents, cfg.data.normalization, cfg.data.scale_factor)
    x = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(norm.normalize(x), x * 0.18215)
    torch.testing.assert_close(norm.denormalize(norm.normalize(x)), x)


def test_partial_gradient_checkpointing_setting():
    """model.gradient_checkpointing: true, false or every k-th block (issue 28)."""
    from scale.builders import build_model

    cfg = load_config(TINY_CONFIG, ["model.gradient_checkpointing=2"])
    assert cfg.model.gradient_checkpointing == 2
    assert build_model(cfg.model, (4, 4, 4)).gradient_checkpointing == 2
    assert load_config(TINY_CONFIG, ["model.gradient_checkpointing=true"]).model.gradient_checkpointing
    with pytest.raises(ConfigError, match="model.gradient_checkpointing"):
        load_config(TINY_CONFIG, ["model.gradient_checkpointing=-1"])
    with pytest.raises(ConfigError, match="model.gradient_checkpointing"):
        load_config(TINY_CONFIG, ["model.gradient_checkpointing=every"])
