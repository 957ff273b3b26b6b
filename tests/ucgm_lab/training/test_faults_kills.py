"""Faults of processes: ``kill -9`` during checkpoint saves loses no checkpoint and, after the
resume, leaves no orphan temporary file."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig, load_checkpoint

ROOT = Path(__file__).resolve().parents[3]

SAVER = textwrap.dedent(
    """
    import sys, torch
    from toy_data import sample_2d
    from ucgm_lab.networks import MLP2D
    from ucgm_lab.objective import UCGMObjective
    from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig

    folder = sys.argv[1]
    data = sample_2d("moons", 256, seed=0)
    trainer = Trainer(
        MLP2D(hidden=256, depth=4),
        UCGMObjective("linear", 0.0),
        TensorDataSource(data.points, batch_size=32, seed=1),
        TrainerConfig(steps=10**6, progress=False, checkpoint_dir=folder, checkpoint_every=1),
    )
    if (trainer_ckpt := __import__("pathlib").Path(folder) / "last.pt").exists():
        trainer.resume(trainer_ckpt)
    print("ready", flush=True)
    trainer.fit()
    """
)


def _trainer(folder):
    data = sample_2d("moons", 256, seed=0)
    return Trainer(
        MLP2D(hidden=256, depth=4),
        UCGMObjective("linear", 0.0),
        TensorDataSource(data.points, batch_size=32, seed=1),
        TrainerConfig(steps=10**6, progress=False, checkpoint_dir=str(folder), checkpoint_every=1),
    )


def test_kill_during_saves_loses_nothing_and_leaves_no_orphans(tmp_path):
    """Lost work: a kill -9 during a save left an orphan .last.pt.*.tmp that resume never removed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    steps = []
    orphans_seen = 0
    for kill in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        # every step saves, so most of the time is spent inside a save
        deadline = time.monotonic() + 0.6 + 0.37 * kill
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans_seen += len(list(tmp_path.glob(".*.tmp")))
        state = load_checkpoint(tmp_path / "last.pt")  # a loadable checkpoint after every kill
        steps.append(state["step"])
    assert steps == sorted(steps) and steps[-1] > 0
    # What a kill in the middle of a write leaves (the kills above hit one only sometimes).
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    # A fresh trainer resumes from the last checkpoint and removes what the kills left.
    torch.manual_seed(0)
    trainer = _trainer(tmp_path)
    assert trainer.resume(tmp_path / "last.pt") == steps[-1]
    assert list(tmp_path.glob(".*.tmp")) == []
    names = {p.name for p in tmp_path.iterdir()}
    # run.lock: the killed process's lock (stale: its pid is dead), which fit() takes over
    assert "last.pt" in names and all(
        n in ("last.pt", "run.lock") or n.startswith("step_") for n in names
    )
    trainer.fit(steps=steps[-1] + 1)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == steps[-1] + 1
    assert not (tmp_path / "run.lock").exists()  # released when fit() returns
    print(f"orphan temporary files left by the kills (then removed): {orphans_seen}")
