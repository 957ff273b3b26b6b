"""What every adapter returns: a UCGM network wrapper and the transport it was trained with.

An adapter presents a network trained under another paradigm (flow matching with data at
s = 1, DDPM epsilon/v prediction, an EDM denoiser) as a UCGM model: a callable
``model(x_t, t, y=None) -> F`` together with the :class:`~ucgm_lab.transports.Transport`
whose ``alpha, gamma, alpha_hat, gamma_hat`` describe how that network was trained. The
sampler is used unchanged::

    adapted = adapt_flow_matching(net)
    out = sample(adapted.model, noise, adapted.transport, steps=16, kappa=0.25)

The time the wrapper receives is ``transport.model_time(t)``, i.e. already the source
network's own time input (s = 1 - t for data-at-one flow models, the DDPM timestep index,
the EDM noise level sigma). The wrapper only has to bring the input and the output into
the source's convention: how the source is called (:data:`INPUT_CONVENTIONS`), an optional
rescaling of the input (EDM), and an optional map of the time argument (integer DDPM
timesteps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ucgm_lab.sampler import SampleOutput, sample
from ucgm_lab.transports import Transport

__all__ = [
    "INPUT_CONVENTIONS",
    "AdaptedModel",
    "AdaptedNetwork",
    "InputConvention",
    "call_source",
    "check_choice",
]

InputConvention = Literal["x_t", "t_x", "concat"]
INPUT_CONVENTIONS: tuple[str, ...] = ("x_t", "t_x", "concat")
"""How the source network is called with a batch x of shape (B, ...) and times t of shape (B,):

* ``"x_t"``: ``source(x, t)`` or ``source(x, t, y)`` (ucgm-lab, flow_matching's
  ``ModelWrapper``, diffusers' ``UNet2DModel``, EDM's ``EDMPrecond``);
* ``"t_x"``: ``source(t, x)`` or ``source(t, x, y)`` (torchdyn / torchdiffeq style, torchcfm's
  ``UNetModelWrapper``);
* ``"concat"``: ``source(torch.cat([x, t[:, None]], dim=-1))`` for flat x of shape (B, D)
  (torchcfm's ``MLP(dim, time_varying=True)``); no class labels.
"""

TimeFn = Callable[[Tensor], Tensor]


def check_choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise an error that lists them.

    Args:
        value: The user's choice.
        allowed: The accepted names.
        what: What is being chosen, for the message (e.g. "prediction").

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: If ``value`` is not in ``allowed``.
    """
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}; allowed: {', '.join(map(repr, allowed))}.")
    return value


def _unwrap_output(out: Any) -> Tensor:
    """Tensor output of a source network: diffusers-style ``.sample`` or a tuple's first item."""
    if torch.is_tensor(out):
        return out
    if hasattr(out, "sample") and torch.is_tensor(out.sample):
        return out.sample
    if isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        return out[0]
    raise TypeError(
        f"The source network returned {type(out).__name__}; expected a tensor, an object with a "
        "tensor `.sample` (diffusers), or a tuple whose first item is a tensor."
    )


def call_source(
    source: Callable[..., Any],
    x: Tensor,
    t: Tensor,
    y: Tensor | None = None,
    inputs: InputConvention = "x_t",
) -> Tensor:
    """Call a source network in its own convention (see :data:`INPUT_CONVENTIONS`).

    Args:
        source: The network trained elsewhere.
        x: Its input, shape (B, ...).
        t: Its time input (already in the source's time), shape (B,).
        y: Optional class ids, shape (B,).
        inputs: The calling convention.

    Returns:
        The network output as a tensor (diffusers' ``.sample`` is unwrapped).
    """
    if inputs == "x_t":
        out = source(x, t) if y is None else source(x, t, y)
    elif inputs == "t_x":
        out = source(t, x) if y is None else source(t, x, y)
    elif inputs == "concat":
        if y is not None:
            raise ValueError(
                "inputs='concat' (source(cat([x, t]))) has no place for class labels y; wrap the "
                "network as source(x, t, y) and use inputs='x_t'."
            )
        if x.ndim != 2:
            raise ValueError(
                f"inputs='concat' needs flat inputs of shape (B, D); got {tuple(x.shape)}."
            )
        out = source(torch.cat([x, t[:, None].to(x.dtype)], dim=-1))
    else:
        check_choice(inputs, INPUT_CONVENTIONS, "input convention")
        raise AssertionError  # unreachable
    return _unwrap_output(out)


