"""Kernel-free twins: the encoding, the grid, and agreement with the live explorers."""

from __future__ import annotations

import numpy as np
import pytest

from ucgm_lab.widgets import SamplerExplorer, TransportExplorer
from ucgm_lab.widgets.twin import (
    TwinControl,
    _encode_numbers,
    decode_array,
    frame_figure,
    precompute,
    write_twin_page,
)


def test_int16_encoding_within_half_a_step_and_keeps_nan() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000) * 3
    values[[3, 500]] = np.nan
    entry = _encode_numbers(values)
    back = decode_array(entry)
    assert entry["t"] == "i16"
    assert np.isnan(back[[3, 500]]).all()
    finite = np.isfinite(values)
    assert np.max(np.abs(back[finite] - values[finite])) <= entry["s"] / 2 + 1e-15
    assert entry["s"] == pytest.approx(np.nanmax(np.abs(values)) / 32000)


def test_small_integers_are_exact() -> None:
    values = np.array([0, 1, 7, -3, 2] * 5)
    entry = _encode_numbers(values)
    assert entry["t"] == "i8"
    np.testing.assert_array_equal(decode_array(entry), values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(values=()), "values is empty"),
        (dict(values=(1, 2), kind="slider"), "kind must be"),
        (dict(values=(0, 1), kind="checkbox"), "checkbox has values"),
        (dict(values=(1, 2), labels=("a",)), "1 labels for 2 values"),
        (dict(values=(1, 2), default=3), "not among"),
    ],
)
def test_bad_controls_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TwinControl("c", **kwargs)


def _toy_figure_at(a: float, b: str = "p") -> tuple[dict, str]:
    x = np.linspace(0, 1, 50)
    return (
        {
            "data": [
                {"type": "scatter", "x": x, "y": np.sin(a * x), "name": b},
                {"type": "scatter", "x": x, "y": np.cos(x)},  # the same in every frame
            ],
            "layout": {"title": {"text": f"a={a} {b}"}},
        },
        f"status {a} {b}",
    )


def test_precompute_stores_each_grid_point_and_shares_arrays() -> None:
    controls = [
        TwinControl("a", (1.0, 2.0, 3.0), default=2.0),
        TwinControl("b", ("p", "q"), "select"),
    ]
    twin = precompute(_toy_figure_at, controls, "toy")
    assert len(twin.frames) == 6
    # x and cos(x) are shared by every frame; one sin array per value of a
    assert len(twin.pool) == 2 + 3
    for key, values in twin.grid():
        fig = frame_figure(twin, key)
        want, status = _toy_figure_at(**values)
        assert twin.frames[key]["status"] == status
        assert fig["layout"]["title"]["text"] == want["layout"]["title"]["text"]
        assert fig["data"][0]["name"] == values["b"]
        np.testing.assert_allclose(fig["data"][0]["y"], want["data"][0]["y"], atol=1e-4)
        np.testing.assert_allclose(fig["data"][1]["y"], want["data"][1]["y"], atol=1e-4)
    # the default setting is the base: its frame changes nothing
    assert twin.frames[twin.key(a=2.0, b="p")]["set"] == {}
    with pytest.raises(ValueError, match="not a grid point"):
        twin.key(a=5.0, b="p")


def test_page_is_self_contained(tmp_path) -> None:
    twin = precompute(_toy_figure_at, [TwinControl("a", (1.0, 2.0))], "toy </script>")
    twin.frames["0"]["status"] = "</script><b>x</b>"
    page = write_twin_page(twin, tmp_path / "e" / "toy.html").read_text()
    assert "http" not in page.split('<script id="twin-data"')[0]  # no CDN
    assert page.count("</script>") == 3  # plotly, data, script: the data cannot close early


def _assert_same_figure(twin, key: str, live_fig: dict, live_text: str) -> None:
    fig = frame_figure(twin, key)
    assert twin.frames[key]["status"] == live_text
    assert len(fig["data"]) == len(live_fig["data"])
    for got, want in zip(fig["data"], live_fig["data"], strict=True):
        for attr in ("x", "y"):
            w = want.get(attr)
            if w is None or isinstance(w, dict):
                continue
            w = np.asarray(w, dtype=np.float64)
            g = np.asarray(got[attr], dtype=np.float64).reshape(w.shape)
            tol = 1e-4 * max(1.0, float(np.nanmax(np.abs(w)))) if w.size else 0
            np.testing.assert_allclose(g, w, atol=tol, equal_nan=True)
    assert fig["layout"].get("title") == live_fig["layout"].get("title")
    texts = [a.get("text") for a in live_fig["layout"].get("annotations", [])]
    assert [a.get("text") for a in fig["layout"].get("annotations", [])] == texts


def _live(explorer, values: dict) -> tuple[dict, str]:
    """A fresh explorer's figure at these values, through the learner's path (update)."""
    explorer.update(**values)
    return explorer.figure.to_plotly_json(), explorer.text


def test_transport_twin_equals_the_live_explorer() -> None:
    controls = [
        TwinControl("transport", ("linear", "trigflow"), "select"),
        TwinControl("t", (0.0, 0.3, 0.5, 1.0), default=0.5),
    ]
    twin = precompute(TransportExplorer(num_points=300).figure_at, controls, "transports")
    live = TransportExplorer(num_points=300)  # another instance, moved as a learner would
    for values in (
        dict(transport="trigflow", t=0.3),
        dict(transport="linear", t=1.0),
        dict(transport="linear", t=0.5),
    ):
        fig, text = _live(live, values)
        _assert_same_figure(twin, twin.key(**values), fig, text)


def test_sampler_twin_equals_the_live_explorer() -> None:
    from toy_data import sample_2d
    from ucgm_lab.zoo import load

    model = load("checkerboard-linear-lam0")
    reference = sample_2d("checkerboard", 300, seed=100).points

    def make() -> SamplerExplorer:
        return SamplerExplorer(model, reference, num_points=300, metric_points=300, num_paths=20)

    controls = [
        TwinControl("kappa", (0.0, 0.5)),
        TwinControl("rho", (0.0, 1.0)),
        TwinControl("order", (1, 2), "select"),
        TwinControl("steps", (2, 4), default=4),
    ]
    twin = precompute(make().figure_at, controls, "sampler")
    assert len(twin.frames) == 16
    live = make()
    for values in (
        dict(kappa=0.5, rho=1.0, order=2, steps=2),
        dict(kappa=0.0, rho=0.0, order=1, steps=4),
        dict(kappa=0.5, rho=0.0, order=1, steps=2),
    ):
        fig, text = _live(live, values)
        _assert_same_figure(twin, twin.key(**values), fig, text)


def test_figure_at_raises_the_explorers_error() -> None:
    explorer = TransportExplorer(num_points=100)
    fig, text = explorer.figure_at(t=0.25)
    assert "t = 0.25" in text and fig["layout"]["title"]["text"].endswith(f"D = {-1.0:.2f}")

    def broken(**values):
        raise ValueError("t must be in [0, 1]")

    explorer._render = broken  # a redraw that fails: no frame is stored for it
    with pytest.raises(ValueError, match=r"TransportExplorer at \{'t': 0.5\}: t must be"):
        explorer.figure_at(t=0.5)
