"""Labelled 2D toy distributions behind one uniform sampling API.

Every data set has a fixed scale so samples lie roughly in ``[-1.5, 1.5]^2``
with a per-coordinate standard deviation between about 0.5 and 0.9:

=================  =======  =============================================  ==============
name               classes  shape and scale                                std (x, y)
=================  =======  =============================================  ==============
moons              2        two interleaved half circles of radius 1,      (0.87, 0.50)
                            centred; 0 = upper, 1 = lower; noise 0.05
circles            2        concentric circles of radius 1 (0 = outer)     (0.56, 0.56)
                            and 0.5 (1 = inner); noise 0.05
swiss_roll         4        2D swiss roll, radius 0.47 .. 1.4 about the    (0.66, 0.69)
                            origin, then shifted to zero mean; class =
                            quarter of the roll parameter (0 = innermost);
                            noise 0.05
spirals            2        two interleaved 1.5-turn spirals, radius       (0.71, 0.69)
                            0 .. 1.4; class = arm; noise 0.05
checkerboard       8        uniform on the 8 dark cells of a 4x4 board     (0.87, 0.87)
                            of 0.75-wide cells covering [-1.5, 1.5]^2;
                            class = cell (row-major, from bottom-left)
8gaussians         8        Gaussians of std 0.1 at angles k*pi/4 on the   (0.71, 0.71)
                            unit circle; class = k
gaussian_mixture   4        ``default_gaussian_mixture()``; class =        (0.59, 0.60)
                            component
=================  =======  =============================================  ==============

Classes are drawn i.i.d.: uniform over classes for all data sets except
``gaussian_mixture``, which uses its mixture weights (see ``class_weights``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from toy_data._checks import check_positive_int, generator_device, resolve_generator
from toy_data.containers import ToySample
from toy_data.gaussian_mixture import default_gaussian_mixture

__all__ = [
    "class_weights",
    "list_2d_datasets",
    "num_classes",
    "sample_2d",
    "sample_2d_class",
]

_NOISE = 0.05
# Draws points given class ids (n,) int64 and a generator -> (n, 2) float32.
_Sampler = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def _uniform(n: int, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=g, device=generator_device(g))


def _noise(n: int, g: torch.Generator | None, std: float = _NOISE) -> torch.Tensor:
    return std * torch.randn(n, 2, generator=g, device=generator_device(g))


def _moons(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    t = math.pi * _uniform(n, g)
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.where(labels[:, None] == 0, upper, lower)
    return x - torch.tensor([0.5, 0.25], device=x.device) + _noise(n, g)


def _circles(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    t = 2.0 * math.pi * _uniform(n, g)
    radius = torch.where(labels == 0, 1.0, 0.5)
    return radius[:, None] * torch.stack([torch.cos(t), torch.sin(t)], dim=1) + _noise(n, g)


def _swiss_roll(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    u = (labels.to(torch.float32) + _uniform(n, g)) / 4.0  # class = quarter of [0, 1)
    t = 1.5 * math.pi * (1.0 + 2.0 * u)  # t in [1.5 pi, 4.5 pi)
    scale = 1.4 / (4.5 * math.pi)
    roll = scale * t[:, None] * torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    # Exact mean of the roll over t ~ U[1.5 pi, 4.5 pi): scale * (2, 2 / (3 pi)).
    centre = torch.tensor([2.0 * scale, 2.0 * scale / (3.0 * math.pi)], device=roll.device)
    return roll - centre + _noise(n, g)


def _spirals(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    theta = 3.0 * math.pi * torch.sqrt(_uniform(n, g))  # sqrt: uniform density along the arm
    radius = 1.4 * theta / (3.0 * math.pi)
    arm = radius[:, None] * torch.stack([-torch.cos(theta), torch.sin(theta)], dim=1)
    sign = torch.where(labels == 0, 1.0, -1.0)[:, None]
    return sign * arm + _noise(n, g)


def _checkerboard(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    row = torch.div(labels, 2, rounding_mode="floor")
    col = 2 * (labels % 2) + row % 2  # dark cells: (row + col) even
    cell = torch.stack([col, row], dim=1).to(torch.float32)
    offset = torch.rand(n, 2, generator=g, device=generator_device(g))
    return -1.5 + 0.75 * (cell + offset)


def _eight_gaussians(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = labels.shape[0]
    angle = labels.to(torch.float32) * (math.pi / 4.0)
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + _noise(n, g, std=0.1)


def _gaussian_mixture(labels: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return default_gaussian_mixture().sample_from_components(labels, g)


@dataclass(frozen=True)
class _Spec:
    """How to sample one named data set."""

    num_classes: int
    sampler: _Sampler
    weights: tuple[float, ...] | None = None  # None: uniform over classes


def _gaussian_mixture_spec() -> _Spec:
    mixture = default_gaussian_mixture()
    weights = tuple(float(w) for w in mixture.weights)
    return _Spec(mixture.num_components, _gaussian_mixture, weights)


_SPECS: dict[str, _Spec] = {
    "moons": _Spec(2, _moons),
    "circles": _Spec(2, _circles),
    "swiss_roll": _Spec(4, _swiss_roll),
    "spirals": _Spec(2, _spirals),
    "checkerboard": _Spec(8, _checkerboard),
    "8gaussians": _Spec(8, _eight_gaussians),
    "gaussian_mixture": _gaussian_mixture_spec(),
}


def list_2d_datasets() -> list[str]:
    """Names accepted by ``sample_2d`` (lower case, in a fixed order)."""
    return list(_SPECS)


def _spec(name: str) -> _Spec:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}.")
    try:
        return _SPECS[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown 2D data set {name!r}; known data sets: {', '.join(_SPECS)}."
        ) from None


def num_classes(name: str) -> int:
    """Number of classes of the named data set (labels are ``0 .. num_classes - 1``).

    Args:
        name: Data set name (case-insensitive), one of ``list_2d_datasets()``.

    Returns:
        The number of classes.
    """
    return _spec(name).num_classes


def class_weights(name: str) -> torch.Tensor:
    """Probability of each class under ``sample_2d(name, ...)``.

    Args:
        name: Data set name (case-insensitive).

    Returns:
        Class probabilities, shape ``(num_classes,)``, ``float32``, summing to one.
    """
    spec = _spec(name)
    if spec.weights is None:
        return torch.full((spec.num_classes,), 1.0 / spec.num_classes)
    return torch.tensor(spec.weights, dtype=torch.float32)


def sample_2d(
    name: str,
    n: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> ToySample:
    """Sample ``n`` i.i.d. labelled points from a named 2D distribution.

    Args:
        name: Data set name (case-insensitive), one of ``list_2d_datasets()``.
        n: Number of points (positive int).
        seed: Seed for a fresh CPU generator; the same seed gives identical samples.
        generator: A torch generator to draw from instead (not with ``seed``).
            With neither, torch's global RNG is used.

    Returns:
        ``ToySample`` with ``points`` (n, 2) float32 and ``labels`` (n,) int64 in
        ``0 .. num_classes(name) - 1``, on the generator's device (CPU by default).

    Raises:
        ValueError: For an unknown name, non-positive ``n``, or both seed and generator.
        TypeError: For a non-int ``n`` or ``seed``.
    """
    spec = _spec(name)
    n = check_positive_int(n, "n")
    g = resolve_generator(seed, generator)
    probs = class_weights(name).to(generator_device(g))
    labels = torch.multinomial(probs, n, replacement=True, generator=g)
    return ToySample(points=spec.sampler(labels, g).to(torch.float32), labels=labels)


def sample_2d_class(
    name: str,
    n: int,
    class_id: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> ToySample:
    """Sample ``n`` points of one class of a named 2D distribution.

    The points follow the class-conditional law ``p(x | y = class_id)``
    (sampled directly, not by rejection).

    Args:
        name: Data set name (case-insensitive), one of ``list_2d_datasets()``.
        n: Number of points (positive int).
        class_id: Class to sample, in ``0 .. num_classes(name) - 1``.
        seed: Seed for a fresh CPU generator.
        generator: A torch generator to draw from instead (not with ``seed``).

    Returns:
        ``ToySample`` with ``points`` (n, 2) float32 and ``labels`` (n,) int64, all
        equal to ``class_id``.

    Raises:
        ValueError: For an unknown name, non-positive ``n``, or a class id out of range.
        TypeError: For a non-int ``class_id``, ``n`` or ``seed``.
    """
    spec = _spec(name)
    n = check_positive_int(n, "n")
    if isinstance(class_id, bool) or not isinstance(class_id, int):
        raise TypeError(f"class_id must be an int; got {class_id!r} ({type(class_id).__name__}).")
    if not 0 <= class_id < spec.num_classes:
        raise ValueError(
            f"class_id {class_id} is out of range for {name.lower()!r}: allowed class ids are "
            f"0..{spec.num_classes - 1}."
        )
    g = resolve_generator(seed, generator)
    labels = torch.full((n,), class_id, dtype=torch.int64, device=generator_device(g))
    return ToySample(points=spec.sampler(labels, g).to(torch.float32), labels=labels)
