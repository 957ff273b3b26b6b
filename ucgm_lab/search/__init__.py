"""A search for the best UCGM-S settings at each NFE budget (the paper tunes Tab. 6 by hand).

For every budget of network evaluations N, :func:`search_sampler` looks for the settings of
:func:`ucgm_lab.sample` (Alg. 2) that minimise a quality metric (lower is better):

* the order (1, or 2 with the "noise" or "data" correction), the two-step Adams-Bashforth
  multistep forms of order 1 (``multistep="velocity"`` / ``"noise"``, docs/paper-notes.md F7)
  and, where labels are given, the classifier-free guidance scale and interval;
* the time grid: Kumaraswamy shapes (a, b, c) (App. B.2.2) with the data-end gap 0.001
  ("uniform") or 0 ("even"), and for small budgets explicit time points optimised directly;
* the extrapolation ratio kappa (Alg. 2 line 5) and the stochastic ratio rho, constant or
  "auto" (App. B.1.6).

How it searches (a few hundred sampler runs per budget at most): for every structure (order,
correction, multistep form) a coordinate descent over preset values of each setting, the grid
first at rho = 0 (every deterministic candidate sees the same noise and no fresh noise, so
their comparison is paired), then a pattern search on the continuous ones (kappa, rho, a, b, c)
of the best with steps 0.1, 0.03 and 0.01, then a pattern search on explicit time points, moved
in logit(t) (steps 1, 0.3, 0.1, 0.03: fine near both ends of [0, 1]), when the grid has at most
``space.explicit_max_points`` points; the best candidate of the other kind (deterministic,
rho = 0, or stochastic, rho > 0) gets the same two pattern searches (a deterministic one with
rho kept at 0), so that both kinds reach the validation streams refined. Every candidate
is run on the same *selection* noise (and the same fresh-noise stream for rho > 0), so that the
candidates differ by their settings only.

Picking the best of hundreds of candidates on one noise favours the ones that happen to suit it
(most of all with rho > 0, whose fresh noise is not shared with the deterministic candidates,
and the pattern search's fine moves of a, b, c), so the finalists (the best ``space.finalists``,
the best of each structure with rho = 0 and with rho > 0, and per deterministic structure its
best on a preset grid and on the "even" grid) are run on ``validation_streams`` (4)
*validation* streams, each an initial noise ``validation_factor`` (2) times larger than the
selection noise with a fresh-noise seed of its own, and chosen by their mean score over the
streams (:func:`robust_choice`). A stochastic setting carries the fresh noise's variance
besides the initial noise's: the best deterministic finalist is kept unless a stochastic one
beats it by more than the standard error of their paired score differences across the streams,
and with ``consistency_ratio`` the recommendation (:func:`ucgm_lab.recommended_settings`) is
kept by the same test: another finalist replaces it only if it beats it beyond that error.
The chosen settings are then run once more on a disjoint *held-out* noise (and fresh-noise
stream), and only that run gives the reported figure.

NFE accounting is exact and mirrors :class:`~ucgm_lab.sampler.SampleOutput.nfe`: a grid of P
points costs P evaluations at order 1 and 2P - 1 at order 2 (the last step takes x^ without a
correction), a guided evaluation counts 2. A candidate is kept only if its NFE is at most the
budget (order 2 fits odd budgets exactly and uses N - 1 evaluations for even N), and every
run checks the sampler's own count against the prediction. The winners of the smaller budgets
are candidates of every larger one (as they are, and with their grid refitted), so the best
selection score never gets worse with the budget (the validation may still choose another).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# ``sample`` is looked up here by the runner, so that a test can replace it (a spy)
from ..sampler import sample as sample
from .api import _check_budgets as _check_budgets
from .api import search_sampler as search_sampler
from .budget import _PATTERN_ROUNDS as _PATTERN_ROUNDS
from .budget import _fit as _fit
from .budget import _grid_points as _grid_points
from .budget import _move_point as _move_point
from .budget import _preset_schedules as _preset_schedules
from .budget import _proper as _proper
from .budget import _readable_points as _readable_points
from .budget import _search_budget as _search_budget
from .choice import Choice as Choice
from .choice import _finalists as _finalists
from .choice import robust_choice as robust_choice
from .metrics import Metric as Metric
from .metrics import SlicedW2 as SlicedW2
from .metrics import default_metric as default_metric
from .results import BudgetResult as BudgetResult
from .results import SearchResult as SearchResult
from .runner import _BudgetSpentError as _BudgetSpentError
from .runner import _Runner as _Runner
from .settings import Rho as Rho
from .settings import SamplerSettings as SamplerSettings
from .settings import count_nfe as count_nfe
from .space import SearchSpace as SearchSpace
from .space import _is_number as _is_number
from .space import _is_unit as _is_unit

__all__ = [
    "BudgetResult",
    "Choice",
    "SamplerSettings",
    "SearchResult",
    "SearchSpace",
    "SlicedW2",
    "count_nfe",
    "default_metric",
    "robust_choice",
    "search_sampler",
]

_clock: Callable[[], float] = time.perf_counter
"""The search's clock (a module attribute of the package, which the runner and
:func:`search_sampler` look up at each call, so that tests can drive ``max_seconds`` with a fake
clock instead of wall time)."""
