"""Shared machinery of the interactive explorers: figure views, the explorer base class, caches.

An explorer owns a set of ipywidgets controls, a plotly figure and an ``update(**values)``
method. Moving a control calls the same code path as ``update``, so tests (and scripts) can
drive an explorer without a browser and check how its figure changes.

Two figure backends (:class:`FigureView`):

* ``"output"`` (the default): a plain ``go.Figure`` redrawn into an ``ipywidgets.Output``
  after every change. Works with ipywidgets alone, and a notebook saved with its widget
  state stays small (the figure's JSON only).
* ``"figurewidget"``: a ``plotly.graph_objects.FigureWidget``, which sends only what changed.
  plotly >= 6 builds it on the ``anywidget`` package, and every FigureWidget's saved widget
  state carries plotly's whole JavaScript bundle (about 10 MB per widget), so stored
  notebooks should not use it.
* ``"auto"``: ``"figurewidget"`` when it can be built, else ``"output"``.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar

import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio

from ..evaluation import model_and_transport
from ..runtime import single_thread
from ..viz.static import LIVE_RENDERER, static_images_work

__all__ = [
    "Explorer",
    "FigureView",
    "SettingsCache",
    "figure_widget_available",
    "model_and_transport",
    "single_thread",
]

Backend = Literal["output", "figurewidget", "auto"]
V = TypeVar("V")


def figure_widget_available() -> bool:
    """True when ``plotly.graph_objects.FigureWidget`` can be built here.

    plotly >= 6 builds FigureWidget on the ``anywidget`` package; without it the explorers
    fall back to redrawing a plain figure into an ``ipywidgets.Output``.
    """
    try:
        go.FigureWidget()
    except ImportError:
        return False
    return True


class FigureView:
    """A plotly figure displayed in a notebook and changed in place.

    Args:
        figure: The initial figure (its traces and layout; the view keeps its own copy).
        backend: ``"output"`` (default: a ``go.Figure`` redrawn into an
            ``ipywidgets.Output``), ``"figurewidget"`` (a ``go.FigureWidget``; needs
            ``anywidget`` with plotly >= 6, and its saved widget state holds ~10 MB of
            JavaScript) or ``"auto"`` (FigureWidget when available). See the module docstring.

    Attributes:
        figure: The figure to change (``go.FigureWidget`` or ``go.Figure``); change it inside
            :meth:`batch_update` so that the notebook redraws once.
        widget: What to put in a notebook layout.
        backend: The backend in use.
    """

    def __init__(self, figure: go.Figure, backend: Backend = "output") -> None:
        if backend == "auto":
            backend = "figurewidget" if figure_widget_available() else "output"
        if backend == "figurewidget":
            self.figure: go.Figure = go.FigureWidget(figure)
            self.widget: w.Widget = self.figure
        elif backend == "output":
            self.figure = go.Figure(figure)
            self.widget = w.Output()
        else:
            raise ValueError(
                f"backend must be 'output', 'figurewidget' or 'auto', got {backend!r}."
            )
        self.backend: Backend = backend
        self.refresh()

    @contextlib.contextmanager
    def batch_update(self) -> Iterator[go.Figure]:
        """Context manager: change ``figure`` inside it; the notebook redraws once at the end."""
        with self.figure.batch_update():
            yield self.figure
        self.refresh()

    def refresh(self) -> None:
        """Redraw the figure (only needed by the ``output`` backend; a no-op for FigureWidget)."""
        if self.backend == "output":
            # Always the live mimetype, whatever plotly's default renderer is: a notebook set up
            # with ucgm_lab.viz.notebook_setup() adds a PNG to every figure it shows, which would
            # cost half a second per slider move and make JupyterLab show a picture.
            bundle = pio.renderers[LIVE_RENDERER].to_mimebundle(self.figure.to_dict())
            self.widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class SettingsCache(Generic[V]):
    """A small least-recently-used cache of computations keyed by explorer settings.

    Moving a slider back to a value seen before answers from the cache at once.

    Args:
        compute: Function of the settings (keyword arguments) that returns the value.
        maxsize: Number of settings kept.
    """

    def __init__(self, compute: Callable[..., V], maxsize: int = 128) -> None:
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive integer, got {maxsize!r}.")
        self._compute = compute
        self._maxsize = maxsize
        self._store: OrderedDict[Hashable, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __call__(self, **settings: Hashable) -> V:
        """The value for these settings, computed on the first request only."""
        key = tuple(sorted(settings.items()))
        if key in self._store:
            self.hits += 1
            self._store.move_to_end(key)
            return self._store[key]
        self.misses += 1
        value = self._compute(**settings)
        self._store[key] = value
        if len(self._store) > self._maxsize:
            self._store.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every stored value."""
        self._store.clear()


