"""Re-running cells in any order works once an exercise is answered (no shadowing).

Each exercise notebook is executed in test mode with a *wrong* answer in every exercise cell
(its check must fail with ExerciseError, nothing else), up to its last exercise; then every
earlier code cell is run again, last first, as a learner going back up the notebook would.
Before the answers had their own names (``my_<name>``), re-running notebook 04's SymPy cell after
answering ``beta_mode`` raised ``TypeError: beta_mode() missing 2 required positional
arguments`` (this test fails that way on the old notebook).
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [
    "01_prediction_functions_and_objective.ipynb",
    "02_special_cases.ipynb",
    "03_sampler_derivations.ipynb",
    "04_schedules.ipynb",
    "05_gaussian_optimum.ipynb",
]
STUB = "raise NotImplementedError  # your answer here"


def _is_exercise(source: str) -> bool:
    return bool(re.match(r"# Exercise \w+", source)) and STUB in source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_wrong_answer_then_re_running_earlier_cells(name, monkeypatch, tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    last = max(i for i, c in enumerate(code) if _is_exercise(c.source))
    cells = code[: last + 1]
    exercises = {i for i, cell in enumerate(cells) if _is_exercise(cell.source)}
    for i in exercises:
        cells[i].source = cells[i].source.replace(STUB, "return 0.0  # a wrong answer")
    monkeypatch.setenv("UCGM_LAB_TEST_MODE", "1")
    monkeypatch.setenv("UCGM_LAB_PROGRESS_FILE", str(tmp_path / "progress.json"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(
        nbformat.v4.new_notebook(cells=cells),
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    with client.setup_kernel():

        def run(index: int) -> str | None:
            try:
                client.execute_cell(cells[index], index)
            except CellExecutionError as error:
                return str(error)
            return None

        for index in range(len(cells)):
            error = run(index)
            if index in exercises:
                assert error and "ExerciseError" in error, (index, error)
            else:
                assert error is None, (index, error)
        # then back up the notebook, last cell first: an earlier cell re-run after an answer
        # (before the imports are re-run) must not find the answer under a library name
        for index in reversed(range(len(cells) - 1)):
            if index not in exercises:
                assert run(index) is None, f"re-running code cell {index} failed"