class AdaptedNetwork(nn.Module):
    """``model(x_t, t, y=None) -> F``: a source network seen through a UCGM transport.

    ``t`` is the transport's ``model_time`` of the library time, i.e. the source's own time
    input. The wrapper calls ``source(x_t * input_scale(t), source_time(t)[, y])`` in the
    source's calling convention and returns the output unchanged: every adapter picks its
    transport so that the source's output already *is* the F of that transport.

    Args:
        source: The network trained elsewhere (an ``nn.Module`` is registered as a submodule,
            so ``.to()``, ``.eval()`` and ``.parameters()`` reach it).
        inputs: How to call the source (:data:`INPUT_CONVENTIONS`).
        input_scale: Optional map from the network time, shape (B,), to a per-sample factor
            applied to ``x_t`` before the call (EDM: sqrt(1 + sigma^2)).
        source_time: Optional map from the network time to the value passed to the source
            (e.g. rounding DDPM timesteps to integers). Identity by default.
    """

    def __init__(
        self,
        source: Callable[..., Any],
        *,
        inputs: InputConvention = "x_t",
        input_scale: TimeFn | None = None,
        source_time: TimeFn | None = None,
    ) -> None:
        super().__init__()
        if not callable(source):
            raise TypeError(f"source must be a callable network, got {type(source).__name__}.")
        self.inputs = check_choice(inputs, INPUT_CONVENTIONS, "input convention")
        self.source = source  # registered as a submodule when it is an nn.Module
        self._input_scale = input_scale
        self._source_time = source_time

    @property
    def null_class(self) -> int | None:
        """The source's ``null_class`` (for classifier-free guidance), if it has one."""
        return _int_attribute(self.source, "null_class")

    @property
    def num_classes(self) -> int | None:
        """The source's ``num_classes``, if it has one."""
        return _int_attribute(self.source, "num_classes")

    def forward(self, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """Evaluate the source network and return the transport's F.

        Args:
            x_t: The sampler's state, shape (B, ...).
            t: The network time ``transport.model_time(t_library)``, shape (B,).
            y: Optional class ids, shape (B,).

        Returns:
            F, shape of ``x_t``.
        """
        x_in = x_t
        if self._input_scale is not None:
            scale = self._input_scale(t).to(x_t.dtype)
            x_in = x_t * scale.reshape(scale.shape[0], *([1] * (x_t.ndim - 1)))
        t_in = t if self._source_time is None else self._source_time(t)
        return call_source(self.source, x_in, t_in, y, self.inputs)


def _int_attribute(obj: object, name: str) -> int | None:
    value = getattr(obj, name, None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


@dataclass(frozen=True, eq=False)
class AdaptedModel:
    """A network trained elsewhere, ready for :func:`ucgm_lab.sample`.

    Attributes:
        model: ``model(x_t, t, y=None) -> F`` (an :class:`AdaptedNetwork`).
        transport: The transport whose F the model outputs (its ``model_time`` maps the
            library time, data at 0, to the source network's time).
        mapping: One line: source convention -> transport, time and output conversion.
        native_grid: ``native_grid(steps)`` -> the library times (shape (steps,), decreasing,
            without the final 0) at which the source library's own Euler/DDIM sampler
            evaluates the network with ``steps`` evaluations.
        native_sampler: Name of that sampler, e.g. "flow_matching ODESolver(method='euler')".
    """

    model: AdaptedNetwork
    transport: Transport
    mapping: str
    native_grid: Callable[[int], Tensor]
    native_sampler: str

    def describe(self) -> str:
        """The one-line description of the mapping."""
        return self.mapping

    def time_points(self, steps: int) -> Tensor:
        """The source sampler's time grid in library time (pass as ``time_points=``).

        Args:
            steps: Number of network evaluations (>= 1).

        Returns:
            Float64 tensor of shape (steps,), strictly decreasing, in (0, 1].
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}.")
        return self.native_grid(steps)

    def sample(
        self,
        noise: Tensor,
        steps: int | None = None,
        *,
        native_grid: bool = False,
        **kwargs: Any,
    ) -> SampleOutput:
        """Shortcut for ``sample(self.model, noise, self.transport, steps, **kwargs)``.

        Args:
            noise: Initial state, shape (B, ...), N(0, I).
            steps: Number of network evaluations (see :func:`ucgm_lab.sample`).
            native_grid: Use the source sampler's grid (:meth:`time_points`) instead of
                UCGM-S's schedule; with ``kappa = rho = 0`` and ``order = 1`` the result then
                equals the source library's own Euler/DDIM sampler.
            **kwargs: Further arguments of :func:`ucgm_lab.sample` (kappa, order, rho, y, ...).

        Returns:
            The sampler's :class:`~ucgm_lab.sampler.SampleOutput`.
        """
        if native_grid:
            if steps is None:
                raise ValueError(
                    "native_grid=True needs steps (the number of network evaluations)."
                )
            if "time_points" in kwargs:
                raise ValueError("Give either native_grid=True or time_points, not both.")
            return sample(
                self.model, noise, self.transport, time_points=self.time_points(steps), **kwargs
            )
        return sample(self.model, noise, self.transport, steps, **kwargs)

    def __repr__(self) -> str:
        return f"AdaptedModel({self.mapping})"


def uniform_grid(steps: int, start: float = 1.0) -> Tensor:
    """``linspace(start, 0, steps + 1)[:-1]``: a uniform grid of library times, float64."""
    return torch.linspace(start, 0.0, steps + 1, dtype=torch.float64)[:-1]
