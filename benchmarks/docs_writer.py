"""Write a measured table into ``docs/benchmarks.md``: one marked section per script.

Every figure in the project's documents comes from the script that measured it. A script
renders its result as markdown and calls :func:`write_section`, which puts it between the
markers ``<!-- BEGIN name -->`` and ``<!-- END name -->`` of ``docs/benchmarks.md`` (appending
the section when it is not there yet) with one line saying when, on what machine and under
which load it was measured, and which command wrote it. Edits between the markers are
overwritten by the next run; text outside them is kept.

    from docs_writer import write_section
    write_section("digits", table, command="python benchmarks/images_quality.py --seeds 0 1 2")
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import Machine, machine_info  # noqa: E402

DOCS = HERE.parent / "docs" / "benchmarks.md"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER = (
    "# Measurements\n\n"
    "Every table below is written by the script named in its section (between its markers;\n"
    "a rerun replaces it), with the date, the machine and its load. Rerun a script to measure\n"
    "your own machine.\n"
)


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name``."""
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def provenance(command: str | None, machine: Machine | None = None) -> str:
    """The line under a section's title: which command, when, on what, under which load."""
    machine = machine_info() if machine is None else machine
    by = f"Written by `{command}`, measured " if command else "Measured "
    return by + machine.describe() + "."


def write_section(
    name: str,
    markdown: str,
    path: str | os.PathLike[str] = DOCS,
    *,
    command: str | None = None,
    machine: Machine | None = None,
) -> Path:
    """Put ``markdown`` between the markers of section ``name`` in ``path``.

    Args:
        name: The section's id: lower-case letters, digits, ``-`` and ``_``.
        markdown: The section's body (a title, a table, notes). The provenance line (date,
            machine, load, and ``command`` if given) is inserted after its first line when
            that line is a markdown title, else before it.
        path: The document (created with a short header when missing).
        command: The command line that produced the figures, as a user would type it.
        machine: Where it was measured (default: this machine now, see ``harness``).

    Returns:
        The path written. The file is replaced atomically (a temporary file in the same folder,
        then ``os.replace``), so a killed run leaves the old document whole.

    Raises:
        ValueError: A bad ``name``, or markers of the section inside ``markdown``.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"section name {name!r} is not allowed: use 1-64 lower-case letters, digits, '-' or '_'"
        )
    begin, end = markers(name)
    if begin in markdown or end in markdown:
        raise ValueError(f"the markdown of section {name!r} must not contain its own markers")
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    lines = markdown.strip("\n").split("\n")
    stamp = provenance(command, machine)
    if lines and lines[0].startswith("#"):
        body = "\n".join([lines[0], "", stamp, *lines[1:]])
    else:
        body = "\n".join([stamp, "", *lines])
    block = (
        f"{begin}\n<!-- generated: edits between these markers are overwritten -->\n{body}\n{end}"
    )
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
