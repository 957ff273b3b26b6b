"""Matplotlib figures for image experiments: grids, tables and x_hat along a trajectory.

Sample grids, sample tables (lambda x NFE) and the estimates x_hat along one sampling
trajectory (Fig. 2).

Every function returns a ``matplotlib.figure.Figure`` that is already closed in pyplot (so a
notebook shows it once, when it is the cell's value). Images are tensors in [-1, 1] of shape
(N, C, H, W) with C = 1 (grey) or 3 (RGB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from ..sampler import SampleOutput

__all__ = [
    "image_grid_figure",
    "image_table_figure",
    "tile_images",
    "trajectory_columns",
    "x_hat_grid_figure",
]


def tile_images(
    images: Tensor, nrow: int | None = None, pad: int = 1, pad_value: float | None = None
) -> np.ndarray:
    """Tile images into one array, row by row, with a gap between them.

    Args:
        images: Shape (N, C, H, W), C = 1 or 3, pixels in [-1, 1] (clamped).
        nrow: Images per row (default: ceil(sqrt(N))).
        pad: Gap in pixels.
        pad_value: Value of the gap in [0, 1] (default: 0.3, a light grey line between grey
            images drawn ink-dark on white, and 1, white, for RGB).

    Returns:
        Shape (rows * (H + pad) + pad, nrow * (W + pad) + pad) for C = 1, with a trailing
        axis of 3 for C = 3; values in [0, 1] (pixel -1 -> 0, +1 -> 1). Grey images are drawn
        with the reversed grey colour map: background (-1) white, ink (+1) black.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}.")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("images is empty.")
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / nrow))
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy().transpose(0, 2, 3, 1)
    if pad_value is None:
        pad_value = 0.3 if c == 1 else 1.0
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), float(pad_value))
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        canvas[top : top + h, left : left + w] = x[i]
    return canvas[..., 0] if c == 1 else canvas


def _show(ax, tile: np.ndarray):
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if tile.ndim == 2:
        return ax.imshow(tile, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    return ax.imshow(tile, interpolation="nearest")


def image_grid_figure(
    images: Tensor, nrow: int | None = None, title: str = "", inches: float = 4.0
) -> Figure:
    """One grid of images.

    Args:
        images: Shape (N, C, H, W) in [-1, 1].
        nrow: Images per row.
        title: Figure title.
        inches: Width of the figure in inches.
    """
    tile = tile_images(images, nrow)
    fig, ax = plt.subplots(figsize=(inches, inches * tile.shape[0] / tile.shape[1] + 0.4))
    _show(ax, tile)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _panel_grid(
    tiles: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    size: tuple[float, float],
    title: str,
    fontsize: int,
) -> Figure:
    """A closed figure of tiled panels, column labels on top and row labels on the left."""
    fig, axes = plt.subplots(len(row_labels), len(col_labels), figsize=size, squeeze=False)
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            _show(axes[i, j], tile)
            if i == 0:
                axes[i, j].set_title(col_labels[j], fontsize=fontsize)
            if j == 0:
                axes[i, j].set_ylabel(row_labels[i], fontsize=fontsize)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def image_table_figure(
    table: Mapping[str, Mapping[str, Tensor]],
    nrow: int | None = None,
    title: str = "",
    panel_inches: float = 1.8,
) -> Figure:
    """A table of image grids: one row per outer key, one column per inner key.

    E.g. ``{"lambda=0": {"NFE 1": x1, "NFE 2": x2}, "lambda=1": {...}}`` (every row with the
    same inner keys).

    Args:
        table: Row label -> column label -> images (N, C, H, W) in [-1, 1].
        nrow: Images per row inside a panel.
        title: Figure title.
        panel_inches: Size of one panel in inches.
    """
    rows = list(table)
    if not rows:
        raise ValueError("table is empty.")
    cols = list(table[rows[0]])
    for r in rows:
        if list(table[r]) != cols:
            raise ValueError(f"row {r!r} has columns {list(table[r])}, expected {cols}.")
    tiles = [[tile_images(table[r][c], nrow) for c in cols] for r in rows]
    size = (panel_inches * len(cols) + 0.8, panel_inches * len(rows) + 0.5)
    return _panel_grid(tiles, rows, cols, size, title, fontsize=10)


def trajectory_columns(num_steps: int, columns: int) -> list[int]:
    """``columns`` step indices spread evenly over ``num_steps`` steps, first and last included."""
    if num_steps < 1 or columns < 1:
        raise ValueError(f"need num_steps >= 1 and columns >= 1, got {num_steps}, {columns}.")
    return sorted({round(i * (num_steps - 1) / max(columns - 1, 1)) for i in range(columns)})


def x_hat_grid_figure(
    rows: Mapping[str, SampleOutput],
    columns: int = 8,
    images: Sequence[int] = (0,),
    panel_inches: float = 1.0,
    title: str = "",
) -> Figure:
    """Fig. 2: the estimates x^_i along one trajectory at decreasing t, one row per model.

    Args:
        rows: Row label (e.g. "lambda=0.5") -> sample output of image data (all with the same
            number of steps, ideally from the same noise and labels).
        columns: Number of steps shown (evenly chosen along the trajectory).
        images: Which images of the batch to show in every cell (stacked vertically).
        panel_inches: Size of a cell in inches.
        title: Figure title.
    """
    labels = list(rows)
    if not labels:
        raise ValueError("rows is empty.")
    first = rows[labels[0]]
    steps = first.x_hat.shape[0]
    for lab in labels:
        if rows[lab].x_hat.shape[0] != steps:
            raise ValueError(f"row {lab!r} has {rows[lab].x_hat.shape[0]} steps, expected {steps}.")
    picks = trajectory_columns(steps, columns)
    idx = list(images)
    tiles = [[tile_images(rows[lab].x_hat[i, idx], nrow=1) for i in picks] for lab in labels]
    names = [f"t={first.times[i].item():.2f}" for i in picks]
    size = (panel_inches * len(picks) + 0.8, panel_inches * len(idx) * len(labels) + 0.6)
    return _panel_grid(tiles, labels, names, size, title, fontsize=9)
