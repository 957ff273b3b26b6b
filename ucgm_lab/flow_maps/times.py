"""The (r, t) training-time distribution of MeanFlow (Geng et al. 2025, section 4.3 and Tab. 1).

Two times are drawn from a logit-normal distribution, t = sigmoid(mean + std * n) with
n ~ N(0, 1) (the time-sampler ablation of MeanFlow Tab. 1 finds a logit-normal sampler best;
the default mean -0.4, std 1.0 is that of common re-implementations, not checked against the
table), and ordered so that r <= t; then a fraction of the pairs is set to r = t (the ratio
ablation of MeanFlow Tab. 1: 25% of pairs with r != t is its best, i.e.
``equal_fraction = 0.75``). A pair with r = t trains the instantaneous velocity,
i.e. plain flow matching: the MeanFlow target is then v itself.

Time convention: the library's (data at t = 0, noise at t = 1), which is MeanFlow's too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FlowMapTimeDistribution", "check_time_pair"]


@dataclass(frozen=True)
class FlowMapTimeDistribution:
    """Draws (r, t) with 0 < r <= t < 1: ordered logit-normal pairs, a fraction with r = t.

    Attributes:
        mean: Mean of the normal variable inside the sigmoid (-0.4, the default of common
            MeanFlow re-implementations).
        std: Its standard deviation, > 0 (1.0, likewise).
        equal_fraction: Probability that a pair gets r = t, in [0, 1] (MeanFlow: 0.75, i.e.
            "25% of r != t"). Drawn per sample by a random mask, so any batch size works.
    """

    mean: float = -0.4
    std: float = 1.0
    equal_fraction: float = 0.75

    def __post_init__(self) -> None:
        for name in ("mean", "std", "equal_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}.")
        if not self.std > 0:
            raise ValueError(f"std must be > 0 (the logit-normal's spread), got {self.std}.")
        if not 0 <= self.equal_fraction <= 1:
            raise ValueError(
                f"equal_fraction (the share of pairs with r = t) must lie in [0, 1], "
                f"got {self.equal_fraction}."
            )

    def sample(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw n pairs.

        Args:
            n: Number of pairs (>= 1).
            device: Device of the result (the draw itself is made on the generator's device,
                or the CPU).
            dtype: Floating dtype of the result.
            generator: Optional torch generator for every random draw.

        Returns:
            (r, t), each of shape (n,), with r <= t elementwise.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}.")
        draw_device = generator.device if generator is not None else torch.device("cpu")
        normal = torch.randn(2, n, generator=generator, device=draw_device, dtype=torch.float64)
        pair = torch.sigmoid(self.mean + self.std * normal)
        t, r = pair.max(0).values, pair.min(0).values
        equal = torch.rand(n, generator=generator, device=draw_device) < self.equal_fraction
        r = torch.where(equal, t, r)
        return r.to(device=device, dtype=dtype), t.to(device=device, dtype=dtype)


def check_time_pair(r: Tensor, t: Tensor, batch: int) -> None:
    """Raise a clear error unless r and t are (batch,) tensors with 0 <= r <= t <= 1.

    Args:
        r: Second (earlier) time, shape (batch,).
        t: Time of the input z_t, shape (batch,).
        batch: The batch size.
    """
    for name, value in (("r", r), ("t", t)):
        if not torch.is_tensor(value) or value.shape != (batch,):
            got = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise ValueError(f"{name} must be a tensor of shape ({batch},), got {got}.")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}.")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or inf values.")
    if bool((r < 0).any()) or bool((t > 1).any()) or bool((r > t).any()):
        raise ValueError(
            "the times must satisfy 0 <= r <= t <= 1 (data at 0, noise at 1; the flow map "
            f"moves from t back to r); got r in [{float(r.min()):.4g}, {float(r.max()):.4g}], "
            f"t in [{float(t.min()):.4g}, {float(t.max()):.4g}], "
            f"{int((r > t).sum())} pairs with r > t."
        )
