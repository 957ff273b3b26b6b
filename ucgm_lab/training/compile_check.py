"""Compiled against eager: one training step's gradients of a TiT under mixed precision.

A compiled model (``torch.compile`` of every block, as the :class:`~ucgm_lab.training.Trainer`
does) must give the eager model's gradients up to the precision's rounding. This module runs
the UCGM objective (enhanced target, so the no-grad teacher forward is in the graph too) on
one batch under autocast, once eagerly and once with compiled blocks, from the same weights
and the same random draws, and compares every parameter's gradient. The GPU check
(``scale/gpu_check.py``) and the tests use it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ucgm_lab.networks.tit import TiT

__all__ = ["GradientComparison", "compare_compiled_gradients"]


@dataclass(frozen=True)
class GradientComparison:
    """Outcome of :func:`compare_compiled_gradients`.

    Attributes:
        finite: Every compiled gradient (and the loss) is finite.
        max_relative_error: max over parameters of ``|g_c - g_e|_max / |g_e|_max`` (parameters
            whose eager gradient is exactly zero are compared absolutely).
        worst_parameter: The parameter attaining it.
        non_finite_parameters: Names of parameters with a NaN or inf compiled gradient.
        eager_loss: The eager loss.
        compiled_loss: The compiled loss.
        compiled_seconds: Wall time of the compiled step (compilation included).
    """

    finite: bool
    max_relative_error: float
    worst_parameter: str
    non_finite_parameters: tuple[str, ...]
    eager_loss: float
    compiled_loss: float
    compiled_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["non_finite_parameters"] = list(self.non_finite_parameters)
        return d


def _gradients(
    model: TiT, objective: Any, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None
) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    g = torch.Generator(device=x.device).manual_seed(0)
    if dtype is None:
        out = objective(model, x, y, generator=g, update_teachers=False)
    else:
        with torch.autocast(x.device.type, dtype=dtype):
            out = objective(model, x, y, generator=g, update_teachers=False)
    out.loss.backward()
    grads = {
        n: p.grad.detach().float().clone()
        for n, p in model.named_parameters()
        if p.grad is not None
    }
    return float(out.loss.detach()), grads


def compare_compiled_gradients(
    model: TiT,
    objective_factory: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dtype: torch.dtype | None = torch.bfloat16,
    backend: str = "inductor",
) -> GradientComparison:
    """One training forward and backward, eager and with compiled blocks; compare gradients.

    Args:
        model: A TiT on the device of ``x`` (left unchanged: both runs use deep copies).
        objective_factory: Zero-argument callable returning a fresh objective (each run gets
            its own, so that teachers are copied from the model being run).
        x: Data batch, shape (B, C, S, S).
        y: Class ids, shape (B,).
        dtype: Autocast dtype (None: no autocast).
        backend: ``torch.compile`` backend.

    Returns:
        The :class:`GradientComparison`.
    """
    eager = copy.deepcopy(model).train()
    compiled = copy.deepcopy(model).train().compile_blocks(backend=backend)
    eager_loss, ge = _gradients(eager, objective_factory(), x, y, dtype)
    start = time.perf_counter()
    compiled_loss, gc = _gradients(compiled, objective_factory(), x, y, dtype)
    seconds = time.perf_counter() - start
    bad = tuple(n for n, g in gc.items() if not bool(torch.isfinite(g).all()))
    worst, worst_err = "", 0.0
    for n, g in ge.items():
        other = gc.get(n, torch.zeros_like(g))
        scale = float(g.abs().max())
        err = float((other - g).abs().max()) / (scale if scale > 0 else 1.0)
        if err != err or err > worst_err:  # NaN counts as worst
            worst, worst_err = n, err
            if err != err:
                break
    finite = not bad and compiled_loss == compiled_loss and abs(compiled_loss) != float("inf")
    return GradientComparison(
        finite=finite,
        max_relative_error=worst_err,
        worst_parameter=worst,
        non_finite_parameters=bad,
        eager_loss=eager_loss,
        compiled_loss=compiled_loss,
        compiled_seconds=seconds,
    )
