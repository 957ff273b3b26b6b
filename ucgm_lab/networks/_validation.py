"""Input checks shared by the networks: the ``(x_t, t, y)`` calling convention.

Every network in :mod:`ucgm_lab.networks` is called as ``model(x_t, t, y=None)``:

* ``x_t``: ``(B, ...)`` network input (its exact trailing shape is checked by the network),
* ``t``: ``(B,)`` floating-point time in ``[0, 1]`` (values are not checked, so that the
  check never forces a device synchronisation),
* ``y``: ``None`` or an integer tensor ``(B,)`` of class ids in ``[0, num_classes]``, where
  ``num_classes`` itself is the "null" class used by label dropout / classifier-free guidance.
  Class ids are range-checked, which reads ``y.min()``/``y.max()`` (one small device sync).
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_time(t: Tensor, batch_size: int) -> None:
    """Check that ``t`` is a floating-point tensor of shape ``(batch_size,)``.

    Args:
        t: Time tensor, expected shape ``(B,)`` and a floating dtype.
        batch_size: ``B``, the batch size of ``x_t``.

    Raises:
        TypeError: If ``t`` is not a tensor or not floating point.
        ValueError: If ``t`` does not have shape ``(batch_size,)``.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a torch.Tensor of shape ({batch_size},), got {type(t)!r}")
    if not t.is_floating_point():
        raise TypeError(f"t must be a floating-point tensor (time in [0, 1]), got dtype {t.dtype}")
    if t.shape != (batch_size,):
        raise ValueError(
            f"t must have shape (B,) = ({batch_size},) to match x_t, got {tuple(t.shape)}; "
            f"for one shared time use t.expand({batch_size}) or torch.full(({batch_size},), t)"
        )


def resolve_labels(
    y: Tensor | None, batch_size: int, num_classes: int | None, device: torch.device
) -> Tensor | None:
    """Check class labels and replace ``None`` with the null class.

    Args:
        y: ``None`` or an integer tensor ``(B,)`` of class ids in ``[0, num_classes]``.
        batch_size: ``B``, the batch size of ``x_t``.
        num_classes: Number of real classes of the network, or ``None`` for an
            unconditional network.
        device: Device on which to create the null labels when ``y`` is ``None``.

    Returns:
        ``None`` for an unconditional network; otherwise an int64 tensor ``(B,)`` in which
        ``y=None`` became ``num_classes`` (the null class) for every row.

    Raises:
        ValueError: If ``y`` is given to an unconditional network, has the wrong shape, or
            holds ids outside ``[0, num_classes]``.
        TypeError: If ``y`` is not an integer tensor.
    """
    if num_classes is None:
        if y is not None:
            raise ValueError(
                "this network was built without classes (num_classes=None), so y must be None; "
                "build it with num_classes=K to condition on class labels"
            )
        return None
    if y is None:
        return torch.full((batch_size,), num_classes, dtype=torch.long, device=device)
    if not isinstance(y, Tensor):
        raise TypeError(
            f"y must be None or an int64 tensor of shape ({batch_size},), got {type(y)!r}"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer (int64) tensor of class ids, got dtype {y.dtype}")
    if y.shape != (batch_size,):
        raise ValueError(
            f"y must have shape (B,) = ({batch_size},) to match x_t, got {tuple(y.shape)}"
        )
    if batch_size > 0:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high > num_classes:
            raise ValueError(
                f"class ids must lie in [0, {num_classes}] ({num_classes} is the null class), "
                f"got values in [{low}, {high}]"
            )
    return y.long()


def flow_map_interval(
    name: str, flow_map: bool, t: Tensor, r: Tensor | None, batch_size: int
) -> Tensor | None:
    """The interval ``t - r`` a flow-map network embeds, or None for a plain network.

    Args:
        name: The network's class name, for the message.
        flow_map: Whether the network was built with ``flow_map=True``.
        t: Time, shape ``(batch_size,)``.
        r: The second time, shape ``(batch_size,)``, or None (r = t: the interval is 0).
        batch_size: B.

    Raises:
        ValueError: ``r`` given to a network built without ``flow_map``.
    """
    if not flow_map:
        if r is not None:
            raise ValueError(
                f"{name} got a second time r but was built with flow_map=False; build it with "
                f"{name}(..., flow_map=True) to train a flow map, or call it without r."
            )
        return None
    if r is None:
        return t - t
    check_time(r, batch_size)
    return t - r
