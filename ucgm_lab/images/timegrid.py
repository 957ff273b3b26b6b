"""The even sampling grid of the image lessons, as explicit time points.

The library's "uniform" schedule with N points runs from t = 0.999 down to t = 0.001 and
appends 0 (as the reference implementation does), so its last evaluation sits at t = 0.001,
where the state already is the data estimate: N evaluations give N - 1 useful steps, and a
2-step few-step model sampled with ``steps=2`` is a 1-step model. Sweeps over small NFE
therefore use the "even" grid of the explorers (``ucgm_lab.widgets.SCHEDULES["even"]``,
``KumaraswamySchedule(gap_data=0)``): u = 0.001, ..., spaced by 0.999 / N, t = 1 - u, i.e.

    t = 0.999, about 1 - 1/N, ..., about 1/N  (then 0),

which for N = 2 is the paper's few-step grid {1, 0.5} (Tab. 6 uses 0.3 to 0.6 for the second
point) with the first point kept below 1 (docs/paper-notes.md, E1 and F1). The points are returned as a
list so that they can be stored in zoo metadata and passed as ``time_points=``.
"""

from __future__ import annotations

from ..schedules import KumaraswamySchedule

__all__ = ["EVEN_SCHEDULE", "even_time_points"]

EVEN_SCHEDULE = KumaraswamySchedule.even()
"""t_i = 1 - u_i with u evenly spaced from 0.001, no evaluation wasted at t ~ 0."""


def even_time_points(nfe: int) -> list[float]:
    """The even grid's sampling times for ``nfe`` evaluations (the sampler appends 0).

    Args:
        nfe: Number of network evaluations N >= 1.

    Returns:
        N decreasing times from 0.999 (rounded to 6 decimals), e.g. ``[0.999, 0.4995]`` for
        N = 2 and ``[0.999, 0.666, 0.333]`` for N = 3.
    """
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer, got {nfe!r}.")
    return [round(v, 6) for v in EVEN_SCHEDULE.time_points(nfe)[:-1].tolist()]
