"""Faults of the scale/ scripts: unsafe checkpoints, settings checked before the first step,
one-line config errors, nothing left behind by a failed start, extraction reruns."""

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from scale import extract_latents
from scale import train as train_script
from scale.builders import load_model_weights
from scale.config import ConfigError
from tests.scale.helpers import tiny_autoencoder, train_overrides
from ucgm_lab.networks import MLP2D
from ucgm_lab.training import CheckpointError


class _RunsCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_runs_nothing_in_scale(latents, tmp_path, capsys):
    """Security: scale/sample.py --checkpoint and training.init_from unpickled the file."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model": _RunsCommand(marker)}, evil)
    with pytest.raises(CheckpointError, match="Refused to load"):
        load_model_weights(MLP2D(hidden=8, depth=1), evil)  # what scale/sample.py calls
    run = tmp_path / "run"
    status = train_script.main(train_overrides(latents, run, f"training.init_from={evil}"))
    assert status == 2 and "Refused to load" in capsys.readouterr().err
    assert not marker.exists()
    assert not run.exists()  # nothing left behind by the failed start


def test_config_errors_are_one_line_with_debug_for_the_traceback(latents, tmp_path, capsys):
    """Obscure: scale/ config errors named the file and the key but printed full tracebacks."""
    run = tmp_path / "run"
    args = train_overrides(latents, run, "training.stpes=3")
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "tiny_cpu.yaml:training: unknown keys ['stpes']; allowed keys:" in err
    assert "--debug shows the traceback" in err
    with pytest.raises(ConfigError, match="stpes"):
        train_script.main([*args, "--debug"])
    assert not run.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["sampling.kappa=2.0"], r"sampling.kappa: must lie in \[0, 1\], got 2.0"),
        (["sampling.guidance_scale=.nan"], "sampling.guidance_scale: must be a finite number"),
        (
            [
                "objective.transport=trigflow",
                "sampling.order=2",
                "sampling.time_points=[1.0, 0.6, 0.3]",
                "sampling.steps=3",
            ],
            r"sampling: The noise-form second-order correction divides by gamma\(t_i\)",
        ),
        (["sampling.time_points=[0.5, 0.9]", "sampling.steps=2"], "strictly decreasing"),
        (
            ["objective.consistency_ratio=1.0", "objective.enhancement_ratio=1000000.0"],
            r"tiny_cpu.yaml:objective: enhancement_ratio \(zeta\) must lie in \[0, 4\]",
        ),
    ],
)
def test_sampling_and_objective_settings_are_checked_before_training(
    latents, tmp_path, capsys, overrides, message
):
    """Lost work: an invalid sampling.kappa or time_points failed only at the first grid."""
    import re

    run = tmp_path / "run"
    assert train_script.main(train_overrides(latents, run, *overrides)) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not run.exists()  # no config.yaml, no latents/ copies, no checkpoints


def test_missing_autoencoder_stops_the_run_before_training(latents, tmp_path, capsys):
    """Lost work: a missing VAE killed the run at the first sample grid, before any checkpoint."""
    run = tmp_path / "run"
    args = train_overrides(
        latents,
        run,
        f"autoencoder.pretrained={tmp_path / 'no-vae'}",
        "training.sample_every=2",
    )
    assert train_script.main(args) == 2
    err = capsys.readouterr().err
    assert "autoencoder" in err.lower() and "no-vae" in err
    assert not run.exists()


def test_output_dir_that_is_a_file(latents, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert train_script.main(train_overrides(latents, target)) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_extraction_reruns_after_a_corrupt_image_is_removed(tmp_path):
    """Lost work: a stop at a corrupt image left extraction.json and the rerun refused."""
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in ("n1_a", "n2_b"):
        (images / c).mkdir(parents=True)
        for i in range(3):
            arr = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(arr).save(images / c / f"img_{i}.png")
    (images / "n1_a" / "img_1.png").write_bytes(b"not an image")
    tiny_autoencoder(tmp_path / "vae")
    out = tmp_path / "latents"
    args = [
        "--data-dir", str(images), "--output", str(out), "--image-size", "16",
        "--autoencoder", str(tmp_path / "vae"), "--shard-size", "10", "--batch-size", "3",
        "--num-workers", "0",
    ]  # fmt: skip
    assert extract_latents.main(args) == 2
    assert (out / "extraction.json").exists() and not list(out.glob("shard-*"))
    (images / "n1_a" / "img_1.png").unlink()  # the user removes the broken image
    assert extract_latents.main(args) == 0
    assert (out / "index.json").is_file()
    shutil.rmtree(out)


def test_missing_latent_folder_is_one_line(tmp_path, capsys):
    """Raw traceback (issue 24): data.path pointing at a missing latent folder."""
    run = tmp_path / "run"
    assert train_script.main(train_overrides(tmp_path / "no-latents", run)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no-latents" in err and "is not a finished latent folder" in err
    assert not run.exists()


def _image_folder(root, broken=None):
    rng = np.random.default_rng(0)
    for c in ("n1_a", "n2_b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            arr = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"img_{i}.png")
    if broken is not None:
        (root / "n2_b" / "img_2.png").write_bytes(broken)
    return root


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing folder", r"Image folder \S*nowhere does not exist"),
        ("empty folder", r"No images under \S*empty: expected the ImageFolder layout"),
        ("unreadable image", r"cannot read image \S*img_2.png \(UnidentifiedImageError"),
        ("truncated image", r"cannot read image \S*img_2.png \(OSError"),
        ("output is a file", r"File exists"),
    ],
)
def test_extraction_input_errors_are_one_line(tmp_path, capsys, case, expected):
    """Raw tracebacks (issue 24): scale.extract_latents had no one-line error reports."""
    import re

    data = {
        "missing folder": tmp_path / "nowhere",
        "empty folder": tmp_path / "empty",
    }.get(case, tmp_path / "images")
    if case == "empty folder":
        (data / "n1_a").mkdir(parents=True)
    elif case != "missing folder":
        noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / "ok.png")
        truncated = (tmp_path / "ok.png").read_bytes()[:2000]
        broken = {"unreadable image": b"not an image", "truncated image": truncated}.get(case)
        _image_folder(data, broken)
    out = tmp_path / "latents"
    if case == "output is a file":
        out.write_text("x")
    tiny_autoencoder(tmp_path / "vae")
    args = [
        "--data-dir", str(data), "--output", str(out), "--image-size", "16",
        "--autoencoder", str(tmp_path / "vae"), "--shard-size", "10", "--batch-size", "3",
        "--num-workers", "0",
    ]  # fmt: skip
    assert extract_latents.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("scale/extract_latents.py: error: ") and err.count("\n") == 1, err
    assert re.search(expected, err), err
    with pytest.raises(SystemExit):  # argparse's own one-line error
        extract_latents.main(args + ["--limit", "0"])
    assert "--limit must be a positive number of images" in capsys.readouterr().err
