"""Figures that a static viewer can show: the live plotly figure with a PNG beside it.

A plotly figure is stored in a notebook as ``application/vnd.plotly.v1+json``, which only a
running JupyterLab (or a viewer with plotly's JavaScript) draws: GitHub and nbviewer show
nothing. :func:`notebook_setup` makes every figure a notebook displays carry an ``image/png``
copy as well (rendered by kaleido with the system's Chromium), so the stored outputs are visible
everywhere while JupyterLab keeps the interactive figure.

PNGs are made only when they will be stored: in test mode (``UCGM_LAB_TEST_MODE=1``, CI) they
are skipped because they cost about half a second each and nbval ignores figure outputs.
Widgets redraw with :data:`LIVE_RENDERER` explicitly (a PNG per slider move would be slow).
"""

from __future__ import annotations

import warnings

import plotly.io as pio

from ..runtime import test_mode

__all__ = ["LIVE_RENDERER", "STATIC_RENDERER", "notebook_setup", "show", "static_images_work"]

LIVE_RENDERER = "plotly_mimetype"
STATIC_RENDERER = "plotly_mimetype+png"

_static_images_work: bool | None = None


def static_images_work() -> bool:
    """True when plotly can render a PNG here (kaleido installed and a Chromium it can start).

    The answer is computed once (it starts the browser) and cached for the session.
    """
    global _static_images_work
    if _static_images_work is None:
        try:
            import plotly.graph_objects as go

            pio.to_image(
                go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), format="png", width=50, height=50
            )
            _static_images_work = True
        except Exception as error:  # noqa: BLE001 - any failure means "no PNGs here"
            warnings.warn(
                "Figures will be stored without a static PNG copy (plotly could not render one: "
                f"{type(error).__name__}: {error}). Install the notebooks extra "
                "(`pip install -e '.[notebooks]'`, which brings kaleido) and Chromium "
                "(`apt-get install chromium`) to store figures that GitHub and nbviewer show.",
                stacklevel=2,
            )
            _static_images_work = False
    return _static_images_work


def notebook_setup(static_images: bool | None = None, width: int = 800, height: int = 450) -> str:
    """Choose how this notebook's plotly figures are displayed; returns the renderer name.

    Args:
        static_images: store a PNG beside each live figure. ``None`` (default): yes, except in
            test mode. ``True`` falls back to live figures only, with a warning, when no PNG can
            be rendered here.
        width: PNG width in pixels.
        height: PNG height in pixels (figures with their own layout size keep it).
    """
    if static_images is None:
        static_images = not test_mode()
    renderer = STATIC_RENDERER if static_images and static_images_work() else LIVE_RENDERER
    pio.renderers["png"].width = width
    pio.renderers["png"].height = height
    pio.renderers.default = renderer
    return renderer


def show(fig, static_image: bool | None = None) -> None:
    """Display ``fig`` live, with a PNG copy when ``static_image`` (default: as set up).

    Args:
        fig: a plotly figure.
        static_image: ``True``/``False`` to force or skip the PNG copy; ``None`` follows
            :func:`notebook_setup` (plotly's default renderer).
    """
    if static_image is None:
        fig.show()
    elif static_image and static_images_work():
        fig.show(renderer=STATIC_RENDERER)
    else:
        fig.show(renderer=LIVE_RENDERER)
