"""The file of searched sampler settings (``sampler_settings.json``): read, check, write.

The format is described in :mod:`ucgm_lab.zoo.settings`. :func:`load_settings_file` validates
the whole file (JSON only: loading never executes code) and names the model, the budget and
the key of anything malformed; :func:`merge_settings_file` writes new entries and keeps every
other model's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..sampler import MULTISTEP_FORMS, time_grid
from ..schedules import KumaraswamySchedule
from ..search import SamplerSettings, count_nfe

__all__ = [
    "SETTINGS_PATH",
    "SettingsFileError",
    "load_settings_file",
    "merge_settings_file",
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
