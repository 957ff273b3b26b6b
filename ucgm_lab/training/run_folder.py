"""One run per checkpoint folder: a lock file and the check that a new run replaces nothing.

:meth:`Trainer.fit <ucgm_lab.training.Trainer.fit>` claims its ``checkpoint_dir`` for the length
of the call (:func:`claim_checkpoint_dir`):

* **Lock.** The main process creates ``run.lock`` atomically (``O_CREAT | O_EXCL``) holding its
  pid, host and process start time, and deletes it when ``fit`` returns or raises. A second
  process that finds the lock stops with a message naming the owner. A lock whose owner is dead
  (same host; the pid is gone, or now belongs to a process started later) is stale and taken
  over; a lock from another host is never taken over (its owner cannot be checked).
* **Another run's files.** A run that did not resume from a checkpoint in the folder (nor save
  one there) and finds ``last.pt`` or ``step_*.pt`` in it is refused before anything is
  written: its first save would replace ``last.pt`` and its numbered checkpoints would be pruned
  as older than the other run's. The ways on: resume the run, choose a new folder, or
  ``TrainerConfig(overwrite=True)``, which deletes the other run's checkpoints first.

Only the main process touches the folder; its verdict is broadcast so that every rank raises the
same :class:`RunFolderError` (none waits in a collective for a rank that stopped).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError
from .collectives import broadcast_object

__all__ = [
    "LOCK_NAME",
    "RunFolderError",
    "RunFolderLock",
    "check_new_run",
    "claim_checkpoint_dir",
    "previous_run_files",
]

LOCK_NAME = "run.lock"
_NUMBERED = re.compile(r"^step_(\d+)\.pt$")


class RunFolderError(CheckpointError):
    """The checkpoint folder is in use by another process, or holds another run's checkpoints."""


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunFolderLock:
    """An exclusive lock on a folder: the file ``folder/run.lock`` (see the module docstring).

    Args:
        folder: The folder to lock (created if missing).
        name: The lock file's name (another name locks one file of the folder, e.g.
            ``settings.json.lock``).
    """

    def __init__(self, folder: str | Path, name: str = LOCK_NAME) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.token = uuid.uuid4().hex
        self.held = False

    def _content(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "start": _process_start(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "token": self.token,
        }

    def read(self) -> dict[str, Any] | None:
        """The lock file's content, {} when unreadable, None when there is no lock."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            owner = json.loads(text)
        except ValueError:
            return {}
        return owner if isinstance(owner, dict) else {}

    def _stale(self, owner: dict[str, Any]) -> bool:
        """Whether the owner is a dead process on this host."""
        pid, host = owner.get("pid"), owner.get("host")
        if not isinstance(pid, int) or host != socket.gethostname():
            return False
        if not _alive(pid):
            return True
        start = owner.get("start")
        return start is not None and _process_start(pid) not in (None, start)

    def acquire(self, timeout: float = 0.0) -> None:
        """Create the lock file, or raise RunFolderError naming its owner.

        Args:
            timeout: Seconds to wait for a live owner to release it (0: do not wait).

        Raises:
            RunFolderError: Another live process (or a process on another host) holds it.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        for _ in range(3 + int(timeout * 20)):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.read()
                if owner is None:
                    continue  # released in between: try again
                if owner and self._stale(owner):
                    self.path.unlink(missing_ok=True)
                    continue
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise RunFolderError(self._held_message(owner)) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(self._content(), fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return
        raise RunFolderError(
            f"Could not create the lock {self.path}: other processes keep taking it. Make sure "
            "only one run writes into this folder."
        )

    def _held_message(self, owner: dict[str, Any]) -> str:
        if not owner:
            who = "a process that left an unreadable lock file"
        else:
            who = (
                f"process {owner.get('pid')} on host {owner.get('host')} "
                f"(since {owner.get('since', '?')})"
            )
        if self.path.name != LOCK_NAME:
            return (
                f"{self.path.with_suffix('')} is being written by {who}, and the wait for it "
                f"ended. Try again when it is done; if no process writes it any more, delete "
                f"{self.path}."
            )
        return (
            f"The checkpoint folder {self.folder} is in use by {who}: two runs writing one folder "
            "would replace each other's checkpoints. Wait for that run to finish, or choose "
            f"another checkpoint_dir. If no run uses the folder any more (e.g. its machine "
            f"crashed), delete {self.path}."
        )

    def release(self) -> None:
        """Delete the lock file if it is still this lock's (idempotent)."""
        if not self.held:
            return
        self.held = False
        owner = self.read()
        if owner and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunFolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def previous_run_files(folder: str | Path) -> list[Path]:
    """The checkpoints of a run in ``folder``: ``last.pt`` and ``step_*.pt``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name == "last.pt" or _NUMBERED.match(p.name) is not None
    )


def check_new_run(folder: str | Path, owned: bool, overwrite: bool) -> list[Path]:
    """Refuse to start a run in a folder that holds another run's checkpoints.

    Args:
        folder: The checkpoint folder.
        owned: The run resumed from (or saved) a checkpoint in this folder.
        overwrite: Replace the other run: its checkpoints are deleted.

    Returns:
        The files deleted (with ``overwrite``).

    Raises:
        RunFolderError: The folder holds checkpoints of another run and ``overwrite`` is False.
    """
    files = [] if owned else previous_run_files(folder)
    if not files:
        return []
    if not overwrite:
        names = ", ".join(p.name for p in files[:4]) + (" ..." if len(files) > 4 else "")
        raise RunFolderError(
            f"The checkpoint folder {folder} holds another run ({names}); a new run there would "
            "replace its last.pt and prune its numbered checkpoints. Resume it "
            f"(trainer.resume('{Path(folder) / 'last.pt'}') before fit; scale/train.py: "
            "--resume auto), choose a new checkpoint_dir, or pass TrainerConfig(overwrite=True) "
            "to delete it and start over. Nothing was written."
        )
    for path in files:
        path.unlink(missing_ok=True)
    return files


def _agree(error: str | None, accelerator: Any) -> str | None:
    """The main process's error message on every rank (a collective when there are several)."""
    if getattr(accelerator, "num_processes", 1) <= 1:
        return error
    return broadcast_object(error, src=0, device=accelerator.device)


@contextlib.contextmanager
def claim_checkpoint_dir(
    folder: str | Path | None, accelerator: Any, owned: bool, overwrite: bool
) -> Iterator[list[Path]]:
    """Hold the folder's lock and check it for another run for the length of the block.

    Every process enters the block or every process raises the main process's
    :class:`RunFolderError`. Yields the files that ``overwrite`` deleted.
    """
    if not folder:
        yield []
        return
    lock = RunFolderLock(folder)
    error: str | None = None
    removed: list[Path] = []
    if accelerator.is_main_process:
        try:
            lock.acquire()
            removed = check_new_run(folder, owned, overwrite)
        except RunFolderError as exc:
            lock.release()
            error = str(exc)
        except OSError as exc:  # reported on every rank, so that none waits in a collective
            lock.release()
            error = f"Cannot claim the checkpoint folder {folder} ({exc.strerror or exc})."
    error = _agree(error, accelerator)
    if error is not None:
        raise RunFolderError(error)
    try:
        yield removed
    finally:
        lock.release()
