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
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..sampler import MULTISTEP_FORMS, time_grid
from ..schedules import KumaraswamySchedule
from ..search import SamplerSettings, SearchResult, SearchSpace, count_nfe, search_sampler
from ..transports import Transport

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

SETTINGS_PATH = Path(__file__).parent / "sampler_settings.json"
"""The shipped file of searched settings."""

_SCHEDULE_KEYS = ("a", "b", "c", "gap_noise", "gap_data")
_ALLOWED = (
    "order",
    "kappa",
    "rho",
    "steps",
    "schedule",
    "time_points",
    "correction",
    "multistep",
    "corrector",
    "lower_order_final",
    "guidance_scale",
    "guidance_interval",
)


class SettingsFileError(ValueError):
    """The settings file is not a valid {model: {nfe: sampler keyword arguments}} JSON file."""


def settings_to_json(settings: SamplerSettings) -> dict[str, Any]:
    """Plain-JSON sampler keyword arguments of searched settings (a grid becomes an object)."""
    kwargs = settings.as_kwargs()
    schedule = kwargs.get("schedule")
    if isinstance(schedule, KumaraswamySchedule):
        kwargs["schedule"] = {k: float(getattr(schedule, k)) for k in _SCHEDULE_KEYS}
    if "time_points" in kwargs:
        kwargs["time_points"] = [float(t) for t in kwargs["time_points"]]
    if "guidance_interval" in kwargs:
        kwargs["guidance_interval"] = [float(v) for v in kwargs["guidance_interval"]]
    return kwargs


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry_kwargs(entry: Any, where: str, budget: int) -> dict[str, Any]:
    """Validate one budget's JSON entry and return ``sample`` keyword arguments."""

    def bad(message: str) -> SettingsFileError:
        return SettingsFileError(f"{where}: {message}")

    if not isinstance(entry, dict):
        raise bad(f"must be an object of sampler keyword arguments, got {type(entry).__name__}.")
    unknown = sorted(set(entry) - set(_ALLOWED))
    if unknown:
        raise bad(f"unknown key(s) {unknown}; allowed: {', '.join(_ALLOWED)}.")
    kwargs = dict(entry)
    if kwargs.get("order", 1) not in (1, 2) or isinstance(kwargs.get("order"), bool):
        raise bad(f"'order' must be 1 or 2, got {kwargs.get('order')!r}.")
    for key in ("kappa",):
        if key in kwargs and not (_number(kwargs[key]) and 0 <= kwargs[key] <= 1):
            raise bad(f"{key!r} must be a number in [0, 1], got {kwargs[key]!r}.")
    if "rho" in kwargs and not (
        kwargs["rho"] == "auto" or (_number(kwargs["rho"]) and 0 <= kwargs["rho"] <= 1)
    ):
        raise bad(f"'rho' must be a number in [0, 1] or 'auto', got {kwargs['rho']!r}.")
    if kwargs.get("correction", "noise") not in ("noise", "data"):
        raise bad(f"'correction' must be 'noise' or 'data', got {kwargs['correction']!r}.")
    if kwargs.get("multistep") not in (None, *MULTISTEP_FORMS):
        raise bad(f"'multistep' must be one of {MULTISTEP_FORMS}, got {kwargs['multistep']!r}.")
    if "corrector" in kwargs:
        if not isinstance(kwargs["corrector"], bool):
            raise bad(f"'corrector' must be true or false, got {kwargs['corrector']!r}.")
        if kwargs["corrector"] and (kwargs.get("multistep") is None or kwargs.get("rho", 0) != 0):
            raise bad(
                "'corrector': true needs a 'multistep' form and 'rho' 0, got "
                f"multistep={kwargs.get('multistep')!r}, rho={kwargs.get('rho', 0)!r}."
            )
    if "lower_order_final" in kwargs:
        if not isinstance(kwargs["lower_order_final"], bool):
            raise bad(
                f"'lower_order_final' must be true or false, got {kwargs['lower_order_final']!r}."
            )
        if (
            kwargs["lower_order_final"]
            and kwargs.get("multistep") is None
            and not kwargs.get("kappa", 0)
        ):
            raise bad("'lower_order_final': true needs a 'multistep' form or 'kappa' > 0.")
    if "guidance_scale" in kwargs and not (
        _number(kwargs["guidance_scale"]) and kwargs["guidance_scale"] >= 0
    ):
        raise bad(
            f"'guidance_scale' must be a number >= 0 (1 = no guidance), "
            f"got {kwargs['guidance_scale']!r}."
        )
    if "guidance_interval" in kwargs:
        iv = kwargs["guidance_interval"]
        if not (isinstance(iv, list) and len(iv) == 2 and all(_number(v) for v in iv)):
            raise bad(f"'guidance_interval' must be a list [lo, hi] of numbers, got {iv!r}.")
        if not 0 <= iv[0] <= iv[1] <= 1:
            raise bad(
                f"'guidance_interval' must satisfy 0 <= lo <= hi <= 1 (library time: 1 is "
                f"noise, 0 is data), got {iv!r}."
            )
        if kwargs.get("guidance_scale", 1.0) == 1.0:
            raise bad(
                "'guidance_interval' without a 'guidance_scale' other than 1 does nothing; "
                "give both or neither."
            )
        kwargs["guidance_interval"] = (float(iv[0]), float(iv[1]))
    has_steps, has_points = "steps" in kwargs, "time_points" in kwargs
    if has_steps == has_points:
        raise bad("give exactly one of 'steps' (with 'schedule') and 'time_points'.")
    if has_points:
        points = kwargs["time_points"]
        if not (isinstance(points, list) and points and all(_number(t) for t in points)):
            raise bad(f"'time_points' must be a non-empty list of numbers, got {points!r}.")
        if "schedule" in kwargs:
            raise bad("'schedule' does not go with 'time_points'.")
    else:
        steps = kwargs["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise bad(f"'steps' must be a positive integer, got {steps!r}.")
        schedule = kwargs.get("schedule", "even")
        if isinstance(schedule, dict):
            if set(schedule) != set(_SCHEDULE_KEYS) or not all(
                _number(v) for v in schedule.values()
            ):
                raise bad(
                    f"'schedule' must be an object of the numbers {', '.join(_SCHEDULE_KEYS)}, "
                    f"got {schedule!r}."
                )
            try:
                kwargs["schedule"] = KumaraswamySchedule(**schedule)
            except (TypeError, ValueError) as exc:
                raise bad(f"'schedule' is not a valid Kumaraswamy grid ({exc}).") from None
        elif schedule not in ("uniform", "even", "auto"):
            raise bad(
                f"'schedule' must be 'uniform', 'even', 'auto' or an object of "
                f"{', '.join(_SCHEDULE_KEYS)}, got {schedule!r}."
            )
    try:
        grid = time_grid(
            kwargs.get("steps"),
            kwargs.get("order", 1),
            kwargs.get("schedule", "even"),
            kwargs.get("time_points"),
        )
    except (TypeError, ValueError) as exc:
        raise bad(f"the time grid is invalid ({exc}).") from None
    nfe = count_nfe(
        grid,
        kwargs.get("order", 1),
        kwargs.get("guidance_scale", 1.0),
        kwargs.get("guidance_interval", (0.0, 1.0)),
    )
    if nfe > budget:
        raise bad(f"these settings make {nfe} network evaluations, more than the budget {budget}.")
    return kwargs


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_settings_file(path: str | Path = SETTINGS_PATH) -> dict[str, dict[int, dict[str, Any]]]:
    """Read and validate a settings file: {model: {budget: ``sample`` keyword arguments}}.

    Args:
        path: The JSON file.

    Returns:
        The settings with integer budgets and Kumaraswamy grids as
        :class:`~ucgm_lab.schedules.KumaraswamySchedule`.

    Raises:
        FileNotFoundError: If the file does not exist.
        SettingsFileError: If it is not JSON or not of that form (the message names the file,
            the model, the budget and the key).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise SettingsFileError(f"{path}: not a valid JSON file ({exc}).") from None
    if not isinstance(raw, dict):
        raise SettingsFileError(
            f"{path}: must hold a JSON object {{model name: {{NFE: settings}}}}, "
            f"got {type(raw).__name__}."
        )
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for model, budgets in raw.items():
        if not isinstance(budgets, dict):
            raise SettingsFileError(
                f"{path}: model {model!r} must map NFE budgets to settings, "
                f"got {type(budgets).__name__}."
            )
        out[model] = {}
        for key, entry in budgets.items():
            if not (isinstance(key, str) and key.isdigit() and int(key) >= 1):
                raise SettingsFileError(
                    f"{path}: model {model!r}: NFE budget keys must be positive integers "
                    f'written as strings (e.g. "8"), got {key!r}.'
                )
            where = f"{path}: model {model!r}, NFE {key}"
            out[model][int(key)] = _entry_kwargs(entry, where, int(key))
    return out


_CACHE: dict[Path, tuple[int, int, dict[str, dict[int, dict[str, Any]]]]] = {}


def searched_settings(
    model_name: str, nfe: int, path: str | Path = SETTINGS_PATH
) -> dict[str, Any] | None:
    """The sampler keyword arguments a search found for a zoo model at an NFE budget.

    Args:
        model_name: A zoo name, e.g. "checkerboard-linear-lam0".
        nfe: The budget of network evaluations.
        path: The settings file (default: the shipped one; a missing file means no settings).

    Returns:
        Keyword arguments for ``ucgm_lab.sample(model, noise, transport, **kwargs)`` (a new
        dict each call), or None if the file has none for this model and budget.

    Raises:
        TypeError / ValueError: A bad name or budget.
        SettingsFileError: The file is malformed (see :func:`load_settings_file`).
    """
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a zoo name (str), got {type(model_name).__name__}.")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer, got {nfe!r}.")
    path = Path(path)
    if not path.is_file():
        return None
    stat = path.stat()
    cached = _CACHE.get(path)
    if cached is None or cached[:2] != (stat.st_mtime_ns, stat.st_size):
        cached = (stat.st_mtime_ns, stat.st_size, load_settings_file(path))
        _CACHE[path] = cached
    entry = cached[2].get(model_name, {}).get(nfe)
    return None if entry is None else dict(entry)


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


def merge_settings_file(
    path: str | Path, found: dict[str, dict[int, SamplerSettings]], wait: float = 120.0
) -> Path:
    """Write the settings of ``found`` into the file, keeping every other model's entry.

    The read-modify-write holds the lock file ``<path>.lock`` (created atomically; a second
    writer waits up to ``wait`` seconds for it), and the file is read again under the lock, so
    entries another search wrote meanwhile are kept. The write is atomic
    (:func:`~ucgm_lab.training.checkpoint.atomic_write`: a failed write, e.g. on a full disk,
    leaves the old file and no temporary file) and keeps the file's mode.

    Raises:
        CheckpointError: The file could not be written (one line: which file, why, free space).
        RunFolderError: Another process held the lock for longer than ``wait`` seconds.
    """
    from ..training.checkpoint import atomic_write
    from ..training.run_folder import RunFolderLock

    path = Path(path)
    lock = RunFolderLock(path.parent, name=f"{path.name}.lock")
    lock.acquire(timeout=wait)
    try:
        existing: dict[str, Any] = {}
        if path.is_file():
            load_settings_file(path)
            existing = json.loads(path.read_text(encoding="utf-8"))
        for name, budgets in found.items():
            existing[name] = {str(n): settings_to_json(s) for n, s in budgets.items()}
        text = json.dumps(existing, indent=1, sort_keys=True) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    finally:
        lock.release()
    load_settings_file(path)
    return path
