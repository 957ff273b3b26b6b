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
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..sampler import MULTISTEP_FORMS, _time_grid
from ..schedules import KumaraswamySchedule
from ..search import SamplerSettings, SearchSpace, count_nfe, search_sampler

__all__ = [
    "SETTINGS_PATH",
    "SettingsFileError",
    "load_settings_file",
    "search_zoo_settings",
    "searched_settings",
    "settings_to_json",
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
    if "guidance_scale" in kwargs and not _number(kwargs["guidance_scale"]):
        raise bad(f"'guidance_scale' must be a number, got {kwargs['guidance_scale']!r}.")
    if "guidance_interval" in kwargs:
        iv = kwargs["guidance_interval"]
        if not (isinstance(iv, list) and len(iv) == 2 and all(_number(v) for v in iv)):
            raise bad(f"'guidance_interval' must be a list [lo, hi] of numbers, got {iv!r}.")
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
        grid = _time_grid(
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

    Every budget of every model gets its own :func:`~ucgm_lab.search_sampler` run against
    ``samples * reference_factor`` points of the model's data set (sliced W2), with NFE equal to
    the budget (``exact_nfe=True``). Entries of other models in the file are kept; the file is
    replaced atomically.

    Args:
        names: Zoo names (default: every unconditional 2D model whose checkpoint exists;
            class-conditional models need labels and are not searched).
        nfes: Budgets.
        samples: Points per candidate run (selection noise).
        reference_factor: The selection reference is this many times larger (less noise).
        seed: Seed of the noises and of the reference data.
        path: The settings file to update.
        max_seconds: Wall-time budget per model.
        progress: Progress bars.

    Returns:
        {name: {budget: settings}} of the models searched.
    """
    from toy_data import sample_2d

    from . import ZOO_SPECS, available, load

    if names is None:
        have = set(available())
        names = [s.name for s in ZOO_SPECS if s.name in have and not s.recipe.conditional]
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.is_file():
        load_settings_file(path)  # refuse to build on a malformed file
        existing = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, dict[int, SamplerSettings]] = {}
    for name in names:
        zm = load(name)
        if zm.metadata["network"].get("num_classes") is not None:
            raise ValueError(
                f"{name} is class-conditional: its search needs labels (not supported)."
            )
        reference = sample_2d(zm.dataset, samples * reference_factor, seed=seed + 10_000).points
        result = search_sampler(
            zm.model,
            zm.transport,
            reference.to(torch.float32),
            nfe=list(nfes),
            num_samples=samples,
            space=SearchSpace(),
            seed=seed,
            max_seconds=max_seconds,
            exact_nfe=True,
            progress=progress,
        )
        found[name] = {b.budget: b.settings for b in result.budgets}
        existing[name] = {str(b.budget): settings_to_json(b.settings) for b in result.budgets}
    text = json.dumps(existing, indent=1, sort_keys=True) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text)
    os.replace(handle.name, path)
    load_settings_file(path)
    return found
