"""The README's notebook table and the notebooks folder agree, and the stored notebooks follow
the project's policy.

Running the notebooks is nbval's job (``pytest notebooks --nbval`` in scripts/test.sh): they
are stored with their outputs, and nbval re-executes every cell and compares the outputs
(cells marked ``# NBVAL_IGNORE_OUTPUT`` are executed but not compared). These tests check what
nbval does not: that every notebook the README lists exists (so nbval runs it), that none is
left out of the table, that each is stored executed, and that no output leaks a path of the
machine that ran it.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOTEBOOKS = ROOT / "notebooks"
MACHINE_PATHS = re.compile(r"(/work/|/tmp/|/root/|/home/\w|/Users/\w|[A-Z]:\\\\Users)")


def readme_notebooks() -> list[str]:
    """Notebook file names in the table rows of the README's "Notebooks" section."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Notebooks\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "README.md has no '## Notebooks' section."
    names: list[str] = []
    for line in match.group(1).splitlines():
        if line.lstrip().startswith("|"):
            for name in re.findall(r"([\w.-]+\.ipynb)", line):
                if name not in names:
                    names.append(name)
    return names


def stored_notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_readme_table_lists_notebooks_that_exist():
    listed = readme_notebooks()
    assert listed, (
        "The README's Notebooks section has no table of notebooks (rows with NAME.ipynb)."
    )
    missing = [name for name in listed if not (NOTEBOOKS / name).is_file()]
    assert not missing, f"README lists notebooks that are not in notebooks/: {missing}"


def test_every_notebook_is_listed_in_the_readme():
    listed = set(readme_notebooks())
    unlisted = [p.name for p in stored_notebooks() if p.name not in listed]
    assert not unlisted, f"Notebooks missing from the README table: {unlisted}"


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_notebook_is_stored_executed_without_machine_paths(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb.get("nbformat") == 4, f"{path.name}: not an nbformat 4 notebook"
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, f"{path.name}: no code cells"
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, (
        f"{path.name}: code cells {unexecuted} were not executed; notebooks are stored with "
        "outputs (run them with UCGM_LAB_TEST_MODE=1 jupyter nbconvert --execute --inplace)."
    )
    for i, cell in enumerate(code):
        leaked = MACHINE_PATHS.search(json.dumps(cell.get("outputs", [])))
        assert not leaked, (
            f"{path.name}: output of code cell {i} contains a machine path {leaked.group(0)!r}"
        )
