"""UCGM-T's equation-level pieces: the distances, the target of Alg. 1 line 15, the enhancement.

Functions of tensors only (no model, no state); :class:`~ucgm_lab.objective.UCGMObjective`
assembles them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as torch_f
from torch import Tensor

from .transports import Coefficients

__all__ = [
    "HALF_PI",
    "enhance",
    "pseudo_huber_distance",
    "squared_l2_distance",
    "target_from_difference",
]

HALF_PI = math.pi / 2


def squared_l2_distance(F: Tensor, target: Tensor) -> Tensor:
    """The paper's squared L2 norm, averaged over the non-batch dims: mean((F - T)^2).

    Args:
        F: Shape (B, ...).
        target: Shape (B, ...).

    Returns:
        Shape (B,). Equals ||F - T||^2 / d with d the number of entries per sample.
    """
    return (F - target).pow(2).flatten(1).mean(1)


def pseudo_huber_distance(F: Tensor, target: Tensor, c: float, cosine_term: bool = False) -> Tensor:
    """The reference implementation's loss: sqrt(mean((F - T)^2) + c^2) - c (docs/paper-notes.md, R5).

    Optionally adds mean(1 - cosine_similarity(F, T, dim=1)) (cosine over dim 1, the channel
    or coordinate dimension, averaged over the rest).

    Args:
        F: Shape (B, ...).
        target: Shape (B, ...).
        c: Pseudo-Huber constant (0 for multi-step, 5 to 9 for few-step in the reference).
        cosine_term: Add the cosine term.

    Returns:
        Shape (B,).
    """
    dist = torch.sqrt((F - target).pow(2).flatten(1).mean(1) + c * c) - c
    if cosine_term:
        cos = torch_f.cosine_similarity(F, target, dim=1)
        dist = dist + (1 - cos).reshape(cos.shape[0], -1).mean(1)
    return dist


def target_from_difference(
    F_detached: Tensor, delta_f: Tensor, coeff: Coefficients, t_b: Tensor
) -> Tensor:
    """F_target = sg(F_t) - 4 alpha / (D sin(pi t / 2)) * Delta f (Alg. 1 line 15, eq. 5).

    Args:
        F_detached: sg(F_t), shape (B, ...).
        delta_f: The (clipped) finite difference, shape (B, ...).
        coeff: Transport coefficients at t, broadcast to (B, 1, ...).
        t_b: t broadcast to (B, 1, ...).

    Returns:
        F_target, shape (B, ...). For TrigFlow the factor is exactly -4.
    """
    return _target(F_detached, delta_f, coeff.alpha, coeff.D, torch.sin(HALF_PI * t_b))


def _target(F_detached: Tensor, delta_f: Tensor, alpha: Tensor, D: Tensor, sin_t: Tensor) -> Tensor:
    """:func:`target_from_difference` with D(t) and sin(pi t / 2) given (computed once per call)."""
    return F_detached - 4 * alpha / (D * sin_t) * delta_f


def enhance(
    value: Tensor,
    estimate: Tensor,
    reference: Tensor,
    zeta: float,
    enhanced: Tensor,
) -> Tensor:
    """The enhanced target of section 3.1 / App. B.1.4 for one of x or z (Alg. 1 line 6).

    For samples with ``enhanced`` true: value + zeta * (estimate - reference)
    (guidance-like enhancement); for the others the halfway rule value + (estimate - value) / 2.

    Args:
        value: x or z, shape (B, ...).
        estimate: The conditional estimate (f^x or f^z of sg(F_t), or of a frozen teacher).
        reference: What the estimate is compared with: the unconditional estimate (lambda = 0)
            or ``value`` itself (lambda > 0 with a frozen teacher, docs/paper-notes.md R3).
        zeta: Enhancement ratio.
        enhanced: Bool mask broadcastable to (B, ...).

    Returns:
        The enhanced value, shape (B, ...).
    """
    guided = value + zeta * (estimate - reference)
    halfway = 0.5 * (value + estimate)
    return torch.where(enhanced, guided, halfway)
