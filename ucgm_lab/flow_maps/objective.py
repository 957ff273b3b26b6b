"""The MeanFlow objective: a flow map u(z_t, r, t) trained on the library's transports.

Geng, Deng, Bai, Kolter, He 2025, "Mean Flows for One-step Generative Modeling", arXiv
2505.13447 (equation, section and algorithm numbers as in its arXiv version, checked against
its text; docs/paper-notes.md, M).

MeanFlow learns the *average* velocity between two times instead of the instantaneous one:

    u(z_t, r, t) = 1 / (t - r) * int_r^t v(z_tau, tau) d tau                   (MeanFlow eq. 3)

Differentiating (t - r) u = int_r^t v in t gives the MeanFlow identity

    u(z_t, r, t) = v(z_t, t) - (t - r) d/dt u(z_t, r, t)                       (MeanFlow eq. 6)

with the total derivative along the flow, d/dt u = v . d_z u + d_t u (MeanFlow eq. 8; dr/dt = 0).
The network u_theta regresses on the stop-gradient target built from its own derivative:

    L = E || u_theta(z_t, r, t) - sg(u_tgt) ||^2,                              (MeanFlow eq. 9)
    u_tgt = v_t - (t - r) (v_t . d_z u_theta + d_t u_theta),                   (MeanFlow eq. 11)

where v_t is the conditional velocity of the path (MeanFlow eq. 10 writes the target with the
marginal velocity v(z_t, t); eq. 11 replaces it by v_t, as conditional flow matching does) (for the linear path z_t = (1 - t) x + t e,
v_t = e - x). The bracket is one Jacobian-vector product of the network with the tangent
(v_t, 0, 1) for the inputs (z, r, t) (``torch.func.jvp``): one forward-mode pass, no finite
difference. Each sample's squared error is weighted by the adaptive weight
w = sg(1 / (||Delta||^2 + c)^p) (MeanFlow section 4.3, "Loss Metrics": p = 1 - gamma for the
loss ||Delta||^2gamma, c > 0 such as 1e-3).

The path: MeanFlow uses the linear path, which is the library's ``"linear"`` transport
(x_t = alpha z + gamma x with alpha = t, gamma = 1 - t: MeanFlow's z_t = (1 - t) x + t e, with
its e our z). Any library transport whose network target F = alpha_hat z + gamma_hat x *is* the
velocity d x_t / dt (alpha_hat = alpha', gamma_hat = gamma') and whose network time is the
library's time is accepted; the others are refused with the reason.

Where r = t the target is v_t (flow matching, UCGM at lambda = 0 on the linear transport);
UCGM at lambda = 1 trains the other end, the consistency function f(x_t, t) = x_t - t u(x_t, 0, t)
(r = 0) only (notebook 15, docs/architecture.md).

Not implemented: MeanFlow's classifier-free guidance in training (its eqs. 13 onwards) and
label dropout; class labels are passed to the network as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..model_api import (
    Model,
    check_batch,
    check_labels,
    check_model_takes_labels,
    model_dtype,
    unwrap_model,
)
from ..objective import _check_number
from ..transports import Transport, broadcast_time, get_transport
from .times import FlowMapTimeDistribution, check_time_pair

__all__ = [
    "MeanFlowObjective",
    "MeanFlowOutput",
    "adaptive_weight",
    "call_flow_map",
    "check_flow_map_model",
    "check_velocity_transport",
    "meanflow_target",
]


@dataclass(frozen=True)
class MeanFlowOutput:
    """Result of one evaluation of the MeanFlow objective.

    Attributes:
        loss: Scalar mean of ``per_sample_loss`` (differentiable).
        per_sample_loss: Shape (B,), sg(w) * ||u_theta - sg(u_tgt)||^2 (differentiable).
        r: Shape (B,), the earlier times.
        t: Shape (B,), the times of the inputs z_t (r <= t).
        u: Shape (B, ...), the network output u_theta(z_t, r, t) (detached).
        target: Shape (B, ...), u_tgt of MeanFlow eq. (11) (detached).
        velocity: Shape (B, ...), the conditional velocity v_t (detached).
        squared_error: Shape (B,), ||u_theta - u_tgt||^2 summed over the features (detached).
        weight: Shape (B,), the adaptive weight sg(w).
    """

    loss: Tensor
    per_sample_loss: Tensor
    r: Tensor
    t: Tensor
    u: Tensor
    target: Tensor
    velocity: Tensor
    squared_error: Tensor
    weight: Tensor


# ---------------------------------------------------------------------- equation-level pieces
def check_velocity_transport(transport: str | Transport) -> Transport:
    """Return the transport if its network target is the velocity d x_t / dt, else raise.

    Checks alpha_hat = d alpha / dt, gamma_hat = d gamma / dt (by autograd on a grid of t in
    float64) and that the network time is the library's time.

    Args:
        transport: A :class:`~ucgm_lab.transports.Transport` or a name (e.g. ``"linear"``).

    Returns:
        The transport.

    Raises:
        ValueError: If the target is not the velocity or the network time is remapped.
    """
    tr = get_transport(transport)
    grid = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    if not torch.allclose(tr.model_time(grid), grid, rtol=0, atol=1e-12):
        raise ValueError(
            f"MeanFlow needs a transport whose network time is the library's time; "
            f"{tr.name!r} remaps it (model_time). Use transport='linear'."
        )
    for coeff, derivative in (("alpha", "alpha_hat"), ("gamma", "gamma_hat")):
        t = grid.clone().requires_grad_(True)
        value = getattr(tr, coeff)(t)
        (grad,) = torch.autograd.grad(value.sum(), t, allow_unused=True)
        grad = torch.zeros_like(grid) if grad is None else grad
        hat = getattr(tr, derivative)(grid.clone())
        if not torch.allclose(hat, grad, rtol=1e-6, atol=1e-9):
            raise ValueError(
                f"MeanFlow needs a transport whose network target is the velocity d x_t / dt "
                f"({derivative} = d {coeff} / dt); {tr.name!r} has max |{derivative} - "
                f"{coeff}'| = {float((hat - grad).abs().max()):.3g}. Use transport='linear' "
                "(MeanFlow's path)."
            )
    return tr


def check_flow_map_model(model: Model) -> None:
    """Raise a clear error for a library network built without a second time.

    Networks that declare ``flow_map`` (the library's) must have it True; other callables are
    not checked (they must accept ``model(z, t, y, r=r)``).
    """
    inner = unwrap_model(model) if isinstance(model, nn.Module) else model
    if getattr(inner, "flow_map", None) is False:
        raise ValueError(
            f"{type(inner).__name__} was built without a second time: a MeanFlow model is a flow "
            "map u(z_t, r, t); build it with flow_map=True (e.g. MLP2D(..., flow_map=True))."
        )


def call_flow_map(model: Model, z: Tensor, r: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
    """u(z_t, r, t) = ``model(z, t, [y,] r=r)``, with the output shape checked.

    Args:
        model: A flow-map network ``model(x_t, t, y=None, r=None)``.
        z: z_t, shape (B, ...).
        r: Earlier times, shape (B,).
        t: Times of z, shape (B,).
        y: Optional class ids, shape (B,).

    Returns:
        u, shape (B, ...).
    """
    u = model(z, t, r=r) if y is None else model(z, t, y, r=r)
    if not torch.is_tensor(u) or u.shape != z.shape:
        got = tuple(u.shape) if torch.is_tensor(u) else type(u).__name__
        raise ValueError(
            f"The flow-map model must return a tensor shaped like its input {tuple(z.shape)}; "
            f"got {got}. Flow maps follow model(z_t, t, y=None, r=None) -> u."
        )
    return u


def meanflow_target(
    model: Model, z: Tensor, r: Tensor, t: Tensor, v: Tensor, y: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """u_theta(z_t, r, t), its total derivative d/dt u and u_tgt (MeanFlow eqs. 8 and 10).

    One ``torch.func.jvp`` of (z, r, t) -> u with the tangent (v, 0, 1) gives
    d/dt u = v . d_z u + 0 . d_r u + 1 . d_t u (MeanFlow eq. 8) together with u itself; u keeps
    its graph to the parameters (for the loss), the derivative and the target are detached.
    Attention runs on PyTorch's math kernel inside the JVP (the fused kernels have no
    forward-mode derivative).

    Args:
        model: Flow-map network.
        z: z_t, shape (B, ...), in the network's dtype.
        r, t: Shape (B,), 0 <= r <= t <= 1.
        v: The (conditional) velocity at (z_t, t), shape (B, ...).
        y: Optional class ids.

    Returns:
        (u, du_dt, target): u differentiable, du_dt and target = v - (t - r) du_dt detached,
        all of shape (B, ...).
    """

    def u_of(z_in: Tensor, r_in: Tensor, t_in: Tensor) -> Tensor:
        return call_flow_map(model, z_in, r_in, t_in, y)

    # The fused attention kernels have no forward-mode derivative; the math kernel has.
    with sdpa_kernel(SDPBackend.MATH):
        u, du_dt = torch.func.jvp(u_of, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    du_dt = du_dt.detach()
    target = v - broadcast_time(t - r, z) * du_dt
    return u, du_dt, target.detach()


def adaptive_weight(squared_error: Tensor, c: float, p: float) -> Tensor:
    """The adaptive weight 1 / (||Delta||^2 + c)^p, detached (MeanFlow section 4.3; p = 0 is the plain L2 loss).

    Args:
        squared_error: Shape (B,), ||Delta||^2 per sample.
        c: Constant > 0 that keeps the weight finite at zero error.
        p: Power >= 0 (MeanFlow's default 1: a loss like ||Delta||^2 / ||Delta||^2, i.e. close
            to a per-sample normalised error).

    Returns:
        Shape (B,), no gradient.
    """
    return (squared_error.detach() + c).pow(-p)


# ---------------------------------------------------------------------- the objective
class MeanFlowObjective:
    """The MeanFlow loss as a callable: ``objective(model, x, y=None) -> MeanFlowOutput``.

    Args:
        transport: The path; ``"linear"`` (MeanFlow's, default) or another transport whose
            network target is the velocity (:func:`check_velocity_transport`).
        time_distribution: The (r, t) draws; default :class:`FlowMapTimeDistribution` with
            MeanFlow's settings (logit-normal(-0.4, 1), 75% of pairs with r = t).
        adaptive_p: Power p >= 0 of the adaptive weight (MeanFlow default 1; 0 = plain L2).
        adaptive_c: Constant c > 0 of the adaptive weight (MeanFlow: 1e-3).

    The network is called in its parameters' dtype; the loss arithmetic runs in float64 for
    float64 data and float32 otherwise. Works with :class:`~ucgm_lab.training.Trainer` (it
    has ``settings``, ``state_dict`` and ``load_state_dict``; MeanFlow keeps no teacher).
    """

    def __init__(
        self,
        transport: str | Transport = "linear",
        *,
        time_distribution: FlowMapTimeDistribution | None = None,
        adaptive_p: float = 1.0,
        adaptive_c: float = 1e-3,
    ) -> None:
        self.transport = check_velocity_transport(transport)
        self.time_distribution = time_distribution or FlowMapTimeDistribution()
        if not isinstance(self.time_distribution, FlowMapTimeDistribution):
            raise TypeError(
                "time_distribution must be a FlowMapTimeDistribution, got "
                f"{type(self.time_distribution).__name__}."
            )
        self.adaptive_p = _check_number(adaptive_p, "adaptive_p")
        if self.adaptive_p < 0:
            raise ValueError(f"adaptive_p must be >= 0 (0 = plain L2), got {adaptive_p}.")
        self.adaptive_c = _check_number(adaptive_c, "adaptive_c")
        if not self.adaptive_c > 0:
            raise ValueError(f"adaptive_c must be > 0, got {adaptive_c}.")

    def settings(self) -> dict[str, Any]:
        """The settings that define what is trained (stored in checkpoints by the Trainer)."""
        td = self.time_distribution
        return {
            "objective": "meanflow",
            "transport": self.transport.name,
            "time_distribution": [td.mean, td.std, td.equal_fraction],
            "adaptive_p": self.adaptive_p,
            "adaptive_c": self.adaptive_c,
        }

    def state_dict(self) -> dict[str, Any]:
        """MeanFlow keeps no teacher: an empty state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Accept the empty state of :meth:`state_dict`."""
        if state:
            raise KeyError(f"Unknown keys in the MeanFlow objective state: {sorted(state)}.")

    def __call__(
        self,
        model: Model,
        x: Tensor,
        y: Tensor | None = None,
        *,
        r: Tensor | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MeanFlowOutput:
        """Evaluate the loss on one batch (MeanFlow Alg. 1).

        Args:
            model: Flow-map network ``model(z_t, t, y=None, r=None) -> u``.
            x: Data, shape (B, ...).
            y: Optional class ids, shape (B,).
            r, t: Optional times, shape (B,), 0 <= r <= t <= 1; give both or neither
                (default: drawn from ``time_distribution``).
            noise: Optional noise e (the library's z), shape of ``x``.
            generator: Optional torch generator for every random draw of this call.

        Returns:
            :class:`MeanFlowOutput`.
        """
        check_batch(x, "x")
        batch = x.shape[0]
        check_labels(y, batch, "y")
        check_model_takes_labels(model, y)
        check_flow_map_model(model)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        device = x.device
        if (r is None) != (t is None):
            raise ValueError("give both r and t, or neither (then they are drawn).")
        if t is None:
            r, t = self.time_distribution.sample(
                batch, device=device, dtype=compute, generator=generator
            )
        else:
            check_time_pair(r, t, batch)
            r, t = r.to(device=device, dtype=compute), t.to(device=device, dtype=compute)
        if noise is None:
            noise = torch.randn(x.shape, generator=generator, device=device, dtype=compute)
        elif not torch.is_tensor(noise) or noise.shape != x.shape:
            got = tuple(noise.shape) if torch.is_tensor(noise) else type(noise).__name__
            raise ValueError(f"noise must have the shape of x {tuple(x.shape)}, got {got}.")
        x_c, e_c = x.to(compute), noise.to(device=device, dtype=compute)
        z_t = self.transport.interpolate(x_c, e_c, t)  # MeanFlow's path a_t x + b_t e, a_t = 1 - t (its section 3)
        v = self.transport.target(x_c, e_c, t)  # the conditional velocity (e - x when linear)

        net = model_dtype(model, compute)
        u, du_dt, _ = meanflow_target(model, z_t.to(net), r.to(net), t.to(net), v.to(net), y)
        # MeanFlow eq. (11), formed in the compute dtype from the network's derivative.
        target = v - broadcast_time(t - r, v) * du_dt.to(compute)
        error = (u.to(compute) - target).pow(2).flatten(1).sum(1)
        weight = adaptive_weight(error, self.adaptive_c, self.adaptive_p)
        per_sample = weight * error
        return MeanFlowOutput(
            loss=per_sample.mean(),
            per_sample_loss=per_sample,
            r=r,
            t=t,
            u=u.detach().to(compute),
            target=target.detach(),
            velocity=v,
            squared_error=error.detach(),
            weight=weight,
        )
