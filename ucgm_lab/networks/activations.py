"""Named activation functions, so that a network's config can store its activation as text."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
}


def activation_name(activation: str | type[nn.Module]) -> str:
    """Return the registered name of an activation given by name or by class.

    Args:
        activation: A name such as ``"silu"`` (case-insensitive) or a class such as
            ``torch.nn.SiLU``.

    Returns:
        The lower-case name, a key of :data:`ACTIVATIONS`.

    Raises:
        ValueError: If the activation is not one of :data:`ACTIVATIONS`.
    """
    known = ", ".join(sorted(ACTIVATIONS))
    if isinstance(activation, str):
        name = activation.lower()
        if name in ACTIVATIONS:
            return name
    elif isinstance(activation, type):
        for name, cls in ACTIVATIONS.items():
            if activation is cls:
                return name
    raise ValueError(
        f"unknown activation {activation!r}; "
        f"allowed: names {known} or the matching torch.nn classes"
    )


def make_activation(name: str) -> nn.Module:
    """Instantiate the activation registered under ``name`` (see :func:`activation_name`)."""
    return ACTIVATIONS[activation_name(name)]()
