"""scale.rehearse killed and rerun: no orphan launch, --resume / --clean, a valid extraction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scale import rehearse
from scale.launch import subprocess_env
from scale.synthetic import make_latent_folder
from tests.scale.helpers import REPO

WORKER = REPO / "tests" / "ucgm_lab" / "training" / "signal_worker.py"


def _earlier_rehearsal(work: Path) -> None:
    for name in ("images", "vae", "run/checkpoints", "logs"):
        (work / name).mkdir(parents=True)
    (work / "run" / "checkpoints" / "last.pt").write_bytes(b"a checkpoint")


def _fail_at(stage_module: str):
    def launch(module, args, *rest, **kwargs):
        if module == stage_module:
            return subprocess.CompletedProcess(args, 1, "", "x.py: error: stopped here\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    return launch


def test_a_rerun_in_an_earlier_rehearsal_names_resume_and_clean(tmp_path, capsys):
    work = tmp_path / "w"
    _earlier_rehearsal(work)
    assert rehearse.main(["--workdir", str(work)]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier rehearsal" in err and "--resume" in err and "--clean" in err
    (work / "mine.txt").write_text("not the rehearsal's")
    for option in ("--resume", "--clean"):
        assert rehearse.main(["--workdir", str(work), option]) == 2
        assert "not a rehearsal's (mine.txt)" in capsys.readouterr().err
    assert (work / "run" / "checkpoints" / "last.pt").exists()  # nothing deleted


def test_resume_keeps_and_clean_deletes_the_earlier_files(tmp_path, monkeypatch):
    monkeypatch.setattr("scale.launch.launch_on_cpu", _fail_at("scale.extract_latents"))
    work = tmp_path / "w"
    _earlier_rehearsal(work)
    with pytest.raises(rehearse.RehearsalError, match="stage 'extract'"):
        rehearse.rehearse(work, existing="resume")
    assert (work / "run" / "checkpoints" / "last.pt").read_bytes() == b"a checkpoint"
    assert len(list((work / "images").rglob("*.png"))) == 4 * 16  # regenerated identically
    with pytest.raises(rehearse.RehearsalError, match="stage 'extract'"):
        rehearse.rehearse(work, existing="clean")
    assert not (work / "run").exists()


def test_an_extraction_that_aborts_after_complete_outputs_is_not_a_failure(tmp_path, monkeypatch):
    def launch(module, args, *rest, **kwargs):
        if module == "scale.extract_latents":
            out = Path(args[args.index("--output") + 1])
            make_latent_folder(out, n=16, shape=(4, 4, 4), num_classes=4, shard_size=8)
            return subprocess.CompletedProcess(
                args, 134, "", "terminate called without an active exception\n"
            )
        return subprocess.CompletedProcess(args, 1, "", "train.py: error: stopped here\n")

    monkeypatch.setattr("scale.launch.launch_on_cpu", launch)
    with pytest.raises(rehearse.RehearsalError, match="stage 'train'"):
        rehearse.rehearse(tmp_path / "w")
    # an incomplete extraction (a shard that does not match its digest) still fails the stage
    monkeypatch.setattr(rehearse, "_latents_complete", lambda latents: False)
    with pytest.raises(rehearse.RehearsalError, match="stage 'extract'.*status 134"):
        rehearse.rehearse(tmp_path / "w2")


def _rank_pids(folder: Path, caller: subprocess.Popen, seconds: float = 240) -> list[int]:
    """The pids both ranks of the worker write (renamed into place, so never read half
    written), waiting while the caller lives and at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not all((folder / f"pid_rank{r}").exists() for r in (0, 1)):
        assert caller.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    return [int((folder / f"pid_rank{r}").read_text()) for r in (0, 1)]


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_caller_takes_its_launch_down(tmp_path):
    """kill -9 of the process that ran launch_on_cpu: the launcher and both ranks stop too."""
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from scale.launch import launch_on_cpu; "
            "launch_on_cpu(sys.argv[1], [sys.argv[2]], 2, timeout=500)",
            str(WORKER),
            str(tmp_path),
        ],
        cwd=REPO,
        env=subprocess_env(),
    )
    ranks = _rank_pids(tmp_path, caller)
    time.sleep(0.5)
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 90
    while _pids_alive(ranks) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _pids_alive(ranks)
    for pid in left:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"ranks {left} outlived their caller"


SIGTERM_CALLER = """
import signal, sys
from pathlib import Path
from scale.launch import launch_on_cpu

def stop(signum, frame):
    raise SystemExit(128 + signum)

signal.signal(signal.SIGTERM, stop)
try:
    launch_on_cpu(sys.argv[1], [sys.argv[2]], 2, timeout=500)
except SystemExit as exc:
    Path(sys.argv[2], "said.txt").write_text(getattr(exc, "launch_output", "nothing"))
    raise
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_caller_stopped_by_sigterm_lets_the_ranks_checkpoint_first(tmp_path):
    """What scale.rehearse does on SIGTERM: the launch gets SIGTERM, the ranks checkpoint."""
    caller = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_CALLER, str(WORKER), str(tmp_path)],
        cwd=REPO,
        env=subprocess_env(),
    )
    ranks = _rank_pids(tmp_path, caller)
    caller.send_signal(signal.SIGTERM)
    assert caller.wait(120) == 128 + signal.SIGTERM
    results = [(tmp_path / f"result_rank{r}.json").read_text() for r in (0, 1)]
    assert results[0] == results[1] and '"stopped_by": "SIGTERM"' in results[0]
    assert "training stopped cleanly at step" in (tmp_path / "said.txt").read_text()
    assert not _pids_alive(ranks)
