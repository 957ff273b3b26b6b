"""The kernel-free explorers of the site: which live explorer, built how, over which grid.

Each :class:`TwinSpec` builds the live explorer exactly as its notebook does (the same zoo
models, reference data, floor and constructor arguments, at the notebooks' full budget) and
names the grid of control values precomputed for the page. :func:`build_twin` runs the
explorer's own ``figure_at`` at every grid point (:mod:`ucgm_lab.widgets.twin`).

``quick=True`` gives a test-sized grid (a few values per control) for CI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..widgets.twin import Twin, TwinControl, png_bytes, precompute, precompute_images

__all__ = ["TWINS", "TwinSpec", "build_twin", "make_explorer"]


@dataclass(frozen=True)
class TwinSpec:
    """One kernel-free explorer.

    Attributes:
        name: Page name (``explorers/<name>.html``).
        notebook: The notebook (stem) whose explorer it mirrors.
        marker: Text in the source of the notebook cell that shows the live explorer.
        title: Page title.
        make: Builds the live explorer (as the notebook does).
        controls: ``quick`` -> the twin's controls.
        kind: ``"plotly"`` or ``"image"``.
        settings: For explorers whose controls are text boxes: preset name -> control values;
            the twin offers a menu of the presets (``None``: the twin's controls are the
            explorer's own).
    """

    name: str
    notebook: str
    marker: str
    title: str
    make: Callable[[bool], Any]
    controls: Callable[[bool], list[TwinControl]]
    kind: str = "plotly"
    settings: dict[str, dict[str, Any]] | None = None


def _reference_and_floor() -> tuple[Any, Any]:
    """The notebooks' 2D reference (1000 points, seed 100) and the W2 floor at 500 points."""
    from toy_data import sample_2d

    from ..metrics import metric_floor

    reference = sample_2d("checkerboard", 1000, seed=100).points
    floor = metric_floor(
        "w2", lambda n, seed: sample_2d("checkerboard", n, seed=seed).points, 500, seed=1000
    )
    return reference, floor


# ----------------------------------------------------------------------------- 10 transports
def _transports(quick: bool) -> Any:
    from ..widgets import TransportExplorer

    return TransportExplorer(dataset="checkerboard", num_points=1500)


def _transports_controls(quick: bool) -> list[TwinControl]:
    from ..transports import get_transport, list_transports

    names = tuple(list_transports())[: 2 if quick else None]
    step = 10 if quick else 2  # hundredths
    ts = tuple(round(i / 100, 2) for i in range(0, 101, step))
    return [
        TwinControl(
            "transport",
            names,
            "select",
            labels=tuple(get_transport(n).name for n in names),
        ),
        TwinControl("t", ts, "range", default=0.5),
    ]


# The custom transport editor's text boxes, as presets: valid ones and each kind of failure.
_EDITOR_PRESETS: dict[str, dict[str, Any]] = {
    "Linear (valid)": dict(alpha="t", gamma="1 - t", alpha_hat="1", gamma_hat="-1"),
    "TrigFlow (valid)": dict(
        alpha="sin(pi * t / 2)",
        gamma="cos(pi * t / 2)",
        alpha_hat="cos(pi * t / 2)",
        gamma_hat="-sin(pi * t / 2)",
    ),
    "alpha(1) = 0.5: breaks (a)": dict(
        alpha="0.5 * t", gamma="1 - t", alpha_hat="0.5", gamma_hat="-1"
    ),
    "D(t) = 2t - 1 vanishes: breaks (c)": dict(
        alpha="t", gamma="1 - t", alpha_hat="1", gamma_hat="1"
    ),
}


def _editor(quick: bool) -> Any:
    from ..widgets import CustomTransportEditor

    return CustomTransportEditor()


def _editor_controls(quick: bool) -> list[TwinControl]:
    return [TwinControl("preset", tuple(_EDITOR_PRESETS), "select", label="transport")]


# ----------------------------------------------------------------------------- 11 lambda
def _consistency(quick: bool) -> Any:
    from ..widgets import ConsistencyExplorer
    from ..zoo import load

    models = {
        0.0: load("checkerboard-linear-lam0"),
        0.5: load("checkerboard-linear-lam0.5"),
        1.0: load("checkerboard-linear-lam1"),
    }
    reference, floor = _reference_and_floor()
    return ConsistencyExplorer(models, reference, metric_points=500, floor=floor)


def _consistency_controls(quick: bool) -> list[TwinControl]:
    from ..widgets.consistency import DEFAULT_STEPS

    lams = (0.0, 1.0) if quick else (0.0, 0.5, 1.0)
    steps = (1, 8) if quick else DEFAULT_STEPS
    rhos = (0.0, 1.0) if quick else (0.0, 0.25, 0.5, 0.75, 1.0)
    return [
        TwinControl(
            "lam", lams, "select", label="model", labels=tuple(f"lambda={v:g}" for v in lams)
        ),
        TwinControl("steps", steps, "range", default=8),
        TwinControl("rho", rhos, "range"),
    ]


# ----------------------------------------------------------------------------- 12 sampler
def _sampler(quick: bool) -> Any:
    from ..widgets import SamplerExplorer
    from ..zoo import load

    reference, floor = _reference_and_floor()
    return SamplerExplorer(
        load("checkerboard-linear-lam0"), reference, metric_points=500, floor=floor
    )


def _sampler_controls(quick: bool) -> list[TwinControl]:
    from ..schedules import SCHEDULES

    thirds = (0.0, 1.0) if quick else (0.0, 0.5, 1.0)
    steps = (2, 8) if quick else (2, 4, 8, 16)
    schedules = tuple(SCHEDULES)[: 2 if quick else None]
    return [
        TwinControl("kappa", thirds, "range"),
        TwinControl("rho", thirds, "range"),
        TwinControl("rho_auto", (False, True), "checkbox", label="rho = auto (SDE-like)"),
        TwinControl("order", (1, 2), "select"),
        TwinControl("steps", steps, "range", default=8),
        TwinControl("schedule", schedules, "select"),
    ]


# ----------------------------------------------------------------------------- 13 guidance
def _guidance(quick: bool) -> Any:
    from ..widgets import GuidanceExplorer
    from ..zoo import load

    return GuidanceExplorer(
        load("8gaussians-cond-lam0"),
        load("8gaussians-cond-lam0-zeta0.6"),
        dataset="8gaussians",
        num_samples=800,
    )


def _guidance_controls(quick: bool) -> list[TwinControl]:
    nfes = (4, 8) if quick else (2, 4, 8, 16)
    scales = (1.0, 1.6) if quick else (1.0, 1.6, 3.0, 5.0)
    classes = (-1, 0) if quick else (-1, *range(8))
    return [
        TwinControl("nfe", nfes, "range", label="NFE", default=8),
        TwinControl("guidance", scales, "range", label="CFG w", default=1.6),
        TwinControl(
            "class_id",
            classes,
            "select",
            label="class",
            labels=tuple("all" if c == -1 else str(c) for c in classes),
        ),
    ]


# ----------------------------------------------------------------------------- 30 images
def _kappa_rho_grid(quick: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if quick:
        return (0.0, 1.0), (0.0, 1.0)
    return (0.0, 0.25, 0.5, 1.0), (0.0, 0.5, 1.0)


def _kappa_rho(quick: bool) -> Any:
    from ..metrics.digits import digits_frechet
    from ..schedules import even_time_points
    from ..widgets import KappaRhoExplorer, cache_trajectories
    from ..zoo import load

    kappas, rhos = _kappa_rho_grid(quick)
    metric = digits_frechet()
    lam0, lam1 = load("digits-linear-lam0"), load("digits-linear-lam1")
    caches = {
        "lambda=0": cache_trajectories(
            lam0.model, lam0.transport, metric.test_labels, kappas, rhos,
            metric=metric, time_points=even_time_points(4),
        ),
        "lambda=1": cache_trajectories(
            lam1.model, lam1.transport, metric.test_labels, kappas, rhos,
            metric=metric, time_points=even_time_points(2),
        ),
    }  # fmt: skip
    return KappaRhoExplorer(caches, num_samples=30)


def _kappa_rho_controls(quick: bool) -> list[TwinControl]:
    kappas, rhos = _kappa_rho_grid(quick)
    return [
        TwinControl("name", ("lambda=0", "lambda=1"), "select", label="model"),
        TwinControl("kappa", kappas, "range"),
        TwinControl("rho", rhos, "range"),
    ]


TWINS: tuple[TwinSpec, ...] = (
    TwinSpec(
        "transports", "10_transports", "TransportExplorer(",
        "Transports: coefficients and the cloud x_t (notebook 10)",
        _transports, _transports_controls,
    ),
    TwinSpec(
        "transport_editor", "10_transports", "CustomTransportEditor(",
        "Your own transport: the constraints checked (notebook 10)",
        _editor, _editor_controls, settings=_EDITOR_PRESETS,
    ),
    TwinSpec(
        "consistency", "11_consistency_ratio", "ConsistencyExplorer(",
        "The consistency ratio lambda: x^ along a trajectory (notebook 11)",
        _consistency, _consistency_controls,
    ),
    TwinSpec(
        "sampler", "12_sampler", "SamplerExplorer(",
        "UCGM-S: kappa, rho, order, steps, schedule (notebook 12)",
        _sampler, _sampler_controls,
    ),
    TwinSpec(
        "guidance", "13_transports_and_enhanced_target", "GuidanceExplorer(",
        "Enhanced target against CFG at equal NFE (notebook 13)",
        _guidance, _guidance_controls,
    ),
    TwinSpec(
        "kappa_rho", "30_images", "KappaRhoExplorer(",
        "Digits: kappa and rho on image trajectories (notebook 30)",
        _kappa_rho, _kappa_rho_controls, kind="image",
    ),
)  # fmt: skip
"""The kernel-free explorers, in notebook order."""


def make_explorer(spec: TwinSpec, quick: bool = False) -> Any:
    """The live explorer of a spec, built as its notebook builds it (single-threaded)."""
    from ..runtime import single_thread

    with single_thread():
        return spec.make(quick)


def _image_at(explorer: Any) -> Callable[..., tuple[bytes, str]]:
    def image_at(name: str, kappa: float, rho: float) -> tuple[bytes, str]:
        explorer.update(kappa, rho, name)
        score = explorer.cache.scores.get((float(kappa), float(rho)))
        text = f"{name}: NFE {explorer.cache.nfe}, kappa = {kappa:g}, rho = {rho:g}"
        if score is not None:
            text += f", digits FD <b>{score:.1f}</b>"
        return png_bytes(explorer.figure), text

    return image_at


def build_twin(spec: TwinSpec, quick: bool = False, explorer: Any = None) -> Twin:
    """Precompute the twin of one spec (its live explorer evaluated at every grid point).

    Args:
        spec: The explorer.
        quick: A test-sized grid.
        explorer: The live explorer to use (default: :func:`make_explorer`).
    """
    from ..runtime import single_thread

    explorer = explorer if explorer is not None else make_explorer(spec, quick)
    note = (
        f"A kernel-free copy of the explorer in notebook <code>{spec.notebook}</code>: every "
        "figure was computed in advance by the same code, from the same models, at the "
        "control values offered here. Run the notebook to move the controls freely."
    )
    controls = spec.controls(quick)
    with single_thread():
        if spec.kind == "image":
            return precompute_images(_image_at(explorer), controls, spec.title, note)
        if spec.settings is not None:
            presets = spec.settings

            def figure_at(preset: str) -> tuple[dict[str, Any], str]:
                return explorer.figure_at(**presets[preset])

            return precompute(figure_at, controls, spec.title, note)
        return precompute(explorer.figure_at, controls, spec.title, note)
