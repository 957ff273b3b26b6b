"""The model convention shared by the objective, the sampler and the trainer.

A UCGM network is any callable ``model(x_t, t, y=None) -> F`` with x_t of shape (B, ...),
t of shape (B,) (the network's own time input, see ``Transport.model_time``), y None or an
int64 tensor of shape (B,) of class ids, and F of the same shape as x_t. A model without
class input is called as ``model(x_t, t)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = [
    "unwrap_model",
    "Model",
    "call_model",
    "check_batch",
    "check_labels",
    "check_model_takes_labels",
    "model_dtype",
    "resolve_null_class",
]

Model = Callable[..., Tensor]


def _wrapper_types() -> tuple[tuple[type, str], ...]:
    """The distributed / compile wrapper classes and the attribute holding their model.

    ``torch.compile``'s ``OptimizedModule`` and FSDP are looked up only if their modules are
    already imported: a model cannot be an instance of a class nobody has loaded, and
    importing ``torch._dynamo`` just to check would cost a second.
    """
    found: list[tuple[type, str]] = [
        (nn.DataParallel, "module"),
        (nn.parallel.DistributedDataParallel, "module"),
    ]
    dynamo = sys.modules.get("torch._dynamo.eval_frame")
    if dynamo is not None and hasattr(dynamo, "OptimizedModule"):
        found.append((dynamo.OptimizedModule, "_orig_mod"))
    fsdp = sys.modules.get("torch.distributed.fsdp")
    if fsdp is not None and hasattr(fsdp, "FullyShardedDataParallel"):
        found.append((fsdp.FullyShardedDataParallel, "module"))
    return tuple(found)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip distributed / compile wrappers from a model.

    Only the known wrapper classes are stripped, by type (``DataParallel``,
    ``DistributedDataParallel``, FSDP: ``.module``; ``torch.compile``'s ``OptimizedModule``:
    ``._orig_mod``), never by attribute: a wrapper that is part of the model, such as
    :class:`~ucgm_lab.networks.TimeScaled` (whose ``__getattr__`` forwards ``.module`` of the
    network inside it), stays.
    """
    wrappers = _wrapper_types()
    while True:
        for cls, attribute in wrappers:
            if isinstance(model, cls):
                inner = getattr(model, attribute)
                if isinstance(inner, nn.Module):
                    model = inner
                    break
        else:
            return model


def call_model(model: Model, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
    """Call ``model(x_t, t[, y])`` and check that the output has the input's shape.

    Args:
        model: A UCGM network.
        x_t: Input, shape (B, ...).
        t: Network time, shape (B,).
        y: Optional class ids, shape (B,).

    Returns:
        F, shape (B, ...).
    """
    F = model(x_t, t) if y is None else model(x_t, t, y)
    if not torch.is_tensor(F) or F.shape != x_t.shape:
        got = tuple(F.shape) if torch.is_tensor(F) else type(F).__name__
        raise ValueError(
            f"The model must return a tensor shaped like its input {tuple(x_t.shape)}; got {got}. "
            "UCGM models follow model(x_t, t, y=None) -> F."
        )
    return F


def resolve_null_class(model: Model, null_class: int | None) -> int | None:
    """The class id that means "no class": the given one, else ``model.null_class``.

    Falls back to ``model.num_classes`` (the reference implementation puts the null class
    after the last real class, docs/paper-notes.md R7). Returns None when nothing is known.
    """
    if null_class is not None:
        return int(null_class)
    inner = unwrap_model(model) if isinstance(model, nn.Module) else model
    for attr in ("null_class", "num_classes"):
        value = getattr(inner, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_batch(x: Tensor, what: str = "x") -> None:
    """Raise a clear error unless ``x`` is a floating tensor with a batch dimension."""
    if not torch.is_tensor(x):
        raise TypeError(
            f"{what} must be a torch.Tensor of shape (batch, ...), got {type(x).__name__}."
        )
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{what} must have shape (batch, ...) with batch >= 1 and at least one feature "
            f"dimension (e.g. (B, 2) or (B, C, H, W)); got shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {x.dtype}.")


def check_labels(y: Tensor | None, batch: int, what: str = "y") -> None:
    """Raise a clear error unless ``y`` is None or an integer tensor of shape (batch,)."""
    if y is None:
        return
    if not torch.is_tensor(y) or y.dtype not in (
        torch.int64,
        torch.int32,
        torch.int16,
        torch.uint8,
    ):
        raise TypeError(f"{what} must be an integer tensor of class ids of shape ({batch},).")
    if y.shape != (batch,):
        raise ValueError(
            f"{what} must have shape ({batch},) (one class id per sample); got {tuple(y.shape)}."
        )


def check_model_takes_labels(model: Model, y: Tensor | None) -> None:
    """Raise a clear error when labels are given to a model that declares no classes.

    A model declares itself unconditional with ``num_classes = None`` (the library's networks
    do); models without the attribute are not checked.
    """
    if y is None:
        return
    inner = unwrap_model(model) if isinstance(model, nn.Module) else model
    if hasattr(inner, "num_classes") and inner.num_classes is None:
        raise ValueError(
            f"Class labels y were given but the model {type(inner).__name__} is unconditional "
            "(num_classes=None). Call it without y, or build a class-conditional model "
            "(num_classes=K)."
        )


def model_dtype(model: Model, fallback: torch.dtype) -> torch.dtype:
    """The dtype of the model's first floating parameter, else ``fallback``.

    The objective and the sampler call a network in this dtype (the model's dtype wins over
    the data's), so float16 or float64 data work with a float32 model and vice versa.
    """
    if isinstance(model, nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return fallback
