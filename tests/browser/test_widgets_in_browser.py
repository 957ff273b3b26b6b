"""Every notebook with a widget, in JupyterLab in headless Chromium, as a learner meets it.

For each notebook: open it, Run All (test mode), fail on any error output, broken widget,
page error, bad console message or lost WebGL context; then move every control of every
explorer at least once and check that the figure changed (data and pixels), with extra slider
moves that measure the time from the key press to the new figure on screen (printed, not
asserted). Screenshots go to ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from .conftest import LATENCY
from .lab import ROOT, WIDGET_MIME, Move, NotebookPage, percentile

pytestmark = pytest.mark.browser

SLIDER_MOVES = {"12_sampler": 22}  # the stress case: 22 moves in a row
DEFAULT_SLIDER_MOVES = 10


def widget_notebooks() -> list[str]:
    """Notebooks whose stored outputs contain a widget."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if any(
            WIDGET_MIME in out.get("data", {})
            for cell in nb["cells"]
            for out in cell.get("outputs", [])
        ):
            found.append(path.name)
    return found


def exercise(nb: NotebookPage, slider_moves: int) -> list[Move]:
    """Slider moves (round robin, turning at the ends), then every control once."""
    moves: list[Move] = []
    for e, controls in enumerate(nb.explorers()):
        sliders = [c for c in controls if c.kind == "slider"]
        direction = {c.index: 1 for c in sliders}
        for i in range(slider_moves if sliders else 0):
            control = sliders[i % len(sliders)]
            if nb.slider_at_bound(e, control, direction[control.index]):
                direction[control.index] *= -1
            moves.append(nb.move(e, control, direction[control.index]))
            print(f"  {nb.name} explorer {e}: {_describe(moves[-1])}", flush=True)
        # Every control once, the sliders first (other controls can make a slider moot,
        # e.g. rho once rho = auto is ticked).
        for control in sorted(controls, key=lambda c: c.kind != "slider"):
            direction = 1
            if control.kind == "slider" and nb.slider_at_bound(e, control, 1):
                direction = -1
            moves.append(nb.move(e, control, direction))
            print(f"  {nb.name} explorer {e}: {_describe(moves[-1])}", flush=True)
    return moves


def _describe(m: Move) -> str:
    kernel = "-" if m.kernel_seconds is None else f"{m.kernel_seconds:.2f}"
    return f"{m.kind} {m.control!r}: {m.seconds:.3f} s (kernel {kernel} s, {m.pixels_changed} px)"


def latency_rows(name: str, moves: list[Move]) -> list[str]:
    rows = []
    for e in sorted({m.explorer for m in moves}):
        slider = [m for m in moves if m.explorer == e and m.kind == "slider"]
        every = [m for m in moves if m.explorer == e]
        used = slider or every
        kernel = [m.kernel_seconds for m in used if m.kernel_seconds is not None]
        rows.append(
            f"| {name} explorer {e} | {'slider' if slider else used[0].kind} | {len(used)} "
            f"| {statistics.median(m.seconds for m in used):.3f} "
            f"| {percentile([m.seconds for m in used], 95):.3f} "
            f"| {statistics.median(kernel):.3f} |"
            if kernel
            else f"| {name} explorer {e} | {used[0].kind} | {len(used)} "
            f"| {statistics.median(m.seconds for m in used):.3f} "
            f"| {percentile([m.seconds for m in used], 95):.3f} | - |"
        )
    return rows


def stored_widget_outputs(notebook: str) -> int:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    return sum(
        WIDGET_MIME in out.get("data", {})
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
    )


@pytest.mark.parametrize("notebook", widget_notebooks())
def test_opened_notebook_shows_every_explorer_without_running(lab, page, artifacts, notebook):
    """A fresh clone, set up by scripts/setup_env.sh (which trusts the notebooks), opened in
    JupyterLab: every stored explorer shows its widget and first figure, nothing runs."""
    lab.trust([lab.root / "notebooks" / notebook])
    # Up to two reloads for one known race of JupyterLab's widget manager (ipywidgets'
    # jupyterlab_widgets, manager.ts): when the kernel's connection turns "connected" while the
    # first restore is still loading the notebook's saved state, a second, kernel-only restore
    # marks the manager restored early, and an output rendered in between shows "model not
    # found" for good (the renderer only retries while the manager is not yet restored). It is
    # timing, not our notebooks: seen for 10 and 11 in full CI runs under load, never when
    # rerun alone. A reload keeps the running kernel (no new kernel start, the slow part), as
    # a user who reloads would. Any other problem, or the race on every try, fails.
    attempts = 3
    nb = None
    try:
        for attempt in range(1, attempts + 1):
            nb = NotebookPage(page, lab, f"notebooks/{notebook}", artifacts)
            nb.open()
            nb.expected_widgets = stored_widget_outputs(notebook)
            nb.wait_for_widgets(nb.expected_widgets)
            assert nb.explorers(), f"{notebook} opened without running shows no explorer."
            nb.screenshot(f"0-opened-{attempt}")
            problems = nb.problems()
            if attempt < attempts and problems and all("model not found" in p for p in problems):
                print(f"{notebook}: reloading (try {attempt}) after {problems}")
                continue
            assert not problems, f"{notebook} opened without running (try {attempt}): {problems}"
            return
    finally:
        if nb is not None:
            nb.close()


@pytest.mark.parametrize("notebook", widget_notebooks())
def test_notebook_runs_and_every_control_redraws(lab, page, artifacts, notebook):
    nb = NotebookPage(page, lab, f"notebooks/{notebook}", artifacts)
    try:
        run_and_exercise(nb, notebook, artifacts)
    finally:
        nb.close()


def run_and_exercise(nb: NotebookPage, notebook: str, artifacts: Path) -> None:
    nb.open()
    report = nb.run_all()
    nb.explorers()
    nb.screenshot("1-run-all")
    assert not report.errors, f"{notebook}: error outputs after Run All: {report.errors}"
    assert report.widget_outputs > 0, f"{notebook}: Run All displayed no widget."
    assert not nb.problems(), f"{notebook}: {nb.problems()}"
    contexts_before = nb.webgl_contexts()
    moves = exercise(nb, SLIDER_MOVES.get(Path(notebook).stem, DEFAULT_SLIDER_MOVES))
    nb.screenshot("2-after-moves")
    assert not nb.problems(), f"{notebook} after {len(moves)} moves: {nb.problems()}"
    undrawn = nb.undrawn_figures()
    assert not undrawn, f"{notebook}: figures not drawn after {len(moves)} moves: {undrawn}"
    rows = latency_rows(Path(notebook).stem, moves)
    LATENCY.extend(rows)
    contexts = nb.webgl_contexts()
    LATENCY.append(
        f"|   ({notebook}: {len(moves)} moves, WebGL contexts {contexts_before} after Run All, "
        f"{contexts} at the end) |"
    )
    print("\n".join(rows))
    with open(artifacts / "latency.md", "a", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    assert contexts == contexts_before, (
        f"{notebook}: the moves created {contexts - contexts_before} WebGL contexts."
    )
