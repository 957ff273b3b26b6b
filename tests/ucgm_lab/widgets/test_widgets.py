"""Build every explorer without a browser, move its controls with update() and check the figure."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from ucgm_lab.transports import Transport
from ucgm_lab.widgets import (
    ConsistencyExplorer,
    CustomTransportEditor,
    FigureView,
    GuidanceExplorer,
    SamplerExplorer,
    SettingsCache,
    TransportExplorer,
    coefficient_from_expression,
    coefficients_figure,
    figure_widget_available,
    parse_time_points,
    schedule_figure,
    x_hat_columns,
)

BACKENDS = [
    "output",
    pytest.param(
        "figurewidget",
        marks=pytest.mark.skipif(
            not figure_widget_available(), reason="plotly FigureWidget needs the anywidget package"
        ),
    ),
]


def shrink(x, t, y=None):
    """A fixed field: F = x_t - 0.5 (pulls every estimate towards a point)."""
    return x - 0.5


def swirl(x, t, y=None):
    """Another fixed field, different from ``shrink``."""
    return torch.stack([x[:, 1], -x[:, 0]], dim=1)


class ClassNet(torch.nn.Module):
    """A conditional 'model': F = x_t - centre(y), with a null class that maps to the origin."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.num_classes = 8
        self.null_class = 8
        angles = torch.arange(8) * math.pi / 4
        centres = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        self.register_buffer("centres", torch.cat([scale * centres, torch.zeros(1, 2)]))

    def forward(self, x, t, y=None):
        if y is None:
            y = torch.full((x.shape[0],), 8)
        return x - self.centres[y].to(x.dtype)


def xy(trace):
    return np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)


@pytest.fixture
def reference():
    return torch.randn(64, 2, generator=torch.Generator().manual_seed(5))


# ---------------------------------------------------------------------- machinery
@pytest.mark.parametrize("backend", BACKENDS)
def test_figure_view_redraws_once_per_batch(backend):
    view = FigureView(go.Figure(go.Scatter(x=[0], y=[0])), backend=backend)
    with view.batch_update() as fig:
        fig.data[0].x = [1, 2]
    assert list(view.figure.data[0].x) == [1, 2]
    if backend == "output":
        (out,) = view.widget.outputs
        assert out["data"]["application/vnd.plotly.v1+json"]["data"][0]["x"] == [1, 2]
    else:
        assert view.widget is view.figure
    with pytest.raises(ValueError, match="backend"):
        FigureView(go.Figure(), backend="svg")


def test_default_backend_is_output_and_auto_picks_what_is_available():
    assert FigureView(go.Figure()).backend == "output"
    expected = "figurewidget" if figure_widget_available() else "output"
    assert FigureView(go.Figure(), backend="auto").backend == expected


def test_settings_cache_answers_repeats_and_forgets_the_oldest():
    calls = []
    cache = SettingsCache(lambda a, b: calls.append((a, b)) or a + b, maxsize=2)
    assert cache(a=1, b=2) == 3 and cache(b=2, a=1) == 3
    assert calls == [(1, 2)] and (cache.hits, cache.misses) == (1, 1)
    cache(a=2, b=2)
    cache(a=3, b=2)  # evicts (1, 2)
    assert len(cache) == 2
    cache(a=1, b=2)
    assert calls[-1] == (1, 2)
    with pytest.raises(ValueError, match="maxsize"):
        SettingsCache(lambda: 0, maxsize=0)


def test_update_rejects_unknown_controls_and_bad_values():
    ex = TransportExplorer(num_points=32, backend="output")
    with pytest.raises(TypeError, match="unknown controls"):
        ex.update(kappa=0.5)
    with pytest.raises(ValueError, match="outside the slider"):
        ex.update(t=1.5)
    with pytest.raises(ValueError, match="not one of the options"):
        ex.update(transport="flow")
    assert ex.values == {"transport": "linear", "t": 0.5}


# ---------------------------------------------------------------------- transports
def test_coefficients_figure_draws_every_transport():
    fig = coefficients_figure()
    assert len(fig.data) == 6 * 6  # 6 transports x (5 curves + the (gamma, alpha) path)
    linear_alpha = fig.data[0]
    assert linear_alpha.name == "Linear"
    assert pytest.approx(linear_alpha.y[-1]) == 1.0
    assert len(coefficients_figure(["linear", "trigflow"], grid=11).data) == 12


