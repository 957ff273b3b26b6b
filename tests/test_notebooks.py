"""The README's notebook table and the notebooks folder agree, and the stored notebooks follow
the project's policy.

Running the notebooks is nbval's job (``pytest notebooks --nbval`` in scripts/test.sh): they
are stored with their outputs, and nbval re-executes every cell and compares the outputs
(cells marked ``# NBVAL_IGNORE_OUTPUT`` are executed but not compared). These tests check what
nbval does not: that every notebook the README lists exists (so nbval runs it), that none is
left out of the table, that each is stored executed, and that no output leaks a path of the
machine that ran it. The stored outputs are what a reader sees without a kernel, so they come
from full-budget runs (``python scripts/execute_notebooks.py``): no output says "test mode",
and every plotly figure has a PNG copy beside it (``ucgm_lab.viz.notebook_setup``). Finally,
nothing the project ships (notebooks, docstrings and comments, docs) refers to a file that is
not in the repository.
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
        "outputs (run them at full budget with python scripts/execute_notebooks.py)."
    )
    for i, cell in enumerate(code):
        leaked = MACHINE_PATHS.search(json.dumps(cell.get("outputs", [])))
        assert not leaked, (
            f"{path.name}: output of code cell {i} contains a machine path {leaked.group(0)!r}"
        )


def _outputs(path: Path) -> list[tuple[int, dict]]:
    """(code cell index, output) for every stored output of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return [(i, out) for i, cell in enumerate(code) for out in cell.get("outputs", [])]


def _output_text(output: dict) -> str:
    texts = [output.get("text", ""), output.get("ename", ""), output.get("evalue", "")]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            texts.append(value if isinstance(value, (str, list)) else json.dumps(value))
    return "\n".join("".join(t) if isinstance(t, list) else t for t in texts)


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_stored_outputs_come_from_a_full_budget_run(path):
    bad = [i for i, out in _outputs(path) if "test mode" in _output_text(out).lower()]
    assert not bad, (
        f"{path.name}: the stored outputs of code cells {bad} mention test mode; store the "
        "outputs of a full-budget run (python scripts/execute_notebooks.py notebooks/"
        f"{path.name})."
    )


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_every_plotly_figure_has_a_static_image(path):
    bare = [
        i
        for i, out in _outputs(path)
        if "application/vnd.plotly.v1+json" in out.get("data", {})
        and "image/png" not in out.get("data", {})
    ]
    assert not bare, (
        f"{path.name}: code cells {bare} store a plotly figure without an image/png copy, which "
        "GitHub and nbviewer do not show; call ucgm_lab.viz.notebook_setup() in the first code "
        "cell and re-execute at full budget (python scripts/execute_notebooks.py)."
    )


# Files that are not part of the repository (developer notes, the paper's text, the issue
# tracker) must not be cited by anything the project ships.
OUTSIDE_REFERENCES = re.compile(
    r"(?<![\w-])notes\.md|ucgm-paper\.md|shared/paper|closing note of the issue"
    r"|erratum \d+ of the\s+notes",
    re.I,
)
# Paths inside the repository that the shipped text mentions must exist.
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:docs|notebooks|benchmarks|scripts|scale|tests|toy_data|ucgm_lab)/"
    r"[\w./-]*?\.(?:md|py|ipynb|yaml|sh|txt|toml))(?:::(\w+))?"
)
SHIPPED_SUFFIXES = (".py", ".md", ".ipynb", ".yaml", ".yml", ".toml", ".sh", ".txt")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".ipynb_checkpoints", "build", "dist"}


def shipped_text_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in SHIPPED_SUFFIXES and path != Path(__file__).resolve():
            files.append(path)
    return sorted(files)


def _shipped_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    nb = json.loads(text)
    parts = ["".join(c["source"]) for c in nb["cells"]]
    parts += [_output_text(out) for _, out in _outputs(path)]
    return "\n".join(parts)


