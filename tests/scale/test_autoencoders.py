"""An autoencoder class named in a config or on the command line imports no arbitrary module."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from scale.autoencoders import SUPPORTED_AUTOENCODERS, resolve_autoencoder_class
from scale.builders import _autoencoder_class, load_autoencoder
from scale.config import AutoencoderConfig, ConfigError, parse_config
from scale.extract_latents import parse_args
from tests.scale.helpers import REPO, TINY_CONFIG

EVIL = """
from pathlib import Path
Path(__file__).with_name("ran").write_text("evilmod ran")
class Evil:
    pass
"""


@pytest.fixture
def evil_folder(tmp_path, monkeypatch):
    """A folder with evilmod.py on the import path and as the working folder (python -m)."""
    (tmp_path / "evilmod.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    return tmp_path


def _raw_with_autoencoder(**section):
    raw = yaml.safe_load(TINY_CONFIG.read_text())
    raw["autoencoder"] = {"pretrained": "some/vae", **section}
    return raw


def test_supported_classes_resolve_by_name():
    import diffusers

    for name in SUPPORTED_AUTOENCODERS:
        assert resolve_autoencoder_class(name) == ("diffusers", name)
        assert resolve_autoencoder_class(f"diffusers.{name}") == ("diffusers", name)
        assert resolve_autoencoder_class(f"diffusers:{name}") == ("diffusers", name)
        assert _autoencoder_class(name) is getattr(diffusers, name)


@pytest.mark.parametrize("class_path", ["evilmod:Evil", "evilmod.Evil", "os.system", "Evil"])
def test_a_config_naming_another_module_is_refused_without_importing_it(evil_folder, class_path):
    with pytest.raises(ConfigError, match="allow_custom_class: true") as info:
        parse_config(_raw_with_autoencoder(class_path=class_path), "run.yaml")
    assert "autoencoder.class_path" in str(info.value) and "AutoencoderKL" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="allow_custom_class"):
        load_autoencoder(AutoencoderConfig("some/vae", class_path))
    assert not (evil_folder / "ran").exists() and "evilmod" not in sys.modules


def test_custom_classes_need_the_opt_in_and_fail_in_one_line(evil_folder):
    cfg = parse_config(
        _raw_with_autoencoder(class_path="evilmod:Evil", allow_custom_class=True), "run.yaml"
    )
    assert cfg.autoencoder.allow_custom_class
    # opted in: the module is imported (its code runs), then a class without from_pretrained
    # is an ImportError naming it, not a raw AttributeError
    with pytest.raises(ImportError, match="no class with from_pretrained named 'Evil'"):
        load_autoencoder(cfg.autoencoder)
    assert (evil_folder / "ran").exists()
    with pytest.raises(ImportError, match="has no class 'Missing'"):
        _autoencoder_class("evilmod:Missing", allow_custom=True)
    with pytest.raises(ValueError, match="'package.Class' or 'module:Class'"):
        resolve_autoencoder_class("evil mod:Evil", allow_custom=True)


def test_extract_latents_command_line_refuses_other_modules(evil_folder, capsys):
    base = ["--data-dir", "d", "--output", "o"]
    with pytest.raises(SystemExit) as info:
        parse_args([*base, "--autoencoder-class", "evilmod:Evil"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--allow-custom-autoencoder" in err and "AutoencoderKL" in err
    assert parse_args([*base, "--autoencoder-class", "AutoencoderTiny"]).autoencoder_class
    args = parse_args([*base, "--autoencoder-class", "evilmod:Evil", "--allow-custom-autoencoder"])
    assert args.allow_custom_autoencoder
    assert not (evil_folder / "ran").exists()


def test_scale_train_with_the_issue_config_prints_one_line_and_runs_nothing(tmp_path):
    (tmp_path / "evilmod.py").write_text(EVIL)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_raw_with_autoencoder(class_path="evilmod:Evil")))
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "scale.train", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "allow_custom_class" in lines[0], done.stderr
    assert not (tmp_path / "ran").exists()
