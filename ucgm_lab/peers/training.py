"""Small 2D velocity models trained by the peer libraries themselves (torchcfm, flow_matching).

torchcfm's ``MLP`` with its ``ConditionalFlowMatcher``, and facebookresearch's flow_matching
(``AffineProbPath(CondOTScheduler())``) with ucgm-lab's ``MLP2D``; each trained model comes with
its UCGM adapter (:mod:`ucgm_lab.adapters`), so that UCGM-S samples it unchanged. torchcfm and
flow_matching are optional dependencies (the ``notebooks`` extra); they are imported when used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from toy_data import sample_2d
from ucgm_lab.adapters.base import AdaptedModel, InputConvention, call_source, check_choice
from ucgm_lab.adapters.flow import adapt_flow_matching, adapt_torchcfm
from ucgm_lab.networks import MLP2D

__all__ = ["PEER_LIBRARIES", "PeerModel", "TrainConfig", "train_peer"]

PEER_LIBRARIES: tuple[str, ...] = ("torchcfm", "flow_matching")


@dataclass(frozen=True)
class TrainConfig:
    """Budget and architecture of one small 2D velocity model.

    Attributes:
        dataset: A name of :func:`toy_data.list_2d_datasets`.
        steps: Optimiser steps.
        batch_size: Data points per step (fresh samples every step).
        lr: Adam learning rate (cosine-annealed to 5% over the run).
        hidden: Width of the network (torchcfm's ``MLP(w=hidden)``, ucgm-lab's
            ``MLP2D(hidden=hidden, depth=3)``).
        seed: Seed of the data stream, the initialisation and the training times.
    """

    dataset: str = "checkerboard"
    steps: int = 3000
    batch_size: int = 512
    lr: float = 2e-3
    hidden: int = 128
    seed: int = 0


@dataclass
class PeerModel:
    """A velocity model trained with a peer library, with its UCGM adapter.

    Attributes:
        library: "torchcfm" or "flow_matching".
        network: The trained network (eval mode).
        adapted: The network seen as a UCGM model (:mod:`ucgm_lab.adapters`).
        inputs: How the network is called (see :data:`~ucgm_lab.adapters.base.INPUT_CONVENTIONS`).
        losses: Training loss per step.
        seconds: Training wall time.
        config: The training configuration.
    """

    library: str
    network: nn.Module
    adapted: AdaptedModel
    inputs: InputConvention
    losses: list[float] = field(repr=False)
    seconds: float
    config: TrainConfig

    def velocity(self, x: Tensor, s: Tensor) -> Tensor:
        """The network's velocity at x (B, 2) and source time s (a scalar or shape (B,))."""
        if s.ndim == 0:
            s = s.expand(x.shape[0])
        return call_source(self.network, x, s.to(x.dtype), None, self.inputs)

    def state_dict(self) -> dict[str, Tensor]:
        """The network's weights."""
        return self.network.state_dict()


def _build_network(library: str, config: TrainConfig) -> tuple[nn.Module, InputConvention]:
    if library == "torchcfm":
        from torchcfm.models.models import MLP

        return MLP(dim=2, w=config.hidden, time_varying=True), "concat"
    return MLP2D(dim=2, hidden=config.hidden, depth=3), "x_t"


def _adapt(library: str, network: nn.Module) -> AdaptedModel:
    if library == "torchcfm":
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        return adapt_torchcfm(network, ConditionalFlowMatcher(sigma=0.0), inputs="concat")
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    return adapt_flow_matching(network, AffineProbPath(scheduler=CondOTScheduler()))


def train_peer(
    library: str,
    config: TrainConfig | None = None,
    state_dict: dict[str, Tensor] | None = None,
) -> PeerModel:
    """Train (or rebuild from weights) a 2D velocity model with a peer library's own recipe.

    torchcfm: ``t, x_t, u_t = matcher.sample_location_and_conditional_flow(x_0, x_1)`` with
    ``matcher = ConditionalFlowMatcher(sigma=0)`` and ``loss = mse(MLP(cat[x_t, t]), u_t)``.
    flow_matching: ``p = AffineProbPath(CondOTScheduler()).sample(x_0, x_1, t)`` with
    t ~ U(0, 1) and ``loss = mse(MLP2D(p.x_t, p.t), p.dx_t)``. Both draw x_0 ~ N(0, I) and
    fresh data x_1 every step. Randomness comes from ``config.seed`` only; the global RNG
    state is left untouched.

    Args:
        library: "torchcfm" or "flow_matching".
        config: Budget and architecture (default :class:`TrainConfig`).
        state_dict: Weights of a network trained before with the same config: skip training.

    Returns:
        The :class:`PeerModel`.
    """
    check_choice(library, PEER_LIBRARIES, "peer library")
    config = config or TrainConfig()
    start = time.perf_counter()
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network, inputs = _build_network(library, config)
        if state_dict is not None:
            network.load_state_dict(state_dict)
        else:
            losses = _train(library, network, config)
    network.eval().requires_grad_(False)
    return PeerModel(
        library=library,
        network=network,
        adapted=_adapt(library, network),
        inputs=inputs,
        losses=losses,
        seconds=time.perf_counter() - start,
        config=config,
    )


def _train(library: str, network: nn.Module, config: TrainConfig) -> list[float]:
    data_gen = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, config.steps, eta_min=0.05 * config.lr
    )
    if library == "torchcfm":
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        matcher = ConditionalFlowMatcher(sigma=0.0)

        def loss_fn(x0: Tensor, x1: Tensor) -> Tensor:
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
            vt = network(torch.cat([xt, t[:, None]], dim=-1))
            return torch.mean((vt - ut) ** 2)
    else:
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler

        path = AffineProbPath(scheduler=CondOTScheduler())

        def loss_fn(x0: Tensor, x1: Tensor) -> Tensor:
            t = torch.rand(x1.shape[0])
            sample = path.sample(x_0=x0, x_1=x1, t=t)
            return torch.mean((network(sample.x_t, sample.t) - sample.dx_t) ** 2)

    network.train()
    losses = []
    for _ in range(config.steps):
        x1 = sample_2d(config.dataset, config.batch_size, generator=data_gen).points
        x0 = torch.randn_like(x1)
        loss = loss_fn(x0, x1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.detach().item())
    return losses
