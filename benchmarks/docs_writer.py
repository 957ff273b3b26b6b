"""Write a measured table into docs/benchmarks.md, between marker comments, with date, machine and load.

Every figure in the docs is written by the script that measured it. A script calls
:func:`write_section` with its markdown; the section lands between

    <!-- BEGIN name -->
    ...
    <!-- END name -->

in the docs file (replacing what was there, or appended at the end when the markers are new),
headed by one line saying when, on what machine, under what load and by which command it was
measured. Nothing else in the file changes, so several scripts share one file.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from harness import Machine, machine_info  # noqa: E402

__all__ = ["REPO_ROOT", "provenance_line", "write_section"]

REPO_ROOT = HERE.parent
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _command() -> str:
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is None or not script.name or script.suffix != ".py":
        return shlex.join(["python", *sys.argv])
    try:
        shown = str(script.resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(script)
    return shlex.join(["python", shown, *sys.argv[1:]])


def provenance_line(machine: Machine | None = None, command: str | None = None) -> str:
    """``Measured <UTC date> on <CPU, cores, torch, threads>; load ...; command: `...`.``

    Args:
        machine: :func:`harness.machine_info` taken when the measurement started (its load
            average then, and now as the load after); default: taken now.
        command: The command that measured it (default: this process's command line).
    """
    info = (machine or machine_info()).finish()
    return f"Measured {info.describe()}; command: `{command or _command()}`."


def write_section(
    name: str,
    markdown: str,
    path: str | Path = "docs/benchmarks.md",
    command: str | None = None,
    machine: Machine | None = None,
) -> Path:
    """Put ``markdown`` between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in ``path``.

    The section starts with :func:`provenance_line` (date, machine, load, the command that ran).
    An existing section of that name is replaced; a new one is appended. The file is created
    when missing.

    Args:
        name: The section's marker name: letters, digits, '.', '_' and '-'.
        markdown: The section's body (tables, a sentence or two).
        path: The docs file; a relative path is taken from the repository root.
        command: The command that measured it (default: this process's command line).
        machine: :func:`harness.machine_info` from the start of the measurement, so the line
            gives the load before and after it (default: taken when writing).

    Returns:
        The path written.

    Raises:
        ValueError: A bad name, or a file whose markers of that name are not one BEGIN before
            one END.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"section name must be letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}."
        )
    target = Path(path)
    if not target.is_absolute():
        target = REPO_ROOT / target
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    body = f"{begin}\n{provenance_line(machine, command)}\n\n{markdown.strip()}\n{end}"
    text = target.read_text(encoding="utf-8") if target.is_file() else ""
    starts, ends = text.count(begin), text.count(end)
    if starts == ends == 0:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + body + "\n"
    elif starts == ends == 1 and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + body + tail
    else:
        raise ValueError(
            f"{target}: expected one {begin!r} before one {end!r}, found {starts} and {ends}; "
            "fix the markers by hand."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
