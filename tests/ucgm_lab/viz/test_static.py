import plotly.graph_objects as go
import plotly.io as pio
import pytest

from ucgm_lab.viz import static


@pytest.fixture(autouse=True)
def _restore_renderer():
    before = pio.renderers.default
    yield
    pio.renderers.default = before


def test_test_mode_stores_live_figures_only(monkeypatch):
    monkeypatch.setenv("UCGM_LAB_TEST_MODE", "1")
    assert static.notebook_setup() == static.LIVE_RENDERER
    assert pio.renderers.default == "plotly_mimetype"


def test_static_request_falls_back_with_a_warning_when_no_png_can_be_made(monkeypatch):
    monkeypatch.setattr(static, "_static_images_work", None)

    def broken(*args, **kwargs):
        raise RuntimeError("no browser")

    monkeypatch.setattr(static.pio, "to_image", broken)
    with pytest.warns(UserWarning, match="without a static PNG copy.*no browser"):
        assert static.notebook_setup(static_images=True) == static.LIVE_RENDERER


def test_static_bundle_has_png_and_plotly_json(monkeypatch):
    monkeypatch.setattr(static, "_static_images_work", True)
    import plotly.io._base_renderers as base_renderers

    monkeypatch.setattr(base_renderers, "to_image", lambda *a, **k: b"\x89PNG fake")
    static.notebook_setup(static_images=True)
    bundle = pio.renderers._build_mime_bundle(go.Figure(go.Scatter(x=[0], y=[0])).to_dict())
    assert "application/vnd.plotly.v1+json" in bundle
    assert "image/png" in bundle
