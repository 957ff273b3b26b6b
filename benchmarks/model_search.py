"""The fast search of one benchmark model, and its models' flow ODE for torchdiffeq's solvers.

Used by ``benchmarks/recommended_settings.py --search``: :func:`run_search` runs
:func:`ucgm_lab.search_sampler` with ``SearchSpace.fast(lambda)`` on selection data of the
model's own (never the held-out data the benchmark scores on) and times it;
:class:`FlowVelocity` is any UCGM model as the flow ODE, for the midpoint peer.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from heldout_models import pinwheel, spiral

from toy_data import sample_2d
from ucgm_lab import SearchSpace, search_sampler
from ucgm_lab.model_api import call_model
from ucgm_lab.search import SamplerSettings, SlicedW2
from ucgm_lab.transports import flow_time, get_transport


def data_points(dataset: str, n: int, seed: int) -> torch.Tensor:
    """n points of a 2D data set (the held-out pinwheel and spiral included), shape (n, 2)."""
    held_out = {"pinwheel": pinwheel, "spiral": spiral}
    if dataset in held_out:
        return held_out[dataset](n, seed)
    return sample_2d(dataset, n, seed=seed).points


@dataclass(frozen=True)
class SearchData:
    """What the search of one model selects on (disjoint from the held-out scoring data).

    Attributes:
        reference: Selection reference data (2D: 16 x ``num_samples`` points, seed 30000;
            digits: the train split, which the digits Frechet distance compares with anyway).
        metric: ``metric(samples, reference) -> float``.
        labels: Class ids of the ``num_samples`` samples, or None.
        num_samples: Samples of one selection run.
    """

    reference: torch.Tensor
    metric: Callable[[torch.Tensor, torch.Tensor], float]
    labels: torch.Tensor | None
    num_samples: int


def search_data(m, search_samples: int) -> SearchData:
    """The selection data of one model (2D: its own reference points; digits: test labels)."""
    if m.dataset == "digits":
        from toy_data import load_digits_images
        from ucgm_lab.metrics.digits import digits_frechet

        frechet = digits_frechet()
        labels = frechet.test_labels
        return SearchData(
            load_digits_images(split="train").images,
            lambda x, _reference: frechet.distance(x),
            labels,
            int(labels.shape[0]),
        )
    labels = None
    if m.num_classes is not None:
        labels = torch.arange(search_samples) % m.num_classes
    reference = data_points(m.dataset, 16 * search_samples, 30_000)
    return SearchData(reference, SlicedW2(256, seed=0), labels, search_samples)


def run_search(m, args) -> tuple[dict[int, SamplerSettings], dict]:
    """The fast search of one model at every budget: (budget -> settings, its record)."""
    data = search_data(m, args.search_samples)
    load1 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    found = search_sampler(
        m.model,
        m.transport,
        data.reference,
        nfe=args.nfes,
        metric=data.metric,
        space=SearchSpace.fast(m.consistency_ratio),
        num_samples=data.num_samples,
        labels=data.labels,
        validation_streams=2,
        seed=1,
        consistency_ratio=m.consistency_ratio,
        max_seconds=args.search_max_seconds,
        progress=False,
    )
    record = {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "load": [load1, os.getloadavg()[0]],
        "trials": found.trials,
        "stopped_early": found.stopped_early,
        "max_seconds": args.search_max_seconds,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "settings": {str(b.budget): b.settings.describe() for b in found.budgets},
    }
    return {b.budget: b.settings for b in found.budgets}, record


class FlowVelocity:
    """A UCGM model of any transport as the flow ODE in s = 1 - sigma (data at s = 1).

    The state is the flow state x_sigma = x_t / (alpha + gamma) at the time t with
    alpha / (alpha + gamma) = sigma (as in :func:`diffusers_sample`); its velocity is
    x^ - z^ (eq. 2), so torchdiffeq's solvers run on the same ODE as diffusers' schedulers.
    ``library = "zoo"``: :func:`ucgm_lab.peers.peer_solve` integrates it with torchdiffeq.
    """

    library = "zoo"

    def __init__(self, model, transport, y: torch.Tensor | None = None) -> None:
        self.model, self.transport, self.y = model, get_transport(transport), y

    def velocity(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """dx/ds at flow state x (B, ...) and s (a scalar tensor in [0, 1])."""
        tr = self.transport
        t64 = torch.tensor(flow_time(tr, 1.0 - float(s)), dtype=torch.float64)
        c = tr.coefficients(t64)
        a, g = float(c.alpha), float(c.gamma)
        a_hat, g_hat, d = float(c.alpha_hat), float(c.gamma_hat), float(c.D)
        x_t = (a + g) * x
        t_net = tr.model_time(t64).to(x.dtype) * torch.ones(x.shape[0], dtype=x.dtype)
        F = call_model(self.model, x_t, t_net, self.y)
        return (a * F - a_hat * x_t) / d - (g_hat * x_t - g * F) / d
