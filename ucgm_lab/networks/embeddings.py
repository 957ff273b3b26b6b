"""Time and class embeddings used to condition the networks.

* :func:`sinusoidal_embedding` / :class:`SinusoidalTimeEmbedding`: the fixed (parameter-free)
  transformer/DDPM sinusoidal features of a scalar time. The network time ``t`` lies in
  ``[0, 1]``; it is multiplied by ``scale`` (default ``1000``, the usual DDPM step range) before
  the sinusoids so that the frequencies span the same range as in DDPM-style networks.
* :class:`ClassEmbedding`: a learned table with ``num_classes + 1`` rows; the last row
  (index ``num_classes``) is the "null" class used for label dropout and classifier-free
  guidance.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

DEFAULT_TIME_SCALE = 1000.0
DEFAULT_MAX_PERIOD = 10000.0


def sinusoidal_embedding(
    t: Tensor,
    dim: int,
    scale: float = DEFAULT_TIME_SCALE,
    max_period: float = DEFAULT_MAX_PERIOD,
) -> Tensor:
    """Sinusoidal features of a batch of scalar times.

    With ``half = dim // 2`` and frequencies ``f_k = max_period ** (-k / half)`` for
    ``k = 0..half-1``, the output row for time ``t_b`` is
    ``[cos(scale * t_b * f_0), ..., cos(scale * t_b * f_{half-1}), sin(...), ...]``.

    Args:
        t: Times, shape ``(B,)``, floating point (network time in ``[0, 1]``).
        dim: Embedding size; must be a positive even integer.
        scale: Factor applied to ``t`` before the sinusoids (``1000`` maps ``[0, 1]`` onto the
            DDPM step range).
        max_period: Longest period of the sinusoids (in units of ``scale * t``).

    Returns:
        Tensor of shape ``(B, dim)`` with the dtype of ``t`` (at least float32).

    Raises:
        ValueError: If ``dim`` is not a positive even integer or ``t`` is not 1-D.
    """
    if not isinstance(dim, int) or dim <= 0 or dim % 2 != 0:
        raise ValueError(f"embedding dim must be a positive even integer, got {dim!r}")
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    dtype = t.dtype if t.dtype == torch.float64 else torch.float32
    half = dim // 2
    exponents = torch.arange(half, device=t.device, dtype=dtype) / half
    freqs = torch.exp(-math.log(max_period) * exponents)
    args = (scale * t.to(dtype))[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class SinusoidalTimeEmbedding(nn.Module):
    """Parameter-free module wrapper of :func:`sinusoidal_embedding`.

    Args:
        dim: Embedding size (positive, even).
        scale: Factor applied to ``t`` in ``[0, 1]`` before the sinusoids (default ``1000``).
        max_period: Longest period of the sinusoids.
    """

    def __init__(
        self,
        dim: int,
        scale: float = DEFAULT_TIME_SCALE,
        max_period: float = DEFAULT_MAX_PERIOD,
    ) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim <= 0 or dim % 2 != 0:
            raise ValueError(f"time_embed_dim must be a positive even integer, got {dim!r}")
        self.dim = dim
        self.scale = float(scale)
        self.max_period = float(max_period)

    def forward(self, t: Tensor) -> Tensor:
        """Embed times.

        Args:
            t: Times, shape ``(B,)``.

        Returns:
            Features of shape ``(B, dim)``.
        """
        return sinusoidal_embedding(t, self.dim, self.scale, self.max_period)

    def extra_repr(self) -> str:
        """Summarise the settings for ``print(module)``."""
        return f"dim={self.dim}, scale={self.scale:g}, max_period={self.max_period:g}"


class ClassEmbedding(nn.Module):
    """Learned class embedding with an extra null class in the last row.

    Row ``k`` (``0 <= k < num_classes``) embeds class ``k``; row ``num_classes``
    (:attr:`null_class`) embeds "no label", used by label dropout and classifier-free guidance.
    Weights are initialised from ``N(0, 1)`` (the :class:`torch.nn.Embedding` default).

    Args:
        num_classes: Number of real classes (``>= 1``).
        dim: Embedding size.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"class embedding dim must be a positive integer, got {dim!r}")
        self.num_classes = num_classes
        self.null_class = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: Tensor) -> Tensor:
        """Look up class embeddings.

        Args:
            y: Int64 class ids, shape ``(B,)``, values in ``[0, num_classes]`` (already
                checked; see :func:`ucgm_lab.networks._validation.resolve_labels`).

        Returns:
            Embeddings of shape ``(B, dim)``.
        """
        return self.table(y)
