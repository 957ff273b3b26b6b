"""Argument validation shared by the toy data samplers."""

from __future__ import annotations

import torch

__all__ = ["check_positive_int", "generator_device", "resolve_generator"]


def check_positive_int(value: object, what: str) -> int:
    """Return ``value`` if it is a positive ``int``, else raise.

    Args:
        value: The value to check.
        what: Name of the argument, used in the error message.

    Returns:
        The value as an ``int``.

    Raises:
        TypeError: If ``value`` is not an ``int`` (``bool`` is rejected too).
        ValueError: If ``value`` is not positive.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive int; got {value!r} ({type(value).__name__}).")
    if value <= 0:
        raise ValueError(f"{what} must be a positive int; got {value}.")
    return value


def resolve_generator(
    seed: int | None, generator: torch.Generator | None
) -> torch.Generator | None:
    """Turn the ``seed`` / ``generator`` pair of a sampler into one generator.

    Args:
        seed: Integer seed for a fresh CPU generator, or ``None``.
        generator: An existing generator, or ``None``.

    Returns:
        A seeded CPU generator if ``seed`` was given, ``generator`` if it was given,
        or ``None`` (sample from torch's global RNG) if neither was given.

    Raises:
        ValueError: If both ``seed`` and ``generator`` are given.
        TypeError: If ``seed`` is not an ``int`` or ``generator`` is not a
            ``torch.Generator``.
    """
    if seed is not None and generator is not None:
        raise ValueError("Pass either seed or generator, not both.")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None; got {seed!r} ({type(seed).__name__}).")
        return torch.Generator().manual_seed(seed)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__}."
        )
    return generator


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Device on which to draw random numbers for ``generator`` (CPU if ``None``)."""
    return torch.device("cpu") if generator is None else generator.device
