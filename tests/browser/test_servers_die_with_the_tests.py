"""A killed test run leaves no JupyterLab server or kernel behind (tests/browser/children.py).

A harness process starts a :class:`~tests.browser.lab.LabServer` and one kernel in it, as the
browser fixtures do, and is then killed as a CI timeout or a user would kill pytest: SIGKILL
(no handler runs: ``PR_SET_PDEATHSIG`` must do it), SIGTERM and SIGHUP. The server's port must
close and the server and its kernel must be gone within a deadline that is generous for a
loaded machine; whatever is left is killed by the test itself, so a failure leaves no orphan.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .lab import ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

DEADLINE_S = 60.0
"""How long the server and its kernel may take to go (they take a few seconds)."""

HARNESS = r"""
import json, os, signal, sys, time, urllib.request
from pathlib import Path
from tests.browser.lab import LabServer

# A test run in a terminal: SIGHUP has its default action. Under nohup (SIGHUP ignored, which a
# child inherits) a hang-up is meant to change nothing, and children.py leaves it alone.
signal.signal(signal.SIGHUP, signal.SIG_DFL)

root, home = Path(sys.argv[1]), Path(sys.argv[2])
server = LabServer(root, home, env={"OMP_NUM_THREADS": "1"}).start()
request = urllib.request.Request(
    f"{server.url}/api/kernels?token={server.token}",
    data=json.dumps({"name": "python3"}).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
urllib.request.urlopen(request, timeout=120).read()
print(json.dumps({"pid": server.process.pid, "port": server.port}), flush=True)
time.sleep(3600)
"""


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc: every process's parent)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents[int(entry)] = st[0]
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        frontier += kids
    return found


def _alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == started and st[1] != "Z"  # same process, not a zombie


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_the_server_and_its_kernel_die_with_the_test_process(tmp_path, sig):
    (tmp_path / "root").mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(tmp_path / "root"), str(tmp_path / "home")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started: dict[int, int] = {}
    try:
        ready, _, _ = select.select([harness.stdout], [], [], 240)
        line = harness.stdout.readline() if ready else b""
        if not line:
            why = "still starting" if harness.poll() is None else harness.stderr.read().decode()
            pytest.fail(f"the harness did not start JupyterLab and a kernel in 240 s: {why}")
        info = json.loads(line)
        server, port = info["pid"], info["port"]
        pids = [server, *_descendants(server)]
        started = {p: st[2] for p in pids if (st := _stat(p)) is not None}
        assert len(started) >= 2, f"expected the server and a kernel, found {started}"
        assert _port_open(port)

        harness.send_signal(sig)
        harness.wait(timeout=60)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            left = [p for p, t in started.items() if _alive(p, t)]
            if not left and not _port_open(port):
                break
            time.sleep(0.2)
        left = [p for p, t in started.items() if _alive(p, t)]
        assert not left, f"{sig.name} of the test process left these processes running: {left}"
        assert not _port_open(port), f"port {port} still answers after {sig.name}"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        for p, t in started.items():
            if _alive(p, t):
                os.kill(p, signal.SIGKILL)
