"""The named TiT sizes and the ``gradient_checkpointing`` setting.

Of a :class:`~ucgm_lab.networks.tit.TiT`: ``TiT-XL/2`` and the other names, and the block
period that ``gradient_checkpointing`` sets.
"""

from __future__ import annotations

import re

__all__ = ["TIT_PATCH_SIZES", "TIT_SIZES", "checkpoint_every", "checkpoint_setting", "tit_size"]

TIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 32, 2),
    "S": (12, 384, 6),
    "B": (12, 768, 12),
    "L": (24, 1024, 16),
    "XL": (28, 1152, 16),
}
"""Named sizes: ``name -> (depth, hidden_size, num_heads)`` (B, L, XL: docs/paper-notes.md, R2)."""

TIT_PATCH_SIZES = (1, 2, 4)
"""Patch sizes of the named models (``TiT-XL/1``, ``TiT-XL/2``, ``TiT-XL/4``)."""

_NAME = re.compile(r"^TiT-(?P<size>[A-Za-z]+)/(?P<patch>\d+)$")


def checkpoint_setting(value: bool | int) -> bool | int:
    """Validate ``gradient_checkpointing``: a bool, or an integer k >= 0 (every k-th block).

    Returns:
        False (none), True (every block) or an integer k >= 2.

    Raises:
        ValueError: If the value is neither a bool nor a non-negative integer.
    """
    if isinstance(value, bool):
        return value
    if not isinstance(value, int) or value < 0:
        raise ValueError(
            "gradient_checkpointing must be True, False or an integer k >= 0 (checkpoint every "
            f"k-th block; 0: none, 1: all), got {value!r}."
        )
    return value if value >= 2 else bool(value)


def checkpoint_every(value: bool | int) -> int:
    """The block period k of a ``gradient_checkpointing`` setting (0: no checkpointing)."""
    return int(value)


def tit_size(name: str) -> dict[str, int]:
    """Architecture of a named model such as ``"TiT-XL/2"`` or ``"TiT-tiny/1"``.

    Returns:
        ``{"depth", "hidden_size", "num_heads", "patch_size"}``.

    Raises:
        ValueError: If the name is not ``TiT-<size>/<patch>`` with a known size.
    """
    match = _NAME.match(name) if isinstance(name, str) else None
    known = ", ".join(f"TiT-{s}/{p}" for s in TIT_SIZES for p in TIT_PATCH_SIZES)
    if match is None or match["size"] not in TIT_SIZES:
        raise ValueError(f"unknown TiT model {name!r}; known names: {known}.")
    depth, hidden, heads = TIT_SIZES[match["size"]]
    return {
        "depth": depth,
        "hidden_size": hidden,
        "num_heads": heads,
        "patch_size": int(match["patch"]),
    }
