"""What a transport gives at some times, and the per-sample time broadcast.

The coefficients (alpha, gamma, alpha_hat, gamma_hat, D), the decomposition of eq. (2) and
:func:`broadcast_time`, which every method of :class:`~ucgm_lab.transports.Transport` uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["CoefficientFn", "Coefficients", "Decomposition", "broadcast_time"]

CoefficientFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Coefficients:
    """The transport coefficients at some times, already shaped to broadcast against data.

    Attributes:
        alpha: alpha(t), the weight of the noise in x_t.
        gamma: gamma(t), the weight of the data in x_t.
        alpha_hat: alpha_hat(t), the weight of the noise in the target.
        gamma_hat: gamma_hat(t), the weight of the data in the target.
    """

    alpha: Tensor
    gamma: Tensor
    alpha_hat: Tensor
    gamma_hat: Tensor

    @property
    def D(self) -> Tensor:
        """D(t) = alpha gamma_hat - alpha_hat gamma (constraint (c), denominator of eq. 2)."""
        return self.alpha * self.gamma_hat - self.alpha_hat * self.gamma


@dataclass(frozen=True)
class Decomposition:
    """Estimates of the data and the noise in x_t from one network output (eq. 2).

    Attributes:
        x_hat: f^x(F, x_t, t), shape of x_t.
        z_hat: f^z(F, x_t, t), shape of x_t.
    """

    x_hat: Tensor
    z_hat: Tensor


def broadcast_time(t: Tensor | float, like: Tensor) -> Tensor:
    """Shape per-sample times so that they broadcast against a batch of data.

    Args:
        t: A Python number, a 0-d tensor, or a tensor of shape (B,) with one time per sample
            (or already of shape (B, 1, ..., 1)).
        like: Data of shape (B, ...).

    Returns:
        A tensor of shape (B, 1, ..., 1) (or a 0-d tensor for a scalar ``t``) on ``like``'s device.

    Raises:
        ValueError: If ``t`` is not a scalar and not of shape (B,).
    """
    if not torch.is_tensor(t):
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    t = t.to(device=like.device)
    if t.ndim == 0:
        return t
    if like.ndim > 1 and t.ndim == like.ndim and t.shape[0] == like.shape[0] and t[0].numel() == 1:
        return t
    if t.ndim != 1 or like.ndim == 0 or t.shape[0] != like.shape[0]:
        raise ValueError(
            f"t must be a scalar or have shape (batch,) = ({like.shape[0] if like.ndim else '?'},) "
            f"to match data of shape {tuple(like.shape)}; got t of shape {tuple(t.shape)}."
        )
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))
