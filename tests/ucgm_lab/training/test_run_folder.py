"""Work lost: a new run in another run's folder, two writers of one folder, SIGTERM / SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scale.launch import subprocess_env
from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import (
    RunFolderError,
    TensorDataSource,
    Trainer,
    TrainerConfig,
    load_checkpoint,
)
from ucgm_lab.training.run_folder import LOCK_NAME, RunFolderLock

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("signal_worker.py")


def _trainer(folder: Path, steps: int, every: int = 10, **config) -> Trainer:
    torch.manual_seed(0)
    data = sample_2d("moons", 64, seed=0)
    cfg = TrainerConfig(
        steps=steps,
        progress=False,
        cpu=True,
        checkpoint_dir=str(folder),
        checkpoint_every=every,
        **config,
    )
    return Trainer(
        MLP2D(hidden=8, depth=1),
        UCGMObjective("linear"),
        TensorDataSource(data.points, batch_size=8),
        cfg,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------- another run's folder
def test_a_new_run_in_a_folder_holding_another_run_is_refused(tmp_path):
    """The issue's reproduction: 30 steps saved every 10, then a new 3-step run into the folder."""
    _trainer(tmp_path, 30).fit()
    before = _files(tmp_path)
    assert {"last.pt", "step_000000020.pt", "step_000000030.pt"} <= set(before)
    with pytest.raises(RunFolderError) as info:
        _trainer(tmp_path, 3, every=1).fit()
    message = str(info.value)
    assert "holds another run" in message and "\n" not in message
    for way in ("trainer.resume(", "new checkpoint_dir", "overwrite=True", "Nothing was written"):
        assert way in message
    assert _files(tmp_path) == before  # nothing written, nothing pruned, no lock left
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 30


def test_resume_continues_and_overwrite_replaces_the_other_run(tmp_path):
    _trainer(tmp_path, 30).fit()
    again = _trainer(tmp_path, 40)
    again.resume(tmp_path / "last.pt")
    assert again.fit().step == 40  # resuming the folder's own run is allowed
    assert again.fit(45).step == 45  # and a second fit of the same trainer
    fresh = _trainer(tmp_path, 3, every=1, overwrite=True)
    assert fresh.fit().step == 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["last.pt", "step_000000002.pt", "step_000000003.pt"]  # the new run's own
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        TrainerConfig(overwrite="yes")


# ---------------------------------------------------------------------- the lock
def test_a_lock_of_a_live_process_or_another_host_stops_the_second_writer(tmp_path):
    lock = tmp_path / LOCK_NAME
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "start": None, "since": "now"}
    lock.write_text(json.dumps(owner))
    with pytest.raises(RunFolderError, match=f"in use by process {os.getppid()} on host"):
        _trainer(tmp_path, 2).fit()
    assert not (tmp_path / "last.pt").exists() and lock.exists()
    lock.write_text(json.dumps({**owner, "pid": 1, "host": "another-machine"}))
    with pytest.raises(RunFolderError, match=f"another-machine.*delete {lock}"):
        _trainer(tmp_path, 2).fit()
    lock.write_text("")  # a lock file cut short
    with pytest.raises(RunFolderError, match="unreadable lock file"):
        _trainer(tmp_path, 2).fit()


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_released(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "start": None}))
    assert _trainer(tmp_path, 2).fit().step == 2
    assert not lock.exists()
    # a live pid whose process started later than the one that wrote the lock: a reused pid
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": "1"}))
    trainer = _trainer(tmp_path, 3)
    trainer.resume(tmp_path / "last.pt")
    assert trainer.fit().step == 3 and not lock.exists()


def test_the_lock_is_released_when_fit_raises(tmp_path):
    trainer = _trainer(tmp_path, 5)

    def fail(trainer, step, logs):
        raise RuntimeError("a callback failed")

    trainer.callbacks.append((2, fail))
    with pytest.raises(RuntimeError, match="a callback failed"):
        trainer.fit()
    assert not (tmp_path / LOCK_NAME).exists()
    lock = RunFolderLock(tmp_path)
    with lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(RunFolderError, match="in use by process"):
            RunFolderLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_NAME).exists()


# ---------------------------------------------------------------------- signals
def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the worker ended early: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {path.name} after {seconds} s")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_with_a_checkpoint_and_a_second_writer_is_refused(tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp_path)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(tmp_path / "pid_rank0", proc)
    # a second writer while the first trains: refused, and the first is untouched
    with pytest.raises(RunFolderError, match=f"in use by process {proc.pid}"):
        _trainer(tmp_path / "ckpt", 2).fit()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads((tmp_path / "result_rank0.json").read_text())
    assert result["stopped_by"] == sig.name and result["step"] >= 2
    state = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert state["step"] == result["step"]
    said = f"Received {sig.name}: training stopped cleanly at step {result['step']} of 1000000"
    assert said in out and "last.pt" in out
    assert not (tmp_path / "ckpt" / LOCK_NAME).exists()


def test_a_signal_to_one_rank_stops_both_ranks_after_the_same_step(tmp_path):
    """Two CPU processes under accelerate launch; only rank 1 gets SIGTERM."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, str(WORKER), str(tmp_path)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(tmp_path / "pid_rank1", launcher, seconds=240)
    os.kill(int((tmp_path / "pid_rank1").read_text()), signal.SIGTERM)
    out, err = launcher.communicate(timeout=240)
    assert launcher.returncode == 0, (out + err)[-4000:]
    results = [json.loads((tmp_path / f"result_rank{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1] and results[0]["stopped_by"] == "SIGTERM"
    state = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert state["step"] == results[0]["step"] and state["num_processes"] == 2
    assert "training stopped cleanly at step" in out + err


_LAUNCH = (
    "import sys, json\n"
    "from scale.launch import launch_on_cpu\n"
    "r = launch_on_cpu(sys.argv[1], [sys.argv[2]], 2, timeout=230)\n"
    "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)\n"
)