@pytest.mark.parametrize("backend", BACKENDS)
def test_transport_explorer_moves_the_cloud_from_data_to_noise(backend):
    ex = TransportExplorer(num_points=50, backend=backend)
    cloud = ex.figure.data[8]
    ex.update(t=0.0)
    np.testing.assert_allclose(np.stack(xy(cloud), 1), ex.x.numpy(), atol=1e-6)
    ex.update(t=1.0)
    np.testing.assert_allclose(np.stack(xy(cloud), 1), ex.z.numpy(), atol=1e-6)
    alpha_linear = xy(ex.figure.data[0])[1].copy()
    ex.update(transport="trigflow", t=0.5)
    alpha_trig = xy(ex.figure.data[0])[1]
    np.testing.assert_allclose(alpha_trig, np.sin(np.pi / 2 * xy(ex.figure.data[0])[0]), atol=1e-6)
    assert not np.allclose(alpha_linear, alpha_trig)
    assert "TrigFlow" in ex.figure.layout.title.text
    assert ex.figure.data[5].x == (0.5, 0.5)  # the t marker
    assert ex.error is None


def test_coefficient_from_expression():
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    assert torch.equal(coefficient_from_expression("1")(t), torch.ones_like(t))
    torch.testing.assert_close(
        coefficient_from_expression("sin(pi * t / 2)")(t), torch.sin(math.pi / 2 * t)
    )
    with pytest.raises(ValueError, match=r"attribute \(\.cos\)"):
        coefficient_from_expression("torch.cos(t)")  # torch is no longer reachable
    with pytest.raises(ValueError, match="a call of 'open'"):
        coefficient_from_expression("open(t)", "alpha")
    with pytest.raises(ValueError, match="not a valid formula"):
        coefficient_from_expression("1 +", "alpha")
    with pytest.raises(ValueError, match="attribute"):
        coefficient_from_expression("t.__class__", "alpha")
    with pytest.raises(ValueError, match="empty"):
        coefficient_from_expression("  ", "gamma")


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_transport_editor_reports_the_library_validation(backend):
    ed = CustomTransportEditor(backend=backend)
    assert ed.level == "ok" and isinstance(ed.transport, Transport) and "Valid" in ed.status.value
    # constraint (c): D = -t - (1 - t) * gh vanishes at t = 0.5 when gamma_hat = 1
    ed.update(gamma_hat="1")
    assert ed.level == "error" and ed.transport is None
    assert "constraint (c)" in ed.message and "t = 0.5" in ed.message
    d = xy(ed.figure.data[4])[1]
    assert np.nanmin(np.abs(d)) < 1e-9  # the broken D(t) is still drawn
    # constraint (b): gamma(1) = 0.5 warns
    ed.update(gamma_hat="-1", gamma="1 - t / 2")
    assert ed.level == "warning" and "gamma(1)=0" in ed.message and ed.transport is not None
    # a formula error
    ed.update(alpha="t +")
    assert ed.level == "error" and "not a valid formula" in ed.message
    # curves follow the formulas
    ed.update(alpha="t ** 2", gamma="1 - t")
    t, alpha = xy(ed.figure.data[0])
    np.testing.assert_allclose(alpha, t**2, atol=1e-6)
    assert ed.level == "ok"


