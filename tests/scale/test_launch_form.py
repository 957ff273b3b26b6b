"""Launching the scale scripts as files uses this checkout's packages (issue 28)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("train.py", "sample.py", "extract_latents.py")


def _decoy_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH holds a `scale` package that fails on import."""
    decoy = tmp_path / "site" / "scale"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy scale package was imported')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path / "site")  # ahead of an installed (editable) scale
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


@pytest.mark.parametrize("script", SCRIPTS)
def test_file_form_imports_the_checkout(script: str, tmp_path: Path) -> None:
    env = _decoy_env(tmp_path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scale" / script), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    # the decoy is really first for a plain import (so the test can fail)
    plain = subprocess.run(
        [sys.executable, "-c", "import scale"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300,
    )
    assert "decoy" in plain.stderr


@pytest.mark.slow
def test_accelerate_launch_file_form_starts_two_cpu_processes(tmp_path: Path) -> None:
    """The documented CPU form starts N processes (``--cpu`` would start one)."""
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    env = _decoy_env(tmp_path)
    env["ACCELERATE_USE_CPU"] = "true"
    done = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         str(ROOT / "scale" / "train.py"), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("usage:") == 2, done.stdout[-2000:]
