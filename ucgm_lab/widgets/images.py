"""Sliders for kappa (extrapolation) and rho (stochasticity) over cached image trajectories.

:func:`cache_trajectories` samples a model once for every (kappa, rho) pair of a grid, from
the same noise and labels; :class:`KappaRhoExplorer` shows one cached result -- the final
samples and the estimates x^ along the trajectory of a few of them -- and two ipywidgets
sliders pick the pair. The slider callbacks only look results up (no sampling, no
training), so moving them is instant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..evaluation import model_device
from ..metrics.digits import DigitsFrechet
from ..model_api import Model
from ..sampler import SampleOutput, sample
from ..transports import Transport
from ..viz.images import _show, tile_images

__all__ = ["KappaRhoExplorer", "TrajectoryCache", "cache_trajectories"]


@dataclass(frozen=True)
class TrajectoryCache:
    """Sampler outputs on a (kappa, rho) grid, all from the same noise and labels.

    Attributes:
        kappas: The kappa values (slider stops).
        rhos: The rho values.
        outputs: (kappa, rho) -> sample output (``x_hat`` (N, B, C, H, W), ``sample``, ``times``).
        labels: Class ids, shape (B,).
        nfe: Network evaluations per sample.
        scores: (kappa, rho) -> digits metric of the final samples (empty without a metric).
    """

    kappas: tuple[float, ...]
    rhos: tuple[float, ...]
    outputs: dict[tuple[float, float], SampleOutput]
    labels: Tensor
    nfe: int
    scores: dict[tuple[float, float], float] = field(default_factory=dict)

    def get(self, kappa: float, rho: float) -> SampleOutput:
        """The cached output for (kappa, rho); raises KeyError naming the grid otherwise."""
        key = (float(kappa), float(rho))
        if key not in self.outputs:
            raise KeyError(
                f"(kappa, rho) = {key} is not cached; kappas {self.kappas}, rhos {self.rhos}."
            )
        return self.outputs[key]

    def score_table(self, digits: int = 1) -> str:
        """The cached digits-metric values as a markdown table (rows kappa, columns rho)."""
        if not self.scores:
            raise ValueError("No scores cached: pass metric=... to cache_trajectories.")
        lines = [
            "| kappa | " + " | ".join(f"rho={r:g}" for r in self.rhos) + " |",
            "|---|" + "---|" * len(self.rhos),
        ]
        for k in self.kappas:
            lines.append(
                f"| {k:g} | "
                + " | ".join(f"{self.scores[(k, r)]:.{digits}f}" for r in self.rhos)
                + " |"
            )
        return "\n".join(lines)


def cache_trajectories(
    model: Model,
    transport: str | Transport,
    y: Tensor,
    kappas: Sequence[float],
    rhos: Sequence[float],
    *,
    image_shape: tuple[int, int, int] = (1, 8, 8),
    seed: int = 0,
    metric: DigitsFrechet | None = None,
    **sampler_kwargs: Any,
) -> TrajectoryCache:
    """Sample ``model`` for every (kappa, rho) pair from one noise batch.

    Args:
        model: A class-conditional image model.
        transport: Its transport.
        y: Class ids, shape (B,) (e.g. ``metric.test_labels`` to score the samples).
        kappas: Extrapolation ratios.
        rhos: Stochastic ratios.
        image_shape: (C, H, W).
        seed: Seed of the initial noise (and of rho's noise, seed + 1, the same for every pair).
        metric: If given, every pair's final samples are scored (use B = metric.num_samples).
        **sampler_kwargs: Further :func:`ucgm_lab.sample` arguments: ``steps`` or
            ``time_points``, ``schedule``, ``order``.

    Returns:
        :class:`TrajectoryCache`.
    """
    device = model_device(model)
    y = y.to(device)
    noise = torch.randn(
        (y.shape[0], *image_shape), generator=torch.Generator().manual_seed(seed)
    ).to(device)
    outputs: dict[tuple[float, float], SampleOutput] = {}
    scores: dict[tuple[float, float], float] = {}
    for kappa in kappas:
        for rho in rhos:
            key = (float(kappa), float(rho))
            out = sample(
                model, noise, transport, y=y, kappa=key[0], rho=key[1],
                generator=torch.Generator(device=device).manual_seed(seed + 1), **sampler_kwargs,
            )  # fmt: skip
            outputs[key] = out
            if metric is not None:
                scores[key] = metric.distance(out.sample)
    nfe = next(iter(outputs.values())).nfe
    return TrajectoryCache(
        tuple(map(float, kappas)), tuple(map(float, rhos)), outputs, y.cpu(), nfe, scores
    )


class KappaRhoExplorer:
    """A figure of one cached (kappa, rho) result and sliders that switch between them.

    Left panel: ``num_samples`` final samples. Right panel: x^ at every step (columns, t
    decreasing) for the images ``trajectory_images`` (rows). With several caches (e.g. one
    per model) a drop-down picks the cache.

    Args:
        caches: One :class:`TrajectoryCache`, or name -> cache (all with the same kappa and
            rho grids).
        num_samples: How many final samples to show.
        trajectory_images: Which images' trajectories to show.
        nrow: Samples per row in the left panel.
    """

    def __init__(
        self,
        caches: TrajectoryCache | Mapping[str, TrajectoryCache],
        num_samples: int = 30,
        trajectory_images: Sequence[int] = (0, 1, 2, 3),
        nrow: int = 10,
    ) -> None:
        self.caches = {"": caches} if isinstance(caches, TrajectoryCache) else dict(caches)
        if not self.caches:
            raise ValueError("caches is empty.")
        first = next(iter(self.caches.values()))
        for name, cache in self.caches.items():
            if cache.kappas != first.kappas or cache.rhos != first.rhos:
                raise ValueError(
                    f"cache {name!r} has another (kappa, rho) grid than the first one."
                )
        self.num_samples = num_samples
        self.trajectory_images = list(trajectory_images)
        self.nrow = nrow
        self.name = next(iter(self.caches))
        self.kappa, self.rho = first.kappas[0], first.rhos[0]
        self.figure: Figure
        self.figure, (self._ax_samples, self._ax_traj) = plt.subplots(
            1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1.3, 1]}
        )
        plt.close(self.figure)
        samples, traj = self._tiles(self.name, self.kappa, self.rho)
        self.samples_image = _show(self._ax_samples, samples)
        self.trajectory_image = _show(self._ax_traj, traj)
        self._output: Any = None
        self._set_titles()
        self.figure.tight_layout()

    @property
    def cache(self) -> TrajectoryCache:
        """The cache shown now."""
        return self.caches[self.name]

    def _tiles(self, name: str, kappa: float, rho: float):
        out = self.caches[name].get(kappa, rho)
        samples = tile_images(out.sample[: self.num_samples], self.nrow)
        x_hat = out.x_hat[:, self.trajectory_images]  # (steps, k, C, H, W)
        steps = x_hat.shape[0]
        traj = tile_images(x_hat.transpose(0, 1).reshape(-1, *x_hat.shape[2:]), nrow=steps)
        return samples, traj

    def _set_titles(self) -> None:
        score = self.cache.scores.get((self.kappa, self.rho))
        extra = f", digits FD {score:.1f}" if score is not None else ""
        name = f"{self.name}: " if self.name else ""
        self._ax_samples.set_title(
            f"{name}NFE {self.cache.nfe}, kappa={self.kappa:g}, rho={self.rho:g}{extra}", fontsize=9
        )
        self._ax_traj.set_title(
            "x_hat along the trajectory (t decreasing to the right)", fontsize=9
        )

    def update(self, kappa: float, rho: float, name: str | None = None) -> None:
        """Show the cached result for (kappa, rho) of cache ``name`` (a lookup; nothing is sampled)."""
        name = self.name if name is None else name
        if name not in self.caches:
            raise KeyError(f"No cache named {name!r}; have {list(self.caches)}.")
        samples, traj = self._tiles(name, kappa, rho)
        self.name, self.kappa, self.rho = name, float(kappa), float(rho)
        for image, tile in ((self.samples_image, samples), (self.trajectory_image, traj)):
            image.set_data(tile)
            extent = (-0.5, tile.shape[1] - 0.5, tile.shape[0] - 0.5, -0.5)
            image.set_extent(extent)  # a cache with another step count changes the size
            image.axes.set_xlim(extent[:2])
            image.axes.set_ylim(extent[2:])
        self._set_titles()
        self._redraw()

    def _redraw(self) -> None:
        if self._output is None:
            return
        from IPython.display import display

        with self._output:
            self._output.clear_output(wait=True)
            display(self.figure)

    def widget(self) -> Any:
        """An ipywidgets box: (model drop-down,) kappa and rho sliders above the figure."""
        import ipywidgets as widgets

        kappa = widgets.SelectionSlider(
            options=list(self.cache.kappas), value=self.kappa, description="kappa"
        )
        rho = widgets.SelectionSlider(
            options=list(self.cache.rhos), value=self.rho, description="rho"
        )
        controls: list[Any] = [kappa, rho]
        model = None
        if len(self.caches) > 1:
            model = widgets.Dropdown(
                options=list(self.caches), value=self.name, description="model"
            )
            controls.insert(0, model)
        self._output = widgets.Output()
        status = widgets.HTML()

        def changed(_change: dict) -> None:
            start = time.perf_counter()
            self.update(kappa.value, rho.value, None if model is None else model.value)
            # the kernel-side time of a redraw (a lookup and one PNG), as the 2D explorers show
            status.value = f"<span style='color:#888'>({time.perf_counter() - start:.2f} s)</span>"

        for control in controls:
            control.observe(changed, names="value")
        self._redraw()
        return widgets.VBox([widgets.HBox(controls), status, self._output])
