"""What the sampler-settings search returns: one :class:`BudgetResult` per NFE budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import SamplerSettings

__all__ = ["BudgetResult", "SearchResult"]


@dataclass(frozen=True)
class BudgetResult:
    """The search's outcome for one NFE budget.

    Attributes:
        budget: The requested NFE budget.
        settings: The best settings (their ``nfe`` is at most ``budget``).
        selection_score: Its metric on the selection noise (what the search descended on).
        validation_score: Its mean metric over the validation streams (what chose it among
            the finalists, :func:`robust_choice`); inf when ``max_seconds`` left no time to
            validate (the selection's best is then kept).
        validation_se: The standard error of that mean across the streams (0 with one stream).
        holdout_score: Its metric on the held-out noise (the figure to report).
        default_holdout_score: ``sample``'s defaults (order 1, kappa 0, rho 0, "even"
            grid, ``steps = budget``) on the same held-out noise.
        trials: Distinct settings run on the selection noise.
        seconds: Wall time spent on this budget.
    """

    budget: int
    settings: SamplerSettings
    selection_score: float
    validation_score: float
    holdout_score: float
    default_holdout_score: float
    trials: int
    seconds: float
    validation_se: float = 0.0


@dataclass(frozen=True)
class SearchResult:
    """All budgets of one :func:`search_sampler` call.

    Attributes:
        budgets: One :class:`BudgetResult` per requested budget, in increasing order.
        seed: The seed of the noises.
        seconds: Total wall time.
        trials: Distinct settings run, over all budgets.
        stopped_early: True if the time or trial budget cut the search short.
        num_samples: B, the samples of a selection and of a held-out run (None: not recorded).
        validation_samples: Samples of one validation run (``validation_factor`` B).
        validation_streams: S, the number of validation runs averaged per finalist.
    """

    budgets: tuple[BudgetResult, ...]
    seed: int
    seconds: float
    trials: int
    stopped_early: bool = False
    num_samples: int | None = None
    validation_samples: int | None = None
    validation_streams: int | None = None
    _by_budget: dict[int, BudgetResult] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_budget", {b.budget: b for b in self.budgets})

    def best(self, nfe: int) -> SamplerSettings:
        """The best settings for budget ``nfe`` (one of the searched budgets)."""
        if nfe not in self._by_budget:
            raise KeyError(
                f"NFE budget {nfe!r} was not searched; searched: {sorted(self._by_budget)}."
            )
        return self._by_budget[nfe].settings

    def table(self) -> str:
        """A markdown table: budget, NFE used, held-out score, defaults' held-out score, settings.

        Each score column is headed with the number of samples it was measured on, and a note
        under the table says so: sample-based distances (Frechet distances, W2) are biased
        upwards by a finite sample, more for fewer samples, so the validation column (on
        ``validation_factor`` times more samples) is not comparable with the selection and
        held-out columns; compare values within a column.
        """
        n, nv, s = self.num_samples, self.validation_samples, self.validation_streams
        at = f" (n = {n})" if n else ""
        val = f" (mean of {s} runs, n = {nv} each)" if nv and s else ""
        lines = [
            f"| budget | NFE | held-out score{at} | selection{at} | validation{val} "
            f"| defaults (held-out{', n = ' + str(n) if n else ''}) | settings |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in self.budgets:
            lines.append(
                f"| {b.budget} | {b.settings.nfe} | {b.holdout_score:.4f} | {b.selection_score:.4f} "
                f"| {b.validation_score:.4f} +- {b.validation_se:.4f} | {b.default_holdout_score:.4f} "
                f"| {b.settings.describe()} |"
            )
        if n and nv and nv != n:
            lines.append(
                f"\nScores depend on the number of samples (a Frechet distance or W2 of a finite "
                f"sample is biased upwards, more for fewer samples): the validation column, on "
                f"{nv} samples per run, is not comparable with the others, on {n}; compare values "
                "within a column."
            )
        return "\n".join(lines)