class Explorer:
    """Base class of the explorers: controls, a figure view, a status line and ``update``.

    Subclasses create their controls and initial figure, then call :meth:`_finish`, and
    implement :meth:`_render` (change ``self.figure`` for the given control values and return
    the status text, HTML allowed).

    Attributes:
        controls: Control name -> ipywidgets control; ``update`` takes these names.
        view: The :class:`FigureView`.
        status: An ``ipywidgets.HTML`` line under the controls (timings, metrics, errors).
        error: The message of the last failed redraw, or None.
        last_seconds: Wall time of the last redraw.
    """

    controls: dict[str, w.ValueWidget]
    view: FigureView

    def _finish(
        self,
        controls: Mapping[str, w.ValueWidget],
        figure: go.Figure,
        backend: Backend,
        rows: list[list[str]] | None = None,
    ) -> None:
        self.controls = dict(controls)
        self.view = FigureView(figure, backend)
        self.status = w.HTML()
        self.error: str | None = None
        self.text = ""
        self.last_seconds = 0.0
        self._updating = False
        rows = rows or [list(self.controls)]
        boxes = [w.HBox([self.controls[name] for name in row]) for row in rows]
        self.widget = w.VBox([*boxes, self.status, self.view.widget])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self._redraw()

    # ------------------------------------------------------------------ public
    @property
    def figure(self) -> go.Figure:
        """The figure shown (a ``go.FigureWidget`` or a ``go.Figure``, see :class:`FigureView`)."""
        return self.view.figure

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values: Any) -> None:
        """Set some controls (as a learner would) and redraw once.

        Args:
            **values: Control name -> new value; see ``controls`` for the names.

        Raises:
            TypeError: For an unknown control name.
            ValueError: For a value outside a slider's range or not among a menu's options.
        """
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.update() got unknown controls {unknown}; "
                f"the controls are {sorted(self.controls)}."
            )
        for name, value in values.items():
            _check_value(name, self.controls[name], value)
        self._updating = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._updating = False
        self._redraw()

    def figure_at(self, **values: Any) -> tuple[dict[str, Any], str]:
        """The figure and the status text for these control values: one grid point.

        The one function the live explorer and its kernel-free twin
        (:mod:`ucgm_lab.widgets.twin`) share: it sets the controls with :meth:`update`, so the
        figure comes from the same ``_render`` a slider move runs.

        Args:
            **values: Control name -> value (controls not given keep their values).

        Returns:
            (the figure as plotly JSON, a dict with ``data`` and ``layout``; the status text,
            HTML allowed).

        Raises:
            ValueError: When the redraw failed (the explorer's error message).
        """
        self.update(**values)
        if self.error is not None:
            raise ValueError(f"{type(self).__name__} at {values}: {self.error}")
        return self.figure.to_plotly_json(), self.text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget view (the live explorer; see :meth:`_ipython_display_` for the picture)."""
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        """Show the live explorer and, when the notebook stores PNGs, a picture of it.

        When plotly's default renderer adds PNGs (:func:`ucgm_lab.viz.notebook_setup` outside
        test mode), the PNG of the current figure follows the widget as an output of its own
        (``image/png`` with metadata ``{"ucgm_lab": {"static_copy": true}}``): a viewer without
        a kernel or widget manager (nbconvert, GitHub, nbviewer) shows it, where the widget view
        alone would show nothing or the text ``VBox(...)``. The static site replaces it with the
        kernel-free twin (:mod:`ucgm_lab.site`).
        """
        from IPython.display import display

        display(self.widget)
        if "png" in str(pio.renderers.default).split("+"):
            png = self.static_image()
            if png is not None:
                display(
                    {
                        "image/png": png,
                        "text/plain": f"<picture of the {type(self).__name__} as first shown>",
                    },
                    raw=True,
                    metadata={"ucgm_lab": {"static_copy": True}},
                )

    def static_image(self) -> str | None:
        """The current figure as a base64 PNG (None where plotly cannot render one)."""
        if not static_images_work():
            return None
        import base64

        renderer = pio.renderers["png"]
        width = self.figure.layout.width or renderer.width
        height = self.figure.layout.height or renderer.height
        raw = pio.to_image(self.figure, format="png", width=width, height=height)
        return base64.b64encode(raw).decode("ascii")

    # ------------------------------------------------------------------ internals
    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._updating:
            self._redraw()

    def _redraw(self) -> None:
        start = time.perf_counter()
        try:
            with self.view.batch_update():
                text = self._render(**self.values)
            self.error = None
            self.text = text
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.error = str(exc)
            text = f"<span style='color:#b00'>{_escape(self.error)}</span>"
        self.last_seconds = time.perf_counter() - start
        self.status.value = f"{text} <span style='color:#888'>({self.last_seconds:.2f} s)</span>"

    def _render(self, **values: Any) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check_value(name: str, control: w.ValueWidget, value: Any) -> None:
    options = getattr(control, "options", None)
    if options is not None and not isinstance(
        control, w.SelectionSlider | w.Dropdown | w.ToggleButtons
    ):
        options = None
    if options is not None:
        allowed = [o[1] if isinstance(o, tuple) else o for o in options]
        if value not in allowed:
            raise ValueError(f"{name}={value!r} is not one of the options {allowed}.")
        return
    lo, hi = getattr(control, "min", None), getattr(control, "max", None)
    if lo is not None and hi is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}.")
        if not lo <= value <= hi:
            raise ValueError(f"{name}={value} is outside the slider's range [{lo}, {hi}].")
