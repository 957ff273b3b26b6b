"""Write a benchmark's measured section into a markdown file of docs/, replacing its last run.

A section is delimited by ``<!-- BEGIN name -->`` and ``<!-- END name -->``; a new name is
appended at the end of the file (created with a title when missing). Only that section changes,
so every benchmark script keeps its own part of ``docs/benchmarks.md`` current.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["write_section"]

ROOT = Path(__file__).resolve().parents[1]


def write_section(name: str, markdown: str, path: str | Path = "docs/benchmarks.md") -> Path:
    """Replace (or append) the section ``name`` of ``path`` with ``markdown``.

    Args:
        name: The section's key (letters, digits, ``-``, ``_``, ``.``).
        markdown: The section's text (written as given, between the markers).
        path: The file, relative to the repository root unless absolute.

    Returns:
        The file written.

    Raises:
        ValueError: A name with other characters.
    """
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"section names may hold letters, digits, '-', '_' and '.', got {name!r}.")
    file = Path(path) if Path(path).is_absolute() else ROOT / path
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = file.read_text(encoding="utf-8") if file.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    return file
