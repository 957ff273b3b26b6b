"""Quality versus NFE of the peer comparison (matplotlib, log-log, with the data floor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..evaluation import QualityPoint
from ..metrics.two_d import FloorResult

__all__ = ["plot_quality_vs_nfe"]


def plot_quality_vs_nfe(
    points: Sequence[QualityPoint],
    floor: FloorResult | None = None,
    ax: Any = None,
    title: str | None = None,
    metric_name: str = "sliced W2 to data",
) -> Any:
    """Quality versus NFE on log-log axes, with the data floor as a grey band.

    Peers are grey/black dashed lines with squares; UCGM-S curves are coloured by kappa:
    solid with circles for order 1, dash-dotted with up-triangles for order 2 with the "data"
    correction, dotted with down-triangles for the paper's ("noise") correction.

    Args:
        points: Quality points of one model.
        floor: The data floor (mean +- 2 std drawn as a band, the mean dotted).
        ax: A matplotlib axes (default: a new figure).
        title: Axes title.
        metric_name: Y-axis label.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    curves: dict[str, list[QualityPoint]] = {}
    for p in points:
        curves.setdefault(p.sampler, []).append(p)
    kappas = sorted({p.kappa for p in points if p.kappa is not None})
    peer_colors = ["0.0", "0.35", "0.6", "0.75"]
    n_peer = 0
    for sampler, pts in curves.items():
        pts = sorted(pts, key=lambda q: q.nfe)
        first = pts[0]
        if first.family == "peer":
            style = {"ls": "--", "marker": "s", "color": peer_colors[n_peer % len(peer_colors)]}
            n_peer += 1
        else:
            color = f"C{kappas.index(first.kappa) % 10}" if first.kappa in kappas else None
            ls, marker = "-", "o"
            if first.order == 2:
                ls, marker = ("-.", "^") if first.correction == "data" else (":", "v")
            style = {"ls": ls, "marker": marker, "color": color}
        ax.plot(
            [q.nfe for q in pts], [q.score for q in pts], ms=3.5, lw=1.4, label=sampler, **style
        )
    if floor is not None:
        lo = max(floor.mean - 2 * floor.std, 0.0)
        ax.axhspan(lo, floor.mean + 2 * floor.std, color="0.88", zorder=0)
        ax.axhline(floor.mean, color="0.4", lw=1, ls=":", label="data floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NFE (network evaluations per sample)")
    ax.set_ylabel(metric_name)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return ax
