"""Searched sampler settings of the zoo models, per NFE budget (``sampler_settings.json``).

The file maps a zoo name to budgets and each budget to the keyword arguments of
:func:`ucgm_lab.sample` that :func:`ucgm_lab.search_sampler` found best for it, as plain
JSON (a Kumaraswamy grid is an object of its five numbers)::

    {"checkerboard-linear-lam0": {"8": {"order": 1, "kappa": 0.0, "rho": 0.0,
        "multistep": "velocity", "steps": 8,
        "schedule": {"a": 1.04, "b": 1.0, "c": 0.745, "gap_noise": 0.001, "gap_data": 0.0}}}}

Write it with ``python -m ucgm_lab.zoo search-settings`` (:func:`search_zoo_settings`); read
it with :func:`searched_settings`, which validates the whole file (JSON only: loading never
executes code) and names the model, the budget and the key of anything malformed.

Class-conditional 2D models are searched on balanced labels with a class-aware metric (the
mean over classes of the per-class sliced W2, :class:`~ucgm_lab.metrics.classes.ClassSlicedW2`)
and the classifier-free guidance scale and interval searched too; their entries may hold
``guidance_scale`` and ``guidance_interval`` (a guided evaluation counts 2 NFE). The null
class is not stored: ``sample`` takes the model's.

The file format (read, check, write) is in :mod:`ucgm_lab.zoo.settings_file`; this module runs
the search and re-exports it, so every name is importable from here as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..search import SamplerSettings, SearchResult, SearchSpace, search_sampler
from ..transports import Transport
from .settings_file import (
    SETTINGS_PATH,
    SettingsFileError,
    load_settings_file,
    searched_settings,
    settings_to_json,
)
from .settings_file import merge_settings_file as merge_settings_file

__all__ = [
    "CONDITIONAL_GUIDANCE_INTERVALS",
    "CONDITIONAL_GUIDANCE_SCALES",
    "SETTINGS_PATH",
    "ModelSearch",
    "SettingsFileError",
    "load_settings_file",
    "search_model_settings",
    "search_zoo_settings",
    "searched_settings",
    "settings_to_json",
    "zoo_search_space",
]

CONDITIONAL_GUIDANCE_SCALES: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0)
"""Guidance scales searched for class-conditional models (1 = none)."""
CONDITIONAL_GUIDANCE_INTERVALS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.2, 0.8))
"""Guidance intervals searched (library time, 1 = noise): everywhere, and the middle noise
levels only (guidance limited to an interval, Kynkaanniemi et al. 2024, arXiv 2404.07724:
their EDM2 range sigma in (0.28, 5.42] is about t in (0.2, 0.85) on the Linear transport)."""


def zoo_search_space(conditional: bool) -> SearchSpace:
    """The search space of ``search-settings``: the default one, with guidance if conditional.

    A guided evaluation costs 2 NFE (:func:`~ucgm_lab.search.count_nfe`), so at small budgets
    guidance competes with grid points: an unguided winner is a legitimate result.
    """
    if not conditional:
        return SearchSpace()
    return SearchSpace(
        guidance_scales=CONDITIONAL_GUIDANCE_SCALES,
        guidance_intervals=CONDITIONAL_GUIDANCE_INTERVALS,
    )


@dataclass(frozen=True)
class ModelSearch:
    """One model's settings search and what it was scored with.

    Attributes:
        result: The :func:`~ucgm_lab.search_sampler` result (per budget: settings, selection,
            validation and held-out scores).
        metric: ``metric(samples, reference) -> float``: sliced W2 (unconditional) or
            :class:`~ucgm_lab.metrics.classes.ClassSlicedW2` (conditional: the mean over
            classes of the per-class sliced W2).
        reference: The selection (and validation) reference, shape (M, 2); class-ordered for
            a conditional model (row i of class i mod K).
        holdout_reference: The reference of the held-out figures (the selection reference for
            an unconditional model; disjoint points for a conditional one).
        labels: Class ids of the samples (B,) (:func:`~ucgm_lab.metrics.classes.balanced_labels`),
            or None.
    """

    result: SearchResult
    metric: Callable[[Tensor, Tensor], float]
    reference: Tensor
    holdout_reference: Tensor
    labels: Tensor | None = None


def search_model_settings(
    model: nn.Module,
    transport: Transport | str,
    dataset: str,
    nfes: Sequence[int] = (2, 4, 8, 16, 32),
    *,
    num_classes: int | None = None,
    samples: int = 2000,
    reference_factor: int = 16,
    seed: int = 0,
    space: SearchSpace | None = None,
    holdout_noise: Tensor | None = None,
    max_seconds: float | None = None,
    progress: bool = True,
) -> ModelSearch:
    """Search one 2D model's sampler settings as ``search-settings`` does (NFE = budget).

    Unconditional: sliced W2 against ``samples * reference_factor`` points of ``dataset``.
    Class-conditional (``num_classes`` = K): balanced labels (sample i of class i mod K,
    ``samples`` rounded up to a multiple of K), the mean over classes of the per-class sliced
    W2 (:class:`~ucgm_lab.metrics.classes.ClassSlicedW2`) against a class-ordered reference
    ``reference_factor`` times larger per class, a held-out reference of other points, and the
    guidance scales and intervals of :func:`zoo_search_space` (the null class is the model's).

    Args:
        model: ``model(x_t, t, y=None) -> F``.
        transport: Its transport.
        dataset: Its 2D data set (``toy_data`` name).
        nfes: Budgets.
        num_classes: K for a class-conditional model, else None.
        samples: Points per candidate run (selection noise).
        reference_factor: The references are this many times larger (less noise).
        seed: Seed of the noises and the reference data.
        space: The search space (default :func:`zoo_search_space`).
        holdout_noise: The held-out initial noise (default: drawn from ``seed``); shape
            (B, 2).
        max_seconds: Wall-time budget.
        progress: Progress bars.

    Returns:
        :class:`ModelSearch`.
    """
    from toy_data import sample_2d

    from ..metrics.classes import ClassSlicedW2, balanced_labels, class_ordered_points
    from ..search import SlicedW2

    conditional = num_classes is not None
    space = space if space is not None else zoo_search_space(conditional)
    if not conditional:
        reference = sample_2d(dataset, samples * reference_factor, seed=seed + 10_000).points
        reference = reference.to(torch.float32)
        labels, metric, holdout_reference = None, SlicedW2(), reference
        num_samples = samples
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
        per_class = -(-samples // num_classes)
        num_samples = per_class * num_classes
        labels = balanced_labels(num_classes, num_samples)
        reference = class_ordered_points(dataset, per_class * reference_factor, seed + 10_000)
        holdout_reference = class_ordered_points(
            dataset, per_class * reference_factor, seed + 20_000
        )
        metric = ClassSlicedW2(num_classes)
    result = search_sampler(
        model,
        transport,
        reference,
        nfe=list(nfes),
        metric=metric,
        num_samples=num_samples,
        labels=labels,
        holdout_reference=holdout_reference,
        holdout_noise=holdout_noise,
        space=space,
        seed=seed,
        max_seconds=max_seconds,
        exact_nfe=True,
        progress=progress,
    )
    return ModelSearch(result, metric, reference, holdout_reference, labels)


def search_zoo_settings(
    names: Sequence[str] | None = None,
    nfes: Sequence[int] = (2, 4, 8, 16, 32),
    *,
    samples: int = 2000,
    reference_factor: int = 16,
    seed: int = 0,
    path: str | Path = SETTINGS_PATH,
    max_seconds: float | None = None,
    progress: bool = True,
) -> dict[str, dict[int, SamplerSettings]]:
    """Search the settings of zoo models and write them into the settings file.

    Every budget of every model gets its own :func:`~ucgm_lab.search_sampler` run
    (:func:`search_model_settings`) with NFE equal to the budget (``exact_nfe=True``): sliced
    W2 against ``samples * reference_factor`` points of the model's data set; for a
    class-conditional 2D model, the per-class sliced W2 on balanced labels with the guidance
    scale and interval searched too. Entries of other models in the file are kept; the file
    is replaced atomically.

    Args:
        names: Zoo names (default: every 2D model whose checkpoint exists, class-conditional
            ones included; the digits models are not searched).
        nfes: Budgets.
        samples: Points per candidate run (selection noise).
        reference_factor: The selection reference is this many times larger (less noise).
        seed: Seed of the noises and of the reference data.
        path: The settings file to update.
        max_seconds: Wall-time budget per model.
        progress: Progress bars.

    Returns:
        {name: {budget: settings}} of the models searched.

    Raises:
        ValueError: A digits model is named (its search is not supported: see
            docs/architecture.md).
    """
    from . import ZOO_SPECS, available, find_spec, load

    if names is None:
        have = set(available())
        names = [s.name for s in ZOO_SPECS if s.name in have and s.recipe.kind == "points"]
    for name in names:
        if find_spec(name).recipe.kind != "points":
            raise ValueError(
                f"{name} is an image model: search-settings searches the 2D models only (a "
                "digits search would take hours on a 2-core CPU and needs a per-class digits "
                "metric). Name 2D models, or none for all of them."
            )
    from ..training.checkpoint import check_writable_dir

    path = Path(path)
    check_writable_dir(path.parent, "settings folder")  # before the search, not after it
    if path.is_file():
        load_settings_file(path)  # refuse to build on a malformed file before searching
    found: dict[str, dict[int, SamplerSettings]] = {}
    for name in names:
        zm = load(name)
        result = search_model_settings(
            zm.model,
            zm.transport,
            zm.dataset,
            nfes,
            num_classes=zm.num_classes,
            samples=samples,
            reference_factor=reference_factor,
            seed=seed,
            max_seconds=max_seconds,
            progress=progress,
        ).result
        found[name] = {b.budget: b.settings for b in result.budgets}
    merge_settings_file(path, found)
    return found
