"""Kernel-free twins of the explorers: their figures precomputed over a grid of control values.

A twin is a self-contained HTML page: the controls (range sliders over the grid, menus, check
boxes), a plotly figure or a picture, and the precomputed data of every grid point. Moving a
control looks the grid point up and redraws in the browser (``Plotly.react``); no kernel,
no server, no network.

The data come from the live explorer itself: :func:`precompute` calls
:meth:`~ucgm_lab.widgets.Explorer.figure_at` (the explorer's own ``_render``) at every grid
point, so the twin and the notebook's explorer cannot disagree.

Format (the JSON embedded in the page, read by :data:`~ucgm_lab.widgets.twin_page.TWIN_SCRIPT`):

* ``controls``: name, label, kind (``"range"``, ``"select"`` or ``"checkbox"``), the values'
  labels and the index of the default value.
* ``pool``: the arrays, each stored once however many frames share it (deduplicated by
  content): ``{"t": "i16", "s": scale, "b": base64}`` (numbers quantised to int16, step
  ``scale``, -32768 = NaN), ``{"t": "i8", "b": ...}`` (small integers) or
  ``{"t": "png", "b": ...}`` (a picture).
* ``base``: the first grid point's figure, flattened to ``{"data.3.x": value, ...}`` with
  arrays replaced by ``{"$": pool index}``.
* ``frames``: ``"i,j,k"`` (the control indices) -> ``{"set": {path: value}, "status": html}``,
  only the paths whose value differs from ``base``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .twin_page import TWIN_SCRIPT, write_twin_page

__all__ = [
    "TWIN_SCRIPT",
    "Twin",
    "TwinControl",
    "decode_array",
    "frame_figure",
    "precompute",
    "precompute_images",
    "write_twin_page",
]

ControlKind = Literal["range", "select", "checkbox"]
_NAN = -32768
_MIN_POOLED = 8  # shorter numeric lists stay inline in the JSON


@dataclass(frozen=True)
class TwinControl:
    """One control of a twin: the grid values a learner can pick.

    Attributes:
        name: The explorer's control name (``explorer.update(name=value)``).
        values: The grid values, in slider order.
        kind: ``"range"`` (a slider over the values), ``"select"`` (a menu) or ``"checkbox"``
            (values ``(False, True)``).
        label: Text before the control (default: the name).
        labels: Text of each value (default: ``str`` or ``:g`` of the value).
        default: The value shown first (default: the first value).
    """

    name: str
    values: tuple[Any, ...]
    kind: ControlKind = "range"
    label: str = ""
    labels: tuple[str, ...] = ()
    default: Any = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"control {self.name!r}: values is empty; give at least one value.")
        if self.kind not in ("range", "select", "checkbox"):
            raise ValueError(
                f"control {self.name!r}: kind must be 'range', 'select' or 'checkbox', "
                f"got {self.kind!r}."
            )
        if self.kind == "checkbox" and (
            tuple(self.values) != (False, True) or not all(isinstance(v, bool) for v in self.values)
        ):
            raise ValueError(f"control {self.name!r}: a checkbox has values (False, True).")
        if self.labels and len(self.labels) != len(self.values):
            raise ValueError(
                f"control {self.name!r}: {len(self.labels)} labels for {len(self.values)} values."
            )
        if self.default is not None and self.default not in self.values:
            raise ValueError(
                f"control {self.name!r}: default {self.default!r} is not among {self.values}."
            )

    @property
    def default_index(self) -> int:
        """Position of the default value among ``values``."""
        return 0 if self.default is None else list(self.values).index(self.default)

    def to_json(self) -> dict[str, Any]:
        """The control as the page's script reads it."""
        labels = self.labels or tuple(
            f"{v:g}" if isinstance(v, float) else str(v) for v in self.values
        )
        return {
            "name": self.name,
            "label": self.label or self.name,
            "kind": self.kind,
            "labels": list(labels),
            "default": self.default_index,
        }


