"""search-settings' read-modify-write: locked, atomic on a full disk, the file's usual mode."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ucgm_lab.schedules import KumaraswamySchedule
from ucgm_lab.search import SamplerSettings
from ucgm_lab.training import CheckpointError
from ucgm_lab.training.run_folder import RunFolderError
from ucgm_lab.zoo.settings import load_settings_file, merge_settings_file

ROOT = Path(__file__).resolve().parents[3]
MINE = {
    "checkerboard-linear-lam0": {
        2: SamplerSettings(nfe=2, steps=2, kappa=0.5, schedule=KumaraswamySchedule())
    }
}
THEIRS = {"moons-linear-lam0": {"4": {"steps": 4, "kappa": 0.25}}}

HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from ucgm_lab.training.run_folder import RunFolderLock
    path = Path(sys.argv[1])
    lock = RunFolderLock(path.parent, name=path.name + ".lock")
    lock.acquire()
    print("locked", flush=True)
    time.sleep(1.5)
    table = json.loads(path.read_text())
    table.update(json.loads(sys.argv[2]))
    path.write_text(json.dumps(table))
    lock.release()
    """
)


def test_a_second_writer_waits_for_the_first_and_keeps_its_entry(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{}")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), json.dumps(THEIRS)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    merge_settings_file(path, MINE)  # waits for the holder's write, then reads it
    assert holder.wait(30) == 0
    table = load_settings_file(path)
    assert set(table) == {"checkerboard-linear-lam0", "moons-linear-lam0"}
    assert not (tmp_path / "settings.json.lock").exists()


def test_a_lock_held_past_the_wait_is_a_one_line_error(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{}")
    lock = tmp_path / "settings.json.lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    with pytest.raises(RunFolderError, match=f"is being written by process {os.getppid()}"):
        merge_settings_file(path, MINE, wait=0.2)
    assert path.read_text() == "{}"


def test_a_full_disk_leaves_the_old_file_no_temporary_and_a_one_line_error(
    tmp_path, monkeypatch, capsys
):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(THEIRS))
    real = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*Is the disk full") as info:
        merge_settings_file(path, MINE)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]  # no *.tmp, no lock
    assert json.loads(path.read_text()) == THEIRS
    # the command line: one line on stderr, exit status 2 (the search is skipped here)
    import ucgm_lab.zoo.settings as settings_module
    from ucgm_lab.zoo.__main__ import main as zoo_main

    monkeypatch.setattr(
        settings_module, "search_zoo_settings", lambda *a, **k: merge_settings_file(path, MINE)
    )
    with pytest.raises(SystemExit) as exit_info:
        zoo_main(["search-settings", "--only", "checkerboard-linear-lam0", "--out", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m ucgm_lab.zoo search-settings: error: Could not write")
    assert len(err.splitlines()) == 1


def test_the_written_file_has_the_usual_mode(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    old = os.umask(0o022)
    try:
        merge_settings_file(path, MINE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert set(load_settings_file(path)) == {"checkerboard-linear-lam0"}
