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


def _identity(path):
    """(inode, mtime) of a file, or None: every save replaces last.pt by a new file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _wait_for_a_new_checkpoint(proc, path, before, timeout=180.0):
    deadline = time.monotonic() + timeout
    while _identity(path) in (None, before):
        assert proc.poll() is None, f"the training process exited: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"no checkpoint written in {timeout:.0f} s"
        time.sleep(0.01)


def test_kill_during_saves_loses_nothing_and_leaves_no_orphans(tmp_path):
    """Lost work: a kill -9 during a save left an orphan .last.pt.*.tmp that resume never removed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    steps = []
    orphans_seen = 0
    for kill in range(2):
        before = _identity(tmp_path / "last.pt")
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        # Wait for this run's first save (however slow the machine), then let it save a few
        # more times: every step saves, so most of the time is spent inside a save.
        _wait_for_a_new_checkpoint(proc, tmp_path / "last.pt", before)
        time.sleep(0.2 + 0.37 * kill)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans_seen += len(list(tmp_path.glob(".*.tmp")))
        state = load_checkpoint(tmp_path / "last.pt")  # a loadable checkpoint after every kill
        steps.append(state["step"])
    assert steps[0] > 0 and steps[1] > steps[0]  # each run saved at least once
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