@dataclass
class Twin:
    """The precomputed data of one kernel-free explorer (see the module docstring).

    Attributes:
        title: Page title.
        kind: ``"plotly"`` (a figure) or ``"image"`` (a picture per grid point).
        controls: The controls, in the order of the frame keys.
        base: The flattened figure of the first grid point (``"plotly"`` only).
        frames: Frame key -> frame.
        pool: The shared arrays.
        note: HTML shown above the controls (what the page is, which notebook).
    """

    title: str
    kind: Literal["plotly", "image"]
    controls: list[TwinControl]
    base: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)
    pool: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def grid(self) -> list[tuple[str, dict[str, Any]]]:
        """Every grid point: (frame key, control values)."""
        points = []
        ranges = [range(len(c.values)) for c in self.controls]
        for idx in itertools.product(*ranges):
            values = {c.name: c.values[i] for c, i in zip(self.controls, idx, strict=True)}
            points.append((",".join(map(str, idx)), values))
        return points

    def key(self, **values: Any) -> str:
        """The frame key of these control values (one value per control)."""
        try:
            return ",".join(str(list(c.values).index(values[c.name])) for c in self.controls)
        except (KeyError, ValueError):
            raise ValueError(
                f"{values} is not a grid point; the grid is "
                f"{ {c.name: c.values for c in self.controls} }."
            ) from None

    def add(self, entry: dict[str, Any]) -> dict[str, int]:
        """Put an encoded array into the pool (once per content); returns its reference."""
        digest = hashlib.sha1(json.dumps(entry, sort_keys=True).encode()).hexdigest()
        if digest not in self._index:
            self._index[digest] = len(self.pool)
            self.pool.append(entry)
        return {"$": self._index[digest]}

    def to_json(self) -> dict[str, Any]:
        """The JSON embedded in the page (see the module docstring)."""
        return {
            "title": self.title,
            "kind": self.kind,
            "controls": [c.to_json() for c in self.controls],
            "base": self.base,
            "frames": self.frames,
            "pool": self.pool,
        }


# ----------------------------------------------------------------------------- encoding
def _encode_numbers(values: np.ndarray) -> dict[str, Any]:
    """A numeric array as int8 (small integers) or int16 with a scale (NaN kept)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(flat)
    if finite.all() and np.all(flat == np.round(flat)) and np.all(np.abs(flat) < 128):
        raw = flat.astype(np.int8).tobytes()
        return {"t": "i8", "b": base64.b64encode(raw).decode("ascii")}
    top = float(np.max(np.abs(flat[finite]))) if finite.any() else 1.0
    scale = max(top, 1e-12) / 32000.0
    q = np.full(flat.shape, _NAN, dtype=np.int16)
    q[finite] = np.round(flat[finite] / scale).astype(np.int16)
    return {"t": "i16", "s": scale, "b": base64.b64encode(q.astype("<i2").tobytes()).decode()}


def decode_array(entry: dict[str, Any]) -> np.ndarray:
    """The numbers of a pool entry (the inverse of the encoding, up to its quantisation step)."""
    raw = base64.b64decode(entry["b"])
    if entry["t"] == "i8":
        return np.frombuffer(raw, dtype=np.int8).astype(np.float64)
    if entry["t"] == "i16":
        q = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        return np.where(q == _NAN, np.nan, q * entry["s"])
    raise ValueError(f"pool entry of type {entry['t']!r} holds no numbers.")


def _is_numeric_list(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fiub"
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def _flatten(value: Any, prefix: str, out: dict[str, Any], twin: Twin) -> None:
    """Flatten plotly JSON: dicts and lists of dicts recurse; numeric arrays go to the pool."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            _flatten(_plotly_array(value), prefix, out, twin)
            return
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else k, out, twin)
        return
    if isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}.{i}", out, twin)
        return
    if isinstance(value, np.ndarray) and value.ndim > 1 and value.dtype.kind in "fiub":
        out[prefix] = {**twin.add(_encode_numbers(value)), "shape": list(value.shape)}
        return
    if _is_numeric_list(value) and len(value) >= _MIN_POOLED:
        out[prefix] = twin.add(_encode_numbers(np.asarray(value)))
        return
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        value = None
    if isinstance(value, list | tuple):
        value = [None if isinstance(v, float) and not np.isfinite(v) else v for v in value]
    out[prefix] = value


