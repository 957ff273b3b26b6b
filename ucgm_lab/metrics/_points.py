"""Conversion of point clouds (torch tensors or array-likes) to float64 numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

PointsLike = Any
"""A torch tensor or numpy array-like of shape ``(n, d)`` (or ``(n,)``, read as ``(n, 1)``)."""


def as_points(points: PointsLike, name: str = "points") -> np.ndarray:
    """Return ``points`` as a float64 numpy array of shape ``(n, d)``.

    Args:
        points: Tensor (any device; detached and copied to the CPU) or array-like of shape
            ``(n, d)``, or ``(n,)`` which is read as ``n`` points in one dimension.
        name: Name used in error messages.

    Returns:
        Array of shape ``(n, d)``, dtype float64.

    Raises:
        ValueError: If the array is not 1-D or 2-D, holds no point, or has NaN/inf values.
    """
    if isinstance(points, torch.Tensor):
        arr = points.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) or (n,), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one point of dimension >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def as_point_pair(a: PointsLike, b: PointsLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert two point clouds with :func:`as_points` and check that their dimensions match.

    Raises:
        ValueError: If a cloud is malformed or the two have different dimensions ``d``.
    """
    pa, pb = as_points(a, "a"), as_points(b, "b")
    if pa.shape[1] != pb.shape[1]:
        raise ValueError(
            f"point clouds must have the same dimension d, got a: {pa.shape} and b: {pb.shape}"
        )
    return pa, pb