# ---------------------------------------------------------------------- lambda
def test_x_hat_columns():
    assert x_hat_columns(8, 5) == [0, 2, 4, 5, 7]
    assert x_hat_columns(2, 5) == [0, 1]
    assert x_hat_columns(1, 5) == [0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_consistency_explorer_shows_x_hat_along_the_trajectory(backend, reference):
    ex = ConsistencyExplorer(
        {0.0: (shrink, "linear"), 1.0: (swirl, "linear")},
        reference,
        num_points=40,
        metric_points=40,
        steps_options=(1, 2, 8),
        backend=backend,
    )
    assert ex.values == {"lam": 0.0, "steps": 8, "rho": 0.0}
    out, _ = ex.result(0.0, 8, 0.0)
    first = np.stack(xy(ex.figure.data[0]), 1)
    np.testing.assert_allclose(first, out.x_hat[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(np.stack(xy(ex.figure.data[6]), 1), out.sample.numpy(), atol=1e-6)
    ex.update(steps=2)
    assert len(ex.figure.data[1].x) == 40 and len(ex.figure.data[2].x) == 0  # two x^ panels
    assert ex.figure.layout.annotations[5].text == "sample, NFE 2"
    ex.update(lam=1.0)
    assert not np.allclose(np.stack(xy(ex.figure.data[0]), 1), first)
    assert "lambda = 1" in ex.status.value and "w2" in ex.status.value
    misses = ex.cache.misses
    ex.update(lam=0.0, steps=8)  # seen before: answered from the cache
    assert ex.cache.misses == misses
    ex.update(rho=0.5)
    assert ex.cache.misses == misses + 1
    with pytest.raises(ValueError, match="metric_points"):
        ConsistencyExplorer({0.0: (shrink, "linear")}, reference[:10], metric_points=20)
    with pytest.raises(TypeError, match="zoo model"):
        ConsistencyExplorer({0.0: shrink}, reference, metric_points=20)


# ---------------------------------------------------------------------- sampler
def test_parse_time_points_and_schedule_figure():
    assert parse_time_points("0.999, 0.5") == [0.999, 0.5]
    assert parse_time_points("1 0.6 0.2") == [1.0, 0.6, 0.2]
    with pytest.raises(ValueError, match="numbers"):
        parse_time_points("1, a")
    with pytest.raises(ValueError, match="decreasing"):
        parse_time_points("0.2, 0.5")
    fig = schedule_figure(steps=4)
    assert len(fig.data) == 3 * 2 + 2
    assert list(fig.data[1].y) == pytest.approx([0.999, 0.75, 0.5, 0.25, 0.0], abs=2e-3)  # "even"
    assert fig.data[1].y[-1] == 0.0 and len(fig.data[1].y) == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampler_explorer_follows_every_knob(backend, reference):
    ex = SamplerExplorer(
        (swirl, "linear"), reference, num_points=40, num_paths=10, metric_points=40, backend=backend
    )
    samples = ex.figure.data[5]
    grid = ex.figure.data[6]
    out, _ = ex.result()
    np.testing.assert_allclose(np.stack(xy(samples), 1), out.sample.numpy(), atol=1e-6)
    assert len(grid.y) == 9 and "NFE <b>8</b>" in ex.status.value
    paths_x = np.asarray(ex.figure.data[1].x, dtype=float)
    assert np.isnan(paths_x).sum() == 10  # ten polylines (viz.trajectory_figure), NaN-separated
    before = np.stack(xy(samples), 1)
    ex.update(kappa=0.5)
    assert not np.allclose(np.stack(xy(samples), 1), before)
    ex.update(order=2, steps=7)
    assert "NFE <b>7</b>" in ex.status.value and len(grid.y) == 5
    ex.update(order=1, rho=0.5)
    noisy = np.stack(xy(samples), 1)
    ex.update(rho_auto=True)
    assert not np.allclose(np.stack(xy(samples), 1), noisy)
    ex.update(rho_auto=False, rho=0.0, schedule="auto", steps=8)
    assert not np.allclose(np.asarray(grid.y), np.linspace(0.999, 0.001, 8).tolist() + [0.0])
    ex.update(schedule="explicit", time_points="0.999, 0.5")
    assert list(grid.y) == [0.999, 0.5, 0.0] and "NFE <b>2</b>" in ex.status.value
    # an impossible setting is reported in the status line, the figure keeps the last good state
    ex.update(order=2, time_points="1.0, 0.5")
    assert ex.error is not None and "gamma(t_i)" in ex.error and "gamma(t_i)" in ex.status.value
    assert list(grid.y) == [0.999, 0.5, 0.0]
    assert ex.controls["correction"].value == "noise"  # the paper's correction by default
    assert ex.sampler_kwargs(**ex.values)["correction"] == "noise"
    ex.update(correction="data")  # the data-form correction divides by alpha(t_i) = 1 instead
    assert ex.error is None and list(grid.y) == [1.0, 0.5, 0.0]
    assert "data correction" in ex.figure.layout.title.text and "NFE <b>3</b>" in ex.status.value
    with pytest.raises(ValueError, match="options"):
        ex.update(correction="x_hat")
    ex.update(time_points="0.2, 0.5")
    assert "decreasing" in ex.error
    anim = ex.animation(order=1, time_points="0.999, 0.5")
    assert len(anim.frames) == 3
    misses = ex.cache.misses
    ex.update(order=1, time_points="0.999, 0.5", kappa=0.5, rho_auto=True)
    ex.update(schedule="even", rho_auto=False, rho=0.0, kappa=0.0)
    assert ex.cache.misses == misses + 1  # only the first of the two settings was new
    ex.update(correction="noise")  # order 1 has no correction: the same cached setting
    assert ex.cache.misses == misses + 1 and "correction" not in ex.figure.layout.title.text
    ex.update(order=2, steps=4)
    noise_form = np.stack(xy(samples), 1)
    ex.update(correction="data")
    assert not np.allclose(np.stack(xy(samples), 1), noise_form)


# ---------------------------------------------------------------------- enhanced target / CFG
@pytest.mark.parametrize("backend", BACKENDS)
def test_guidance_explorer_compares_at_equal_nfe(backend):
    ex = GuidanceExplorer(
        (ClassNet(scale=0.5), "linear"),
        (ClassNet(scale=1.0), "linear"),
        num_samples=48,
        nfe_options=(2, 4, 8),
        zeta=0.6,
        backend=backend,
    )
    notes = [a.text for a in ex.figure.layout.annotations]
    assert (
        "4 steps, NFE 4" in notes[0] and "2 steps, NFE 4" in notes[1] and "zeta = 0.6" in notes[2]
    )
    ex.update(nfe=8, guidance=3.0)
    assert (
        "CFG w = 3" in ex.figure.layout.annotations[1].text
        and "NFE 8" in ex.figure.layout.annotations[1].text
    )
    plain = np.stack(xy(ex.figure.data[1]), 1)
    cfg = np.stack(xy(ex.figure.data[3]), 1)
    assert not np.allclose(plain, cfg)
    ex.update(class_id=3)
    assert np.unique(np.asarray(ex.figure.data[1].marker.color)).tolist() == [3]
    enhanced = np.stack(xy(ex.figure.data[5]), 1)
    centre = np.array([math.cos(3 * math.pi / 4), math.sin(3 * math.pi / 4)])
    assert np.linalg.norm(enhanced.mean(0) - centre) < 0.3  # the scale-1 'model' hits class 3
    assert "class W2" in ex.status.value and "spread" in ex.status.value
    accuracy = {k: ex.result(k, 8, 3.0, 3)[1]["class_accuracy"] for k in ("plain", "enhanced")}
    assert 0 <= accuracy["plain"] < accuracy["enhanced"] <= 1
    with pytest.raises(ValueError, match="which"):
        ex.result("guided", 4, 2.0, -1)
    with pytest.raises(ValueError, match="nfe_options"):
        GuidanceExplorer((ClassNet(), "linear"), (ClassNet(), "linear"), nfe_options=(1, 2))


# ---------------------------------------------------------------------- what the browser gets
def _all_explorers(reference):
    return [
        TransportExplorer(num_points=200, shown_points=50),
        CustomTransportEditor(),
        ConsistencyExplorer(
            {0.0: (shrink, "linear"), 1.0: (swirl, "linear")},
            reference,
            num_points=64,
            metric_points=32,
            shown_points=20,
        ),
        SamplerExplorer(
            (swirl, "linear"),
            reference,
            num_points=64,
            num_paths=5,
            metric_points=32,
            shown_points=20,
        ),
        GuidanceExplorer(
            (ClassNet(), "linear"),
            (ClassNet(1.2), "linear"),
            num_samples=64,
            nfe_options=(2, 4),
            shown_points=24,
        ),
    ]


def test_explorers_draw_svg_traces_and_cap_the_markers(reference):
    """No WebGL trace (Chromium keeps 16 contexts per page); at most shown_points markers."""
    for ex in _all_explorers(reference):
        kinds = {trace.type for trace in ex.figure.data}
        assert "scattergl" not in kinds, type(ex).__name__
        cap = getattr(ex, "shown_points", None)
        if cap is not None:
            for trace in ex.figure.data:
                if trace.type == "scatter" and trace.mode == "markers" and trace.x is not None:
                    assert len(trace.x) <= max(cap, 5), (type(ex).__name__, trace.name)


def test_redraws_use_the_live_mimetype_even_when_notebooks_store_pngs(reference, monkeypatch):
    import plotly.io as pio

    from ucgm_lab.viz import LIVE_RENDERER, STATIC_RENDERER

    monkeypatch.setattr(pio.renderers, "default", STATIC_RENDERER)
    ex = SamplerExplorer((swirl, "linear"), reference, num_points=40, metric_points=40)
    ex.update(kappa=0.5)
    (out,) = ex.view.widget.outputs
    assert set(out["data"]) == set(pio.renderers[LIVE_RENDERER].to_mimebundle({"data": []}))
    assert "image/png" not in out["data"]


def test_displayed_explorer_stores_a_png_of_its_first_figure_as_its_own_output(
    reference, monkeypatch
):
    import IPython.display
    import plotly.io as pio

    import ucgm_lab.widgets._base as base
    from ucgm_lab.viz import LIVE_RENDERER, STATIC_RENDERER

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.setattr(base, "static_images_work", lambda: True)
    monkeypatch.setattr(pio, "to_image", lambda fig, **kw: b"\x89PNG fake")
    ex = TransportExplorer(num_points=100)
    assert "image/png" not in ex._repr_mimebundle_()
    monkeypatch.setattr(pio.renderers, "default", LIVE_RENDERER)
    ex._ipython_display_()
    assert [obj for obj, _ in shown] == [ex.widget]
    shown.clear()
    monkeypatch.setattr(pio.renderers, "default", STATIC_RENDERER)
    ex._ipython_display_()
    (widget, _), (png, kw) = shown
    assert widget is ex.widget
    assert png["image/png"] == "iVBORyBmYWtl"  # base64 of the fake PNG, an output of its own
    assert kw == {"raw": True, "metadata": {"ucgm_lab": {"static_copy": True}}}
    shown.clear()
    monkeypatch.setattr(base, "static_images_work", lambda: False)
    ex._ipython_display_()
    assert [obj for obj, _ in shown] == [ex.widget]
