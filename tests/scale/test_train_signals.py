"""scale.train on SIGTERM (a cluster's preemption): a checkpoint of the current step, a clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from scale.launch import subprocess_env
from tests.scale.helpers import REPO, train_overrides
from ucgm_lab.training import load_checkpoint

pytestmark = pytest.mark.timeout(600)


def test_sigterm_checkpoints_the_current_step_and_a_rerun_resumes(latents, tmp_path):
    run = tmp_path / "run"
    # the shipped large-run cadence: no checkpoint would come before the signal
    extra = ("training.steps=100000", "training.checkpoint_every=20000", "training.sample_every=0")
    args = [sys.executable, "-m", "scale.train", *train_overrides(latents, run, *extra)]
    args += ["--override", "training.log_with=none"]
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    # The run folder's lock is taken by Trainer.fit right before it installs its signal
    # handlers (config.yaml comes earlier, with file copies in between: a SIGTERM sent a fixed
    # time after it could reach a slow machine before the handlers and kill the run outright).
    while not (run / "checkpoints" / "run.lock").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    step = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert step >= 1
    assert f"Received SIGTERM: training stopped cleanly at step {step} of 100000" in out + err
    assert not (run / "ema.safetensors").exists()  # the final export is for finished runs
    assert not (run / "checkpoints" / "run.lock").exists()
    # the same command with a reachable end resumes from the checkpoint
    again = [a if a != "training.steps=100000" else f"training.steps={step + 2}" for a in args]
    done = subprocess.run(
        again, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Resumed from {run / 'checkpoints' / 'last.pt'} at step {step}" in done.stdout
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step + 2
