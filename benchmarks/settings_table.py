"""Ratios, targets and verdicts of the sampler-settings benchmarks (no measuring here).

``benchmarks/recommended_settings.py`` scores, per model and NFE, several samplers on the same
noise draws: ``rows[sampler][nfe index]`` is the list of one score per draw (lower is
better). This module turns such rows into the ratios against the best of diffusers'
DPM-Solver++ 2M and UniPC and into verdicts against a target ratio (1 for the recommendation:
never worse; 0.8 for the searched settings), and renders the markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Rows = dict[str, list[list[float]]]
"""sampler label -> per NFE, the score of every noise draw."""

PEERS = ("DPM-Solver++ 2M", "UniPC")
"""The solvers users pick: each ratio divides by the better of the two (by the mean)."""
RECOMMENDED = "UCGM-S recommended"
SEARCHED = "UCGM-S searched"
ODE = "exact ODE (UniPC, 64 NFE; every column)"
"""The model's own error: what a sampler that solves the ODE exactly scores."""
DATA = "data (fresh data points)"
"""Real data scored like a sampler's output: the metric's floor. Where it is above a target
ratio, no sampler can meet the target without scoring better than the data itself. (The
digits Frechet distance compares with the train split, and its floor is the test split: a
model that learned the train split can score below it.)"""
TARGETS = {RECOMMENDED: 1.0, SEARCHED: 0.8}
"""The most a sampler's score may be, as a ratio of the best peer's, at every NFE."""


@dataclass(frozen=True)
class Ratio:
    """One sampler's score over the best peer's at one NFE.

    Attributes:
        mean: Mean score over the draws / the best peer's mean score.
        low: The lowest per-draw ratio (the sampler's score / that peer's on the same noise).
        high: The highest per-draw ratio.
    """

    mean: float
    low: float
    high: float

    def text(self) -> str:
        """``0.82 [0.72-0.92]``."""
        return f"{self.mean:.2f} [{self.low:.2f}-{self.high:.2f}]"


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean (of a non-empty sequence)."""
    if not values:
        raise ValueError("mean of no values: every score needs at least one draw.")
    return sum(values) / len(values)


def ratios(rows: Rows, label: str = RECOMMENDED) -> list[Ratio]:
    """Per NFE, ``label``'s score over the best of DPM-Solver++ 2M and UniPC.

    The best peer is the one with the lower mean over the draws; a draw's ratio divides
    ``label``'s score by that peer's score on the same noise.

    Raises:
        KeyError: ``label`` or a peer is not in ``rows`` (with the labels that are).
        ValueError: Draw or NFE counts that differ between the sampler and the peers.
    """
    missing = [k for k in (label, *PEERS) if k not in rows]
    if missing:
        raise KeyError(f"rows lack {missing}; they have {sorted(rows)}.")
    out = []
    for own, dpm, uni in zip(rows[label], rows[PEERS[0]], rows[PEERS[1]], strict=True):
        peer = dpm if mean(dpm) <= mean(uni) else uni
        if len(own) != len(peer):
            raise ValueError(
                f"{label} has {len(own)} draws at an NFE where the peers have {len(peer)}."
            )
        per_draw = [r / p for r, p in zip(own, peer, strict=True)]
        out.append(Ratio(mean(own) / mean(peer), min(per_draw), max(per_draw)))
    return out


def verdict(ratio: Sequence[Ratio], target: float = 1.0) -> str:
    """The verdict of one sampler on one model against ``target``.

    "met": the mean ratio is at most ``target`` at every NFE; "MISSED": at some NFE the ratio
    is above ``target`` on every draw; otherwise "within noise" (a mean above the target at
    some NFE, but a draw at or below it there).
    """
    if all(r.mean <= target for r in ratio):
        return "met"
    if any(r.low > target for r in ratio):
        return "MISSED"
    return "within noise"


def missed_nfes(ratio: Sequence[Ratio], nfes: Sequence[int], target: float) -> list[int]:
    """The NFE budgets whose mean ratio is above ``target``."""
    return [n for n, r in zip(nfes, ratio, strict=True) if r.mean > target]


def floor_note(rows: Rows, nfes: Sequence[int], missed: Sequence[int], target: float) -> str:
    """Which missed budgets no ODE solver (the exact ODE above ``target``) and no sampler at all
    (fresh data above ``target``) could meet, e.g. ``"; at NFE 16 the exact ODE is above 0.8"``.
    """
    parts = []
    for row, what in ((ODE, "the exact ODE"), (DATA, "fresh data")):
        if row not in rows or not missed:
            continue
        above = [n for n in missed if n in missed_nfes(ratios(rows, row), nfes, target)]
        if above:
            parts.append(f"{what} above {target:g} at NFE {', '.join(map(str, above))}")
    return f"; {'; '.join(parts)}" if parts else ""


def ratio_lines(
    results: dict[str, Rows], where: dict[str, str], label: str, nfes: Sequence[int]
) -> list[str]:
    """One markdown list line per model: ``label``'s ratios per NFE and its verdict.

    Args:
        results: model -> its rows (models without ``label`` are left out).
        where: model -> "derived" / "seen" / "held out".
        label: RECOMMENDED or SEARCHED (their target is in TARGETS).
        nfes: The NFE budgets, in the rows' order.
    """
    target = TARGETS[label]
    lines = []
    for name, rows in results.items():
        if label not in rows:
            continue
        ratio = ratios(rows, label)
        missed = missed_nfes(ratio, nfes, target)
        note = f", above {target:g} at NFE {', '.join(map(str, missed))}" if missed else ""
        marks = ", ".join(r.text() for r in ratio)
        floor = ""
        for row, what in ((ODE, "exact ODE"), (DATA, "fresh data")):
            if row in rows:
                floor += f"; {what}: " + ", ".join(f"{r.mean:.2f}" for r in ratios(rows, row))
        note += floor_note(rows, nfes, missed, target)
        lines.append(f"- {name} ({where[name]}): {marks} ({verdict(ratio, target)}{note}){floor}")
    return lines


def summary(results: dict[str, Rows], label: str) -> str:
    """``label`` met its target on M of N models (and "within noise" on K)."""
    target = TARGETS[label]
    verdicts = [verdict(ratios(rows, label), target) for rows in results.values() if label in rows]
    if not verdicts:
        return f"{label}: not measured."
    met, noise = verdicts.count("met"), verdicts.count("within noise")
    return (
        f"{label} at most {target:g}x the best of DPM-Solver++ 2M / UniPC at every NFE on "
        f"{met} of {len(verdicts)} models ({noise} more within the draws' spread)."
    )