def _plotly_array(value: Mapping[str, Any]) -> np.ndarray:
    """A plotly typed array (``{"dtype": "f4", "bdata": base64, "shape": "r, c"}``) as numpy."""
    array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    shape = value.get("shape")
    if shape:
        dims = [int(s) for s in str(shape).replace("[", "").replace("]", "").split(",")]
        array = array.reshape(dims)
    return array


def _flat_figure(figure: Mapping[str, Any], twin: Twin) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _flatten(
        {"data": list(figure.get("data", [])), "layout": figure.get("layout", {})}, "", out, twin
    )
    return out


# ----------------------------------------------------------------------------- precompute
def precompute(
    figure_at: Callable[..., tuple[Mapping[str, Any], str]],
    controls: Sequence[TwinControl],
    title: str,
    note: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Twin:
    """Evaluate ``figure_at`` at every grid point and store the figures compactly.

    Args:
        figure_at: Control values (keywords) -> (plotly figure JSON, status HTML); usually
            :meth:`Explorer.figure_at <ucgm_lab.widgets.Explorer.figure_at>`.
        controls: The twin's controls; the grid is the product of their values.
        title: Page title.
        note: HTML above the controls.
        progress: Called with (done, total) after every grid point.

    Returns:
        The :class:`Twin`.
    """
    twin = Twin(title=title, kind="plotly", controls=list(controls), note=note)
    points = twin.grid()
    default_key = ",".join(str(c.default_index) for c in twin.controls)
    # The default setting first: it is the base every frame is a difference from.
    points.sort(key=lambda p: p[0] != default_key)
    for done, (key, values) in enumerate(points, 1):
        fig, status = figure_at(**values)
        flat = _flat_figure(fig, twin)
        if not twin.base:
            twin.base = flat
        changed = {k: v for k, v in flat.items() if twin.base.get(k, ...) != v}
        changed.update({k: None for k in twin.base if k not in flat})
        twin.frames[key] = {"set": changed, "status": status}
        if progress is not None:
            progress(done, len(points))
    return twin


def precompute_images(
    image_at: Callable[..., tuple[bytes, str]],
    controls: Sequence[TwinControl],
    title: str,
    note: str = "",
) -> Twin:
    """Like :func:`precompute` for a picture per grid point (PNG bytes, status HTML)."""
    twin = Twin(title=title, kind="image", controls=list(controls), note=note)
    for key, values in twin.grid():
        png, status = image_at(**values)
        ref = twin.add({"t": "png", "b": base64.b64encode(png).decode("ascii")})
        twin.frames[key] = {"image": ref, "status": status}
    return twin


def frame_figure(twin: Twin, key: str) -> dict[str, Any]:
    """The plotly figure of one frame rebuilt from the twin's data (what the page draws).

    Numeric arrays come back as numpy arrays (within the quantisation step of the pool).
    """
    flat = {**twin.base, **twin.frames[key]["set"]}
    root: dict[str, Any] = {}
    for path, value in flat.items():
        if value is None:
            continue
        if isinstance(value, dict) and "$" in value:
            array = decode_array(twin.pool[value["$"]])
            value = array.reshape(value["shape"]) if "shape" in value else array
        parts = path.split(".")
        node: Any = root
        for part, nxt in itertools.pairwise(parts):
            child: Any = [] if nxt.isdigit() else {}
            if isinstance(node, list):
                i = int(part)
                while len(node) <= i:
                    node.append(None)
                if node[i] is None:
                    node[i] = child
                node = node[i]
            else:
                node = node.setdefault(part, child)
        last = parts[-1]
        if isinstance(node, list):
            i = int(last)
            while len(node) <= i:
                node.append(None)
            node[i] = value
        else:
            node[last] = value
    return root


def png_bytes(figure: Any, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
