"""The browser test fails when it should: small synthetic notebooks in JupyterLab.

A cell that raises, a widget that cannot be displayed, and explorers whose control changes
nothing (no redraw at all, or a redraw of the same figure) must each be reported; a working
explorer must pass. Without these, a browser test that never fails would look the same as one
that finds nothing wrong.
"""

from __future__ import annotations

import nbformat
import pytest

from .lab import BrowserTestError, NotebookPage

pytestmark = pytest.mark.browser

FIGURE = """
import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio

def figure(k):
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, k, 2 * k], mode="lines+markers"))
    fig.update_layout(width=400, height=300, title=f"k = {k}")
    return fig

def show(out, fig):
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

slider = w.IntSlider(value=1, min=0, max=5, description="k")
out = w.Output()
show(out, figure(1))
"""

EXPLORERS = {
    "works": FIGURE + "slider.observe(lambda c: show(out, figure(c['new'])), names='value')\n",
    "no-redraw": FIGURE,  # the slider is not connected
    "same-figure": FIGURE
    + "def same(c):\n    out.outputs = ()\n    show(out, figure(1))\n"
    + "slider.observe(same, names='value')\n",
}


def write_notebook(lab, name: str, *sources: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = lab.root / "synthetic" / f"{name}.ipynb"
    nbformat.write(nb, path)
    return f"synthetic/{name}.ipynb"


def test_a_cell_that_raises_is_reported(lab, page, artifacts):
    path = write_notebook(lab, "raises", "x = 1", "raise RuntimeError('boom in a cell')", "y = 2")
    nb = NotebookPage(page, lab, path, artifacts)
    nb.open()
    report = nb.run_all()
    nb.close()
    assert any("RuntimeError: boom in a cell" in e for e in report.errors), report.errors


def test_a_widget_that_cannot_be_displayed_is_reported(lab, page, artifacts):
    missing = (
        "from IPython.display import display\n"
        "display({'application/vnd.jupyter.widget-view+json': "
        "{'model_id': '0123456789abcdef', 'version_major': 2, 'version_minor': 0}}, raw=True)"
    )
    path = write_notebook(lab, "missing-widget", missing)
    nb = NotebookPage(page, lab, path, artifacts)
    nb.open()
    report = nb.run_all()
    assert not report.errors and report.widget_outputs == 1
    problems = nb.problems()
    nb.close()
    assert any("model not found" in p or "Error displaying widget" in p for p in problems), problems


@pytest.mark.parametrize("kind", sorted(EXPLORERS))
def test_a_control_that_changes_nothing_is_reported(lab, page, artifacts, kind):
    path = write_notebook(lab, f"explorer-{kind}", EXPLORERS[kind], "w.VBox([slider, out])")
    nb = NotebookPage(page, lab, path, artifacts)
    nb.open()
    report = nb.run_all()
    assert not report.errors and not nb.problems()
    ((control,),) = nb.explorers()
    assert control.kind == "slider"
    try:
        if kind == "works":
            move = nb.move(0, control, timeout=10)
            assert move.pixels_changed > 0 and move.seconds > 0
        else:
            with pytest.raises(BrowserTestError, match="changes nothing"):
                nb.move(0, control, timeout=5)
    finally:
        nb.close()
