"""The CPU launcher: a rendezvous port taken before the launch listens on it (scale/launch.py)."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import scale.launch as launch
from scale.launch import launch_on_cpu, port_was_taken

# The launch's first port is held by another socket: bound, not listening, so that accelerate's
# own check (it connects) finds it free and the rendezvous's listen fails, as when another
# program binds the port between the pick and the rendezvous.
WORKER = """\
from accelerate import Accelerator
acc = Accelerator(cpu=True)
acc.wait_for_everyone()
print(f"rank {acc.process_index} of {acc.num_processes}", flush=True)
"""
TORCH_2_3 = (
    "torch.distributed.DistNetworkError: The server socket has failed to listen on any local "
    "network address. port: {port}, useIpv6: false, code: -98, name: EADDRINUSE, message: "
    "address already in use"
)
TORCH_2_0 = (
    "RuntimeError: The server socket has failed to listen on any local network address. The "
    "server socket has failed to bind to [::]:{port} (errno: 98 - Address already in use)."
)


def _done(code: int, stderr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["accelerate"], code, "", stderr)


@pytest.mark.parametrize("message", [TORCH_2_3, TORCH_2_0])
def test_a_taken_rendezvous_port_is_told_from_other_failures(message: str) -> None:
    assert port_was_taken(_done(1, "Traceback ...\n" + message.format(port=29517)), 29517)
    # another port, a success, or a worker's own socket error: not the rendezvous's port
    assert not port_was_taken(_done(1, message.format(port=29517)), 2951)
    assert not port_was_taken(_done(0, message.format(port=29517)), 29517)
    worker = "OSError: [Errno 98] Address already in use (port 29517 of my server)"
    assert not port_was_taken(_done(1, worker), 29517)
    assert not port_was_taken(_done(1, "ValueError: bad config"), 29517)


def test_bad_tries_are_refused() -> None:
    with pytest.raises(ValueError, match="port_tries must be a positive integer"):
        launch_on_cpu("x.py", [], 2, port_tries=0)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port bound by this process, not listening (accelerate's check finds it free)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


def _ports(first: int, monkeypatch: pytest.MonkeyPatch, then_free: bool) -> list[int]:
    """``free_port`` hands out ``first`` once (or always), then free ports; returns its picks."""
    picks: list[int] = []
    real = launch.free_port

    def pick() -> int:
        picks.append(first if not picks or not then_free else real())
        return picks[-1]

    monkeypatch.setattr(launch, "free_port", pick)
    return picks


@pytest.mark.slow
def test_a_launch_whose_port_was_taken_runs_on_a_fresh_one(
    held_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    picks = _ports(held_port, monkeypatch, then_free=True)
    done = launch_on_cpu(str(script), [], 2, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    # the two workers share one stdout: their lines can interleave ("rank 0 of 2rank 1 of 2")
    ranks = sorted(re.findall(r"rank \d+ of \d+", done.stdout))
    assert ranks == ["rank 0 of 2", "rank 1 of 2"], done.stdout
    assert len(picks) == 2 and picks[0] == held_port != picks[1]
    said = capsys.readouterr().err
    assert f"port {held_port} was taken" in said and "2 of 3" in said


@pytest.mark.slow
def test_a_port_taken_on_every_try_is_reported_not_hidden(
    held_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    picks = _ports(held_port, monkeypatch, then_free=False)
    done = launch_on_cpu(str(script), [], 2, timeout=240, port_tries=2)
    assert done.returncode != 0 and picks == [held_port, held_port]
    first = done.stderr.splitlines()[0]
    assert first.startswith("scale.launch: the rendezvous port was taken") and "2 times" in first
    assert "rank 0" not in done.stdout  # no worker started
