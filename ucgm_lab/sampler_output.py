"""UCGM-S's result and errors.

:class:`SampleOutput`, :class:`NonFiniteSampleError` and the one-line message that names the
step and the cause of a NaN or inf.

Split out of :mod:`ucgm_lab.sampler`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .transports import Decomposition

__all__ = ["NonFiniteSampleError", "SampleOutput"]


class NonFiniteSampleError(FloatingPointError):
    """The sampler's state went NaN or inf; the message names the step and the cause."""


@dataclass(frozen=True)
class SampleOutput:
    """Result of :func:`sample`.

    Attributes:
        sample: The generated data, shape (B, ...), in the noise tensor's dtype.
        x_hat: Per-step data estimates x^_i (Alg. 2 line 3, before extrapolation), shape
            (N, B, ...): the "history samples" that the notebooks draw (Fig. 2).
        z_hat: Per-step noise estimates z^_i, shape (N, B, ...).
        states: The states x~ at t_0, ..., t_{N-1} and the final sample, shape (N + 1, B, ...).
        times: The time grid t_0 > ... > t_N = 0, shape (N + 1,), float64.
        nfe: Number of network evaluations made (a guided evaluation counts 2).
    """

    sample: Tensor
    x_hat: Tensor
    z_hat: Tensor
    states: Tensor
    times: Tensor
    nfe: int


def _raise_non_finite(
    i: int, t_now: float, t_next: float, outputs: list[Tensor | None], est: Decomposition
) -> None:
    """Name the cause of a non-finite state at step i (called only on failure).

    ``outputs`` is (the network's output, the F used after guidance and the cast to the state
    dtype) of the last evaluation.
    """
    where = f"step {i} (t = {t_now:.6g} -> {t_next:.6g})"
    raw, used = outputs
    if raw is not None and not bool(torch.isfinite(raw).all()):
        raise NonFiniteSampleError(
            f"UCGM-S: the network output went NaN or inf at {where}. Check the model's weights "
            "and its inputs (the noise, y), and that the transport is the one it was trained with."
        )
    if used is not None and not bool(torch.isfinite(used).all()):
        raise NonFiniteSampleError(
            f"UCGM-S: the network output is finite but the F used at {where} is not: the "
            "guidance combination F_null + w (F_cond - F_null) or the cast to the state dtype "
            "overflowed. Lower guidance_scale, or keep the state in float64."
        )
    if not (bool(torch.isfinite(est.x_hat).all()) and bool(torch.isfinite(est.z_hat).all())):
        raise NonFiniteSampleError(
            f"UCGM-S: the decomposition (eq. 2) went NaN or inf at {where} although the network "
            "output is finite: a coefficient divides by (nearly) zero there. Start the grid "
            "slightly below 1 (gap_noise > 0) or above 0."
        )
    raise NonFiniteSampleError(
        f"UCGM-S: the state went NaN or inf at {where} although the network output is finite "
        "(an overflow in the update: extrapolation kappa, guidance scale or the order-2 "
        "correction). Try fewer extremes: a smaller kappa or guidance_scale, order 1, or "
        "correction='data'."
    )
