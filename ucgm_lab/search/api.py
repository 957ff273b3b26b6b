""":func:`search_sampler`: the best UCGM-S settings per NFE budget (see the package docstring).

Kept whole: its inner closures share the noises and the runners. Its clock and
:func:`robust_choice` are looked up in the package at each call (``ucgm_lab.search._clock``,
``ucgm_lab.search.robust_choice``), so that a test that replaces them there drives it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..model_api import Model, resolve_null_class
from ..schedules import KumaraswamySchedule
from ..transports import Transport, get_transport
from .budget import _fit, _preset_schedules, _search_budget
from .choice import Choice, _finalists
from .metrics import Metric, default_metric
from .results import BudgetResult, SearchResult
from .runner import _BudgetSpentError, _package, _Runner
from .settings import SamplerSettings
from .space import SearchSpace, _is_number, _is_unit

__all__ = ["search_sampler"]


def search_sampler(
    model: Model,
    transport: str | Transport,
    reference_data: Tensor,
    nfe: Sequence[int] = (1, 2, 4, 8, 16),
    metric: Metric | None = None,
    *,
    space: SearchSpace | None = None,
    num_samples: int | None = None,
    labels: Tensor | None = None,
    null_class: int | None = None,
    holdout_reference: Tensor | None = None,
    validation_reference: Tensor | None = None,
    selection_noise: Tensor | None = None,
    holdout_noise: Tensor | None = None,
    validation_noise: Tensor | Sequence[Tensor] | None = None,
    validation_factor: int = 2,
    validation_streams: int | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    max_trials: int | None = None,
    exact_nfe: bool = False,
    consistency_ratio: float | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search the UCGM-S settings (Alg. 2) that minimise ``metric`` at each NFE budget.

    Selection and report use disjoint noises (see the module docstring): the reported
    ``holdout_score`` of each budget is never measured on the noise that chose the settings.

    Args:
        model: ``model(x_t, t, y=None) -> F`` (any model :func:`ucgm_lab.sample` accepts).
        transport: The transport it was trained with.
        reference_data: Data to score against, shape (M, ...); the samples get its shape (B, ...).
        nfe: NFE budgets (distinct positive integers).
        metric: ``metric(samples, reference) -> float``, lower is better. Default: sliced W2 for
            2D points, the digits Frechet distance for (M, 1, 8, 8), a Frechet distance in
            fixed random CNN features for other images (M, C, H, W) (:func:`default_metric`).
        space: What to search (:class:`SearchSpace`; guidance needs ``labels``).
        num_samples: B, samples per run (default M; equal sizes make the default 2D metric fast).
        labels: Class ids of the B samples, shape (B,), for conditional models.
        null_class: The unconditional class id for guidance (default ``model.null_class``).
        holdout_reference: Reference for the held-out figures (default ``reference_data``).
        validation_reference: Reference for the validation runs (default ``reference_data``).
        selection_noise, holdout_noise: Explicit initial noises, shape (B, ...) (default:
            drawn from ``seed``, disjoint streams).
        validation_noise: Explicit validation noises: one tensor (one stream) or a sequence
            of them, each of shape (``validation_factor`` B, ...) (default: drawn from
            ``seed``). The held-out noise must differ from all the others, and the validation
            streams from the selection noise and from each other.
        validation_factor: Each validation stream has this many times ``num_samples`` points
            (labels repeated): the finalists' scores are that much less noisy, so that a
            candidate that merely suited the selection noise does not win.
        validation_streams: S, the number of validation streams (each its own initial noise
            and fresh-noise seed); the finalists are chosen by their mean over the S streams
            with the tie rule of :func:`robust_choice` (a stochastic setting must win by more
            than its standard error across the streams). Default: 4, or the number of
            ``validation_noise`` tensors given.
        seed: Seed of the noises and of the fresh-noise streams (rho > 0).
        max_seconds: Wall-time budget of the whole search (shared evenly by the remaining
            budgets). Each budget stops its selection when the validation and held-out runs
            still to come (estimated from the mean selection run) would not fit, and validates
            its finalists, best first, while they fit (none when even the best does not: its
            ``validation_score`` is then inf). At least one selection run and the two held-out
            runs (the choice and the defaults) are always made, so a search exceeds
            ``max_seconds`` only when these minimal runs alone do not fit (tested within 10%
            on a fake clock).
        max_trials: Most distinct settings run per NFE budget.
        exact_nfe: Keep only settings whose NFE equals the budget (default: at most the
            budget; order 2 then cannot serve even budgets).
        consistency_ratio: The model's lambda: start every budget from
            :func:`ucgm_lab.recommended_settings` for it (a candidate that always reaches
            the validation streams, so the search keeps it unless something beats it there).
            None (default): no such start.
        progress: Show a tqdm progress bar.

    Returns:
        :class:`SearchResult`: per budget the best :class:`SamplerSettings` (their
        ``as_kwargs()`` go to :func:`ucgm_lab.sample`), selection and held-out scores.

    Raises:
        ValueError / TypeError: Bad inputs (the message says what is allowed).
    """
    start = _package()._clock()
    if not callable(model):
        hint = (
            " (for an adapted model pass adapted.model and adapted.transport)"
            if hasattr(model, "transport")
            else ""
        )
        raise TypeError(
            f"model must be callable as model(x_t, t, y=None) -> F, got {type(model).__name__}{hint}."
        )
    tr = get_transport(transport)
    budgets = _check_budgets(nfe)
    if (
        not isinstance(reference_data, Tensor)
        or reference_data.ndim < 2
        or reference_data.shape[0] < 2
    ):
        raise ValueError(
            "reference_data must be a tensor of shape (M, ...) with M >= 2 data points, got "
            + (
                f"shape {tuple(reference_data.shape)}."
                if isinstance(reference_data, Tensor)
                else f"{type(reference_data).__name__}."
            )
        )
    if not bool(torch.isfinite(reference_data).all()):
        raise ValueError("reference_data contains NaN or infinite values.")
    if holdout_reference is None:
        holdout_reference = reference_data
    elif (
        not isinstance(holdout_reference, Tensor)
        or holdout_reference.shape[1:] != reference_data.shape[1:]
    ):
        raise ValueError("holdout_reference must be a tensor shaped like reference_data (M', ...).")
    if validation_reference is None:
        validation_reference = reference_data
    elif (
        not isinstance(validation_reference, Tensor)
        or validation_reference.shape[1:] != reference_data.shape[1:]
    ):
        raise ValueError(
            "validation_reference must be a tensor shaped like reference_data (M', ...)."
        )
    for name, given in (
        ("holdout_reference", holdout_reference),
        ("validation_reference", validation_reference),
    ):
        if given is not reference_data and not bool(torch.isfinite(given).all()):
            raise ValueError(
                f"{name} contains NaN or infinite values: every reference point must be finite."
            )
    if metric is None:
        metric = default_metric(reference_data)
    elif not callable(metric):
        raise TypeError(
            f"metric must be callable(samples, reference) -> float, got {type(metric).__name__}."
        )
    space = space or SearchSpace()
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}.")
    if (
        isinstance(validation_factor, bool)
        or not isinstance(validation_factor, int)
        or validation_factor < 1
    ):
        raise ValueError(
            f"validation_factor must be a positive integer, got {validation_factor!r}."
        )
    if isinstance(validation_noise, Tensor):
        validation_noise = [validation_noise]
    elif validation_noise is not None:
        validation_noise = list(validation_noise)
        if not validation_noise:
            raise ValueError("validation_noise must not be an empty sequence (or pass None).")
    if validation_streams is None:
        validation_streams = 4 if validation_noise is None else len(validation_noise)
    if (
        isinstance(validation_streams, bool)
        or not isinstance(validation_streams, int)
        or validation_streams < 1
    ):
        raise ValueError(
            f"validation_streams must be a positive integer, got {validation_streams!r}."
        )
    if validation_noise is not None and len(validation_noise) != validation_streams:
        raise ValueError(
            f"validation_noise has {len(validation_noise)} streams but validation_streams is "
            f"{validation_streams}: give one tensor per stream."
        )
    if not isinstance(exact_nfe, bool):
        raise TypeError(f"exact_nfe must be True or False, got {exact_nfe!r}.")
    if consistency_ratio is not None and not _is_unit(consistency_ratio):
        raise ValueError(
            f"consistency_ratio must be lambda in [0, 1] or None, got {consistency_ratio!r}."
        )
    if max_seconds is not None and not (_is_number(max_seconds) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}.")
    if max_trials is not None and (
        isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1
    ):
        raise ValueError(f"max_trials must be a positive integer or None, got {max_trials!r}.")
    if num_samples is None:
        num_samples = (
            int(labels.shape[0]) if isinstance(labels, Tensor) else int(reference_data.shape[0])
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}.")
    if labels is not None:
        if (
            not isinstance(labels, Tensor)
            or labels.shape != (num_samples,)
            or labels.is_floating_point()
        ):
            raise ValueError(
                f"labels must be an integer tensor of shape ({num_samples},) (one class id per sample)."
            )
        if any(w != 1.0 for w in space.guidance_scales):
            null_class = resolve_null_class(model, null_class)
            if null_class is None:
                raise ValueError(
                    "Guidance needs the null class id: pass null_class=... or give the model `null_class`."
                )
    elif any(w != 1.0 for w in space.guidance_scales):
        raise ValueError(
            "space.guidance_scales other than 1 need labels (class ids of the samples)."
        )

    shape = (num_samples, *reference_data.shape[1:])
    device, dtype = (
        reference_data.device,
        (reference_data.dtype if reference_data.is_floating_point() else torch.float32),
    )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    draws = [torch.randn(shape, generator=gen, dtype=dtype).to(device) for _ in range(2)]
    fresh_seeds = [int(v) for v in torch.randint(0, 2**62, (2,), generator=gen)]
    val_shape = (num_samples * validation_factor, *reference_data.shape[1:])
    draws.append(torch.randn(val_shape, generator=gen, dtype=dtype).to(device))
    fresh_seeds.append(int(torch.randint(0, 2**62, (1,), generator=gen)))
    for _ in range(validation_streams - 1):  # further streams after the first (stable seeds)
        draws.append(torch.randn(val_shape, generator=gen, dtype=dtype).to(device))
        fresh_seeds.append(int(torch.randint(0, 2**62, (1,), generator=gen)))
    given_all = [selection_noise, holdout_noise] + (
        validation_noise if validation_noise is not None else [None] * validation_streams
    )
    names = ["selection_noise", "holdout_noise"] + [
        f"validation_noise[{i}]"
        if validation_noise is not None and len(validation_noise) > 1
        else "validation_noise"
        for i in range(validation_streams)
    ]
    noises = []
    for given, drawn, name in zip(given_all, draws, names, strict=True):
        if given is None:
            noises.append(drawn)
        elif not isinstance(given, Tensor) or tuple(given.shape) != tuple(drawn.shape):
            raise ValueError(
                f"{name} must be a tensor of shape {tuple(drawn.shape)}, got {getattr(given, 'shape', type(given).__name__)}."
            )
        else:
            noises.append(given)

    def same(a: Tensor, b: Tensor) -> bool:
        return a.shape == b.shape and bool(torch.equal(a, b))

    if any(same(noises[1], other) for i, other in enumerate(noises) if i != 1):
        raise ValueError(
            "holdout_noise must differ from selection_noise and validation_noise (the reported "
            "figure must not be measured on a noise that chose the settings)."
        )
    for i in range(2, len(noises)):
        if same(noises[i], noises[0]) or any(same(noises[i], noises[j]) for j in range(2, i)):
            raise ValueError(
                "the validation streams must differ from selection_noise and from each other "
                "(their spread is what the choice among the finalists weighs)."
            )

    def runner(which: int, deadline: float | None, on_trial=None) -> _Runner:
        return _Runner(
            model,
            tr,
            noises[which],
            (reference_data, holdout_reference)[which] if which < 2 else validation_reference,
            metric,
            labels if which < 2 or labels is None else labels.repeat(validation_factor),
            null_class,
            fresh_seeds[which],
            deadline,
            max_trials,
            on_trial=on_trial,
        )

    results = []
    stopped = False
    total_trials = 0
    bar = tqdm(total=len(budgets), desc="search_sampler", disable=not progress, leave=False)
    holdout = runner(1, None)
    validations = [runner(2 + i, None) for i in range(validation_streams)]
    for k, budget in enumerate(budgets):
        t0 = _package()._clock()
        deadline = None
        if max_seconds is not None:
            remaining = max_seconds - (t0 - start)
            deadline = t0 + max(remaining, 0.0) / (len(budgets) - k)

        def on_trial(r: _Runner, budget: int = budget) -> None:
            bar.set_postfix(nfe=budget, trials=r.trials, best=f"{min(r.cache.values()):.4g}")

        selection = runner(0, deadline, on_trial)
        # the validation and held-out runs that follow the selection, in selection runs
        selection.reserve_runs = space.finalists * validation_streams * validation_factor + 2
        starts = [r.settings for r in results]
        if consistency_ratio is not None:
            from ..recommended import recommended_settings

            starts.append(recommended_settings(budget, consistency_ratio, tr))
        try:
            best = _search_budget(selection, budget, space, starts, exact_nfe)
        except _BudgetSpentError:
            stopped = True
            if not selection.cache:  # not even one run: run the recommendation (with
                # consistency_ratio) or the defaults outside the budget
                fallback = (
                    starts[-1]
                    if consistency_ratio is not None
                    else _fit(SamplerSettings(nfe=0, schedule=KumaraswamySchedule.even()), budget)
                )
                selection.score(fallback, budgeted=False)
            best = min(selection.cache, key=selection.cache.get)
        finalists = (
            _finalists(selection.cache, space.finalists, _preset_schedules(space))
            if space.finalists > 1
            else []
        )
        if best in finalists:
            finalists.remove(best)
        finalists.insert(0, best)
        if consistency_ratio is not None and starts[-1] in selection.cache:
            if starts[-1] in finalists:
                finalists.remove(starts[-1])
            finalists.insert(1, starts[-1])  # the recommendation always reaches validation
        checked = {}
        per_finalist = selection.mean_run_seconds() * validation_streams * validation_factor
        for f in finalists:
            # within max_seconds: validate the finalists (best first) while they fit, the
            # best one too: unvalidated, the selection's best is kept (one candidate needs no
            # choice), and the validation of even one finalist can cost several selection
            # runs (``validation_streams`` x ``validation_factor``), far beyond 10% of the budget
            after = per_finalist + 2 * selection.mean_run_seconds()  # and the held-out runs
            if deadline is not None and _package()._clock() + after > deadline:
                stopped = True
                break
            checked[f] = [v.score(f, budgeted=False) for v in validations]
        if not any(all(math.isfinite(x) for x in scores) for scores in checked.values()):
            choice = Choice(best, math.inf, 0.0, best)
        else:
            # the recommendation (with consistency_ratio) is kept unless beaten beyond the SE
            prefer = starts[-1] if consistency_ratio is not None else None
            choice = _package().robust_choice(checked, tiebreak=selection.cache, prefer=prefer)
        best = choice.settings
        default = SamplerSettings(nfe=budget, steps=budget, schedule=KumaraswamySchedule.even())
        results.append(
            BudgetResult(
                budget=budget,
                settings=best,
                selection_score=selection.cache[best],
                validation_score=choice.mean,
                validation_se=choice.se,
                holdout_score=holdout.score(best, budgeted=False),
                default_holdout_score=holdout.score(default, budgeted=False),
                trials=selection.trials,
                seconds=_package()._clock() - t0,
            )
        )
        total_trials += selection.trials
        bar.update(1)
    bar.close()
    return SearchResult(
        tuple(results),
        seed,
        _package()._clock() - start,
        total_trials,
        stopped,
        num_samples=num_samples,
        validation_samples=num_samples * validation_factor,
        validation_streams=validation_streams,
    )


def _check_budgets(nfe: Sequence[int] | int) -> list[int]:
    if isinstance(nfe, int) and not isinstance(nfe, bool):
        nfe = [nfe]
    try:
        values = list(nfe)
    except TypeError:
        raise TypeError(
            f"nfe must be a positive integer or a sequence of them, got {nfe!r}."
        ) from None
    if not values:
        raise ValueError("nfe must not be empty (give NFE budgets such as [1, 2, 4, 8, 16]).")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"NFE budgets must be positive integers, got {v!r} in {values!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"NFE budgets must be distinct, got {values!r}.")
    return sorted(values)
