"""The site builder: static outputs for widgets, the landing page, links, the output folder."""

from __future__ import annotations

import pytest

from ucgm_lab.site.build import (
    SITE_MARKER,
    WIDGET_MIME,
    _fix_links,
    _static_outputs,
    build_site,
    landing_markdown,
)
from ucgm_lab.site.explorers import TWINS

SPEC = TWINS[0]


def _out(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def test_a_widget_output_becomes_its_png_and_the_twin() -> None:
    widget = {WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox(...)"}
    shown = _static_outputs([_out({**widget, "image/png": "iVBOR"})], SPEC)
    assert [list(o["data"]) for o in shown] == [["image/png"], ["text/html"]]
    assert f"../explorers/{SPEC.name}.html" in shown[1]["data"]["text/html"]
    # a widget output of its own (as stored after _ipython_display_) and its PNG
    shown = _static_outputs([_out(widget), _out({"image/png": "iVBOR"})], SPEC)
    assert [list(o["data"]) for o in shown] == [["text/html"], ["image/png"]]
    # a progress bar: dropped; other outputs untouched
    stream = {"output_type": "stream", "name": "stdout", "text": "hi"}
    assert _static_outputs([_out(widget), stream], None) == [stream]


def test_landing_page_has_the_learning_path_and_the_glossary() -> None:
    text = landing_markdown()
    assert "glossary" in text.lower()
    assert "00_ucgm_from_scratch" in text


def test_links(tmp_path) -> None:
    html = '<a href="../docs/paper-notes.md#e1">x</a> <a href="12_sampler.ipynb#top">y</a>'
    assert 'href="12_sampler.html#top"' in _fix_links(html, "notebooks")
    assert 'href="../docs/paper-notes.md#e1"' in _fix_links(html, "notebooks")
    fixed = _fix_links(html, "notebooks", "https://github.com/o/r/blob/main")
    assert 'href="https://github.com/o/r/blob/main/docs/paper-notes.md#e1"' in fixed
    readme = '<a href="../README.md#glossary">g</a>'
    fixed = _fix_links(readme, "", "https://x/blob/main", source_dir="notebooks")
    assert 'href="https://x/blob/main/README.md#glossary"' in fixed
    assert 'href="notebooks/10_transports.html"' in _fix_links(
        '<a href="notebooks/10_transports.ipynb">', ""
    )


def test_a_folder_that_is_not_a_site_is_never_emptied(tmp_path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(ValueError, match="not empty and was not built by ucgm-lab"):
        build_site(tmp_path, notebooks=[], explorers=[], log=lambda _: None)
    assert (tmp_path / "mine.txt").read_text() == "precious"
    with pytest.raises(ValueError, match="unknown notebooks"):
        build_site(tmp_path / "new", notebooks=["99_nope"], explorers=[])
    with pytest.raises(ValueError, match="unknown explorers"):
        build_site(tmp_path / "new", notebooks=[], explorers=["nope"])


def test_a_notebook_page_shows_pngs_not_widgets(tmp_path) -> None:
    out = tmp_path / "site"
    report = build_site(out, notebooks=["10_transports"], explorers=[], log=lambda _: None)
    assert (out / SITE_MARKER).exists() and (out / "plotly.min.js").stat().st_size > 1e6
    page = (out / "notebooks" / "10_transports.html").read_text()
    assert WIDGET_MIME not in page and "VBox(" not in page
    assert page.count("data:image/png;base64") >= 3  # the coefficient figure and two explorers
    assert "glossary" in (out / "index.html").read_text().lower()
    assert report.pages == ["10_transports"]
    build_site(out, notebooks=[], explorers=[], log=lambda _: None)  # a rebuild empties it
    assert not (out / "notebooks" / "10_transports.html").exists()
