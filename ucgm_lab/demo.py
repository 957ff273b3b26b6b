"""The main job: ``ucgm-lab demo``.

On a CPU in about two minutes it trains a multi-step (lambda = 0) model and a few-step
(lambda = 1) model started from it on a 2D data set, samples both across step counts with and
without extrapolation (kappa) and stochasticity (rho), and writes a self-contained report:
``report.html`` (plotly: data and samples, trajectories, x_hat along a trajectory, quality
versus NFE with the floor) and ``summary.md`` (settings and the quality table).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .evaluation import QualityPoint, format_quality_table, quality_vs_nfe
from .metrics import metric_floor
from .recipes import ToyRecipe, train_toy
from .sampler import sample
from .training.checkpoint import atomic_write, check_writable_dir
from .viz import points_figure, quality_figure, trajectory_figure, x_hat_grid_figure

__all__ = ["DemoConfig", "DemoResult", "few_step_time_points", "run_demo"]


MIN_DEMO_SAMPLES = 100
"""Fewest samples per evaluation the demo accepts (below it the W2 floor exceeds the scores)."""


@dataclass(frozen=True)
class DemoConfig:
    """Options of the demo (the command-line flags).

    Attributes:
        dataset: 2D data set name.
        steps: Training steps of the multi-step model.
        few_step_steps: Training steps of the few-step model (started from the multi-step one).
        out: Output folder.
        device: "cpu" or "auto" (an accelerator if present).
        seed: Seed of everything.
        samples: Number of samples per evaluation (and of reference points).
        multi_step_nfe: NFE grid for the multi-step model.
        few_step_nfe: NFE grid for the few-step model.
        progress: Progress bars.
    """

    dataset: str = "checkerboard"
    steps: int = 3000
    few_step_steps: int = 1500
    out: str = "ucgm-demo"
    device: str = "cpu"
    seed: int = 0
    samples: int = 2000
    multi_step_nfe: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 100)
    few_step_nfe: tuple[int, ...] = (1, 2, 4, 8)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "few_step_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int):
            raise ValueError(
                f"samples must be an integer >= {MIN_DEMO_SAMPLES}, got {self.samples!r}."
            )
        if self.samples < MIN_DEMO_SAMPLES:
            raise ValueError(
                f"samples must be >= {MIN_DEMO_SAMPLES}, got {self.samples}: with fewer points the "
                "W2 of two data samples (the floor) exceeds the models' scores and the table "
                "means nothing."
            )
        if self.device not in ("cpu", "auto"):
            raise ValueError(f"device must be 'cpu' or 'auto', got {self.device!r}.")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ValueError(f"out {self.out!r} is a file; give a folder for the report.")


@dataclass(frozen=True)
class DemoResult:
    """Paths and numbers of a demo run.

    Attributes:
        report: Path of report.html.
        summary: Path of summary.md.
        points: Every quality point measured.
        floor: W2 between two independent data samples of the same size (mean).
        seconds: Wall time.
    """

    report: Path
    summary: Path
    points: list[QualityPoint]
    floor: float
    seconds: float


def few_step_time_points(steps: int) -> list[float]:
    """Time points for a few-step (lambda = 1) model: 0.999, then evenly spaced from 0.5 down.

    Two steps give {0.999, 0.5} (the paper uses {1, 0.3} to {1, 0.6} for ImageNet latents);
    four give {0.999, 0.5, 0.333, 0.167}.
    """
    return [0.999] + [round(0.5 * (1 - i / (steps - 1)), 6) for i in range(steps - 1)]


def _table(points: Sequence[QualityPoint], floor: float) -> str:
    table = format_quality_table(points, "w2", digits=3)
    columns = table.splitlines()[0].count("NFE")
    return (
        table
        + "\n| floor (data vs data) | "
        + " | ".join(f"{floor:.3f}" for _ in range(columns))
        + " |"
    )


def run_demo(config: DemoConfig = DemoConfig()) -> DemoResult:
    """Run the demo and write its report; returns where it is and what was measured."""
    from toy_data import sample_2d

    start = time.perf_counter()
    out_dir = check_writable_dir(config.out, "demo output folder (--out)")
    device = "cpu" if config.device == "cpu" else None
    recipe0 = ToyRecipe(dataset=config.dataset, steps=config.steps, seed=config.seed)
    print(
        f"[1/4] training the multi-step model (lambda=0) on {config.dataset} for {config.steps} steps"
    )
    multi = train_toy(recipe0, progress=config.progress, device=device)
    recipe1 = recipe0.with_(
        consistency_ratio=1.0, steps=config.few_step_steps, seed=config.seed + 1
    )
    print(f"[2/4] training the few-step model (lambda=1) from it for {config.few_step_steps} steps")
    few = train_toy(
        recipe1, init=multi.trainer.unwrapped_model, progress=config.progress, device=device
    )

    print("[3/4] sampling across step counts")
    reference = sample_2d(config.dataset, config.samples, seed=config.seed + 99).points
    floor = metric_floor(
        "w2",
        lambda n, seed: sample_2d(config.dataset, n, seed=seed).points,
        config.samples,
        repeats=3,
        seed=config.seed + 1000,
    )
    points: list[QualityPoint] = []
    for kappa in (0.0, 0.5):
        points += quality_vs_nfe(
            multi.model,
            "linear",
            reference,
            config.multi_step_nfe,
            label=f"lambda=0, kappa={kappa}",
            kappa=kappa,
            seed=config.seed,
        )
    for rho in (0.0, 1.0):
        points += quality_vs_nfe(
            few.model,
            "linear",
            reference,
            config.few_step_nfe,
            label=f"lambda=1, rho={rho:g}",
            rho=rho,
            seed=config.seed,
            time_points_for=few_step_time_points,
        )

    print("[4/4] writing the report")
    noise = torch.randn(config.samples, 2, generator=torch.Generator().manual_seed(config.seed))
    noise = noise.to(next(multi.model.parameters()).device)
    traj_multi = sample(multi.model, noise, "linear", 8, kappa=0.0)
    traj_few = sample(
        few.model,
        noise,
        "linear",
        time_points=few_step_time_points(2),
        rho=1.0,
        generator=torch.Generator(device=noise.device).manual_seed(1),
    )
    traj_few8 = sample(few.model, noise, "linear", 8)
    figures = [
        points_figure(
            {
                "data": reference,
                "lambda=0, 32 NFE": sample(multi.model, noise, "linear", 32).sample,
                "lambda=1, 2 NFE": traj_few.sample,
            },
            title="Data and samples",
        ),
        quality_figure(points, "w2", floor, title=f"W2 to the data versus NFE ({config.dataset})"),
        trajectory_figure(traj_multi, reference, title="lambda=0: sampling paths"),
        trajectory_figure(traj_few, reference, title="lambda=1: sampling paths"),
        x_hat_grid_figure({"lambda=0": traj_multi, "lambda=1": traj_few8}),
    ]
    table = _table(points, floor.mean)
    html = [
        "<html><head><meta charset='utf-8'><title>ucgm-lab demo</title></head><body>",
        f"<h1>ucgm-lab demo: {config.dataset}</h1>",
        "<p>W2 (exact 2-Wasserstein distance to held-out data; lower is better) versus NFE. "
        "The floor is W2 between two independent data samples of the same size.</p>",
    ]
    for i, fig in enumerate(figures):
        html.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    html.append("</body></html>")
    report = atomic_write(
        out_dir / "report.html", lambda tmp: Path(tmp).write_text("\n".join(html), encoding="utf-8")
    )
    seconds = time.perf_counter() - start
    summary_text = "\n".join(
        [
            f"# ucgm-lab demo: {config.dataset}",
            "",
            f"- multi-step model: lambda=0, {config.steps} steps ({multi.result.seconds:.0f} s)",
            f"- few-step model: lambda=1 from it, {config.few_step_steps} steps ({few.result.seconds:.0f} s)",
            f"- {config.samples} samples per point; metric: exact W2 to held-out data",
            f"- total time: {seconds:.0f} s",
            "",
            table,
            "",
            "Settings: "
            + json.dumps({"config": {k: v for k, v in config.__dict__.items()}}, default=str),
        ]
    )
    summary = atomic_write(
        out_dir / "summary.md",
        lambda tmp: Path(tmp).write_text(summary_text + "\n", encoding="utf-8"),
    )
    print(table)
    print(f"Report: {report.resolve()}\nSummary: {summary.resolve()}")
    return DemoResult(report, summary, points, floor.mean, seconds)
