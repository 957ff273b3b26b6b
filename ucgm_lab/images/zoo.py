"""Deprecated: the digits models are in the one zoo, :mod:`ucgm_lab.zoo` (``load``, ``ZooModel.sample``)."""

from __future__ import annotations

from pathlib import Path

from .._deprecated import warn_moved
from ..metrics.digits_classifier import CLASSIFIER_NAME, load_classifier
from ..zoo import DIGITS_DIR, ZOO_SPECS, ZooModel, ZooSpec, load
from ..zoo import available as _available
from ..zoo import build as _build
from ..zoo import classifier_available as _classifier_available

warn_moved(__name__, "ucgm_lab.zoo", stacklevel=2)

__all__ = [
    "CLASSIFIER_NAME",
    "IMAGE_ZOO_DIR",
    "IMAGE_ZOO_SPECS",
    "ImageZooModel",
    "ImageZooSpec",
    "available",
    "build",
    "load_classifier",
    "load_image_model",
]

IMAGE_ZOO_DIR = DIGITS_DIR
IMAGE_ZOO_SPECS = [s for s in ZOO_SPECS if s.recipe.kind == "images"]
ImageZooModel = ZooModel
ImageZooSpec = ZooSpec
load_image_model = load
_NAMES = [CLASSIFIER_NAME, *(s.name for s in IMAGE_ZOO_SPECS)]


def available(directory: str | Path = DIGITS_DIR) -> list[str]:
    """Deprecated: ``ucgm_lab.zoo.available`` (digits) and ``classifier_available``, in one list."""
    names = [n for n in _available(directory) if n in _NAMES]
    return names + ([CLASSIFIER_NAME] if _classifier_available(directory) else [])


def build(
    only: list[str] | None = None,
    directory: str | Path = DIGITS_DIR,
    steps_scale: float = 1.0,
    progress: bool = True,
) -> list[Path]:
    """Deprecated: ``ucgm_lab.zoo.build`` (default here: the classifier and the digits models)."""
    return _build(list(only) if only else list(_NAMES), directory, steps_scale, progress)
