"""Turning a learner's answer into a tensor and comparing it, at the answer's own precision.

A correct answer is accepted whatever form it takes: a torch tensor (any float dtype), a Python or
NumPy number, a NumPy array, a SymPy number (``sp.Float``, ``sp.Rational``, ...). A float32 (or
float16 / bfloat16) answer is judged at its own precision, and the check then says "correct up to
float32" rather than pretending it matched to float64.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

__all__ = ["Mismatch", "as_tensor", "compare", "precision_seen", "tracking_precision"]


class Mismatch(Exception):  # noqa: N818 - an internal signal, not an error a user handles
    """Raised by a checker when the learner's answer is wrong; the message says where."""


# dtypes of the learner's answers seen during the current check (lowest precision wins)
_SEEN: list[list[torch.dtype]] = []

_LOW = (torch.float32, torch.float16, torch.bfloat16)


@contextmanager
def tracking_precision():
    """Collect, while active, the low-precision dtypes of the answers converted by as_tensor."""
    _SEEN.append([])
    try:
        yield _SEEN[-1]
    finally:
        _SEEN.pop()


def precision_seen(dtypes: list[torch.dtype]) -> torch.dtype | None:
    """The lowest precision among ``dtypes`` (None when every answer was float64)."""
    if not dtypes:
        return None
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def _record(dtype: torch.dtype) -> None:
    if _SEEN and dtype in _LOW:
        _SEEN[-1].append(dtype)


def _numpy_to_tensor(value: Any, where: str) -> Tensor:
    import numpy as np

    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise Mismatch(
            f"{where}: expected a number or an array of numbers, got a NumPy array of "
            f"dtype {array.dtype}."
        )
    out = torch.from_numpy(np.array(array, copy=True))
    if out.dtype.is_floating_point:
        _record(out.dtype)
    return out.to(torch.float64)


def _sympy_to_tensor(value: Any, where: str) -> Tensor:
    if getattr(value, "free_symbols", None):
        names = ", ".join(sorted(str(s) for s in value.free_symbols))
        raise Mismatch(
            f"{where}: your answer is the SymPy expression {value}, which still contains the "
            f"symbol(s) {names}; substitute the numbers (expr.subs(...)) and return a number."
        )
    try:
        return torch.tensor(float(value), dtype=torch.float64)
    except (TypeError, ValueError):
        raise Mismatch(f"{where}: the SymPy value {value} is not a real number.") from None


def as_tensor(value: Any, where: str) -> Tensor:
    """The answer as a float64 tensor, or :class:`Mismatch` saying what came back instead.

    Accepts tensors, Python / NumPy numbers and arrays, and SymPy numbers. Records a
    float32 / float16 / bfloat16 answer so that the check can report its precision.
    """
    if torch.is_tensor(value):
        if value.is_complex() or value.dtype == torch.bool:
            raise Mismatch(f"{where}: expected real numbers, got a tensor of dtype {value.dtype}.")
        _record(value.dtype)
        return value.detach().to(torch.float64)
    if isinstance(value, bool):
        raise Mismatch(f"{where}: expected a number or a tensor, got the bool {value}.")
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=torch.float64)
    module = type(value).__module__ or ""
    if module.startswith("numpy"):
        return _numpy_to_tensor(value, where)
    if module.startswith("sympy"):
        return _sympy_to_tensor(value, where)
    raise Mismatch(f"{where}: expected a number or a tensor, got {type(value).__name__}.")


def _short(value: Any) -> str:
    if torch.is_tensor(value):
        if value.ndim == 0:
            return f"{float(value):.5g}"
        flat = value.detach().flatten()
        shown = ", ".join(f"{float(v):.5g}" for v in flat[:4])
        more = ", ..." if flat.numel() > 4 else ""
        return f"[{shown}{more}] (shape {tuple(value.shape)})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _tolerance(got: Any, atol: float) -> float:
    """``atol`` for float64 answers; 64 ulps of the answer's dtype for lower precisions."""
    dtype = got.dtype if torch.is_tensor(got) else getattr(got, "dtype", None)
    if dtype is not None and not torch.is_tensor(got):  # NumPy
        dtype = {"float32": torch.float32, "float16": torch.float16}.get(str(dtype))
    if dtype in _LOW:
        return max(atol, 64 * torch.finfo(dtype).eps)
    return atol


def compare(got: Any, expected: Tensor | float, where: str, atol: float = 1e-8) -> None:
    """Raise :class:`Mismatch` unless ``got`` equals ``expected`` (shape and values).

    Args:
        got: The learner's value (tensor, number, NumPy or SymPy value).
        expected: The correct value.
        where: The case, e.g. "transport Linear, t = 0.3, x_hat".
        atol: Absolute and relative tolerance for float64 answers; a float32 answer gets 64
            float32 ulps (relative and absolute) instead.
    """
    tol = _tolerance(got, atol)
    got_t = as_tensor(got, where)
    exp_t = as_tensor(expected, where)
    if got_t.shape != exp_t.shape:
        if got_t.numel() == exp_t.numel() == 1:
            got_t = got_t.reshape(exp_t.shape)
        else:
            raise Mismatch(
                f"{where}: expected shape {tuple(exp_t.shape)}, got shape {tuple(got_t.shape)} "
                f"(expected {_short(exp_t)}, got {_short(got_t)})."
            )
    if not torch.isfinite(got_t).all():
        raise Mismatch(f"{where}: your answer has non-finite entries: {_short(got_t)}.")
    if not torch.allclose(got_t, exp_t, rtol=tol, atol=tol):
        err = (got_t - exp_t).abs()
        k = int(err.flatten().argmax())
        raise Mismatch(
            f"{where}: expected {_short(exp_t)}, got {_short(got_t)} "
            f"(largest difference {float(err.flatten()[k]):.3g} at entry {k})."
        )