def test_nothing_cites_a_file_outside_the_repository():
    found = []
    for path in shipped_text_files():
        for match in OUTSIDE_REFERENCES.finditer(_shipped_text(path)):
            found.append(f"{path.relative_to(ROOT)}: {match.group(0)!r}")
    assert not found, (
        "These files cite files that are not in the repository (put what they rely on into "
        "docs/paper-notes.md and cite its item instead):\n" + "\n".join(found)
    )


# "`::test_name`" right after a mention of a test file names another test of that file.
MORE_TESTS = re.compile(r"`::(\w+)`")


def test_repository_paths_mentioned_exist():
    missing = []
    for path in shipped_text_files():
        text = _shipped_text(path)
        last: Path | None = None
        mentions = sorted(
            [(m.start(), m.group(1), m.group(2)) for m in REPO_PATH.finditer(text)]
            + [(m.start(), None, m.group(1)) for m in MORE_TESTS.finditer(text)],
            key=lambda item: item[0],
        )
        for _, rel, name in mentions:
            if rel is not None:
                last = ROOT / rel
            if last is None:
                continue
            where = f"{path.relative_to(ROOT)}: {last.relative_to(ROOT)}"
            if not last.is_file():
                missing.append(f"{where} does not exist")
            elif name and not re.search(rf"def {name}\b", last.read_text(encoding="utf-8")):
                missing.append(f"{where} has no {name}")
    assert not missing, "Mentions of repository files that do not exist:\n" + "\n".join(missing)


def test_the_reference_checks_can_fail(tmp_path):
    assert OUTSIDE_REFERENCES.search("see notes.md item 3")
    assert OUTSIDE_REFERENCES.search("the closing note of the issue has it")
    assert OUTSIDE_REFERENCES.search("as in erratum 1 of the\nnotes")
    assert not OUTSIDE_REFERENCES.search("see docs/paper-notes.md, E1")
    match = REPO_PATH.search("in `tests/ucgm_lab/test_sampler.py::test_extrapolation_by_hand`")
    assert match.groups() == ("tests/ucgm_lab/test_sampler.py", "test_extrapolation_by_hand")
    assert REPO_PATH.search("docs/paper-notes.md, E1").group(1) == "docs/paper-notes.md"
    out = {"output_type": "stream", "name": "stdout", "text": ["Test Mode: 500 samples"]}
    assert "test mode" in _output_text(out).lower()


SYMPY_NOTEBOOKS = sorted(NOTEBOOKS.glob("0[1-5]_*.ipynb"))
# The SymPy calls a derivation "in the open" makes in the notebook itself.
SYMPY_STEPS = re.compile(r"\bsp\.(solve|simplify|series|diff|integrate|limit|factor|expand)\(")


def _code_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", SYMPY_NOTEBOOKS, ids=lambda p: p.name)
def test_sympy_notebooks_derive_in_the_open(path):
    """Notebooks 01-05 make the SymPy calls themselves; ucgm_lab.symbolic only confirms.

    Every cell that compares its own derivation with the library's prints
    "ucgm_lab.symbolic agrees: ..."; each such stored output must say True, and the code
    cells must contain the derivation steps (sp.solve, sp.simplify, sp.series, ...).
    """
    sources = _code_sources(path)
    steps = sum(len(SYMPY_STEPS.findall(s)) for s in sources)
    assert steps >= 10, f"{path.name}: only {steps} SymPy derivation calls in its code cells."
    confirmations = [
        line
        for _, out in _outputs(path)
        for line in _output_text(out).splitlines()
        if "ucgm_lab.symbolic agrees:" in line
    ]
    assert len(confirmations) >= 3, (
        f"{path.name}: {len(confirmations)} stored 'ucgm_lab.symbolic agrees' lines; the "
        "notebook should derive first and confirm with the library afterwards."
    )
    disagreeing = [line for line in confirmations if "False" in line]
    assert not disagreeing, f"{path.name}: derivation and library disagree: {disagreeing}"
