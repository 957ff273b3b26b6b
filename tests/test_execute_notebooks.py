"""scripts/execute_notebooks.py: full-budget environment, argument checks, the timing table."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "execute_notebooks", ROOT / "scripts" / "execute_notebooks.py"
)
execute_notebooks = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = execute_notebooks  # dataclasses look the module up
spec.loader.exec_module(execute_notebooks)


def test_full_budget_env_drops_test_mode_and_puts_the_checkout_first(monkeypatch):
    monkeypatch.setenv("UCGM_LAB_TEST_MODE", "1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = execute_notebooks.full_budget_env(threads=1)
    assert "UCGM_LAB_TEST_MODE" not in env
    assert env["PYTHONPATH"].split(":")[0] == str(ROOT) and env["OMP_NUM_THREADS"] == "1"


def test_default_is_every_notebook_and_bad_paths_are_refused(tmp_path, capsys):
    args = execute_notebooks.parse_args([])
    assert args.notebooks == sorted((ROOT / "notebooks").glob("*.ipynb")) and args.notebooks
    (tmp_path / "a.txt").write_text("x")
    for bad in ([str(tmp_path / "a.txt")], [str(tmp_path / "missing.ipynb")]):
        with pytest.raises(SystemExit):
            execute_notebooks.parse_args(bad)
        assert "is not a notebook file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        execute_notebooks.parse_args(["--timeout", "0"])


def test_table_lists_times_and_failures():
    runs = [
        execute_notebooks.Run(Path("somewhere/20_x.ipynb"), 87.6, True, cpu_seconds=80.2),
        execute_notebooks.Run(Path("somewhere/30_y.ipynb"), 3.2, False, "CellExecutionError", 2.0),
    ]
    table = execute_notebooks.format_table(runs)
    assert "| `20_x.ipynb` | 88 s | 80 s | ok |" in table
    assert "| `30_y.ipynb` | 3 s | 2 s | FAILED: CellExecutionError |" in table


def _readme(rows: str) -> str:
    return (
        f"# Notebooks\n\nintro\n\n{execute_notebooks.TABLE_START}\n{rows}"
        f"{execute_notebooks.TABLE_END}\n\n## After\n"
    )


def test_times_table_rows_are_replaced_kept_and_dropped():
    old = (
        f"{execute_notebooks.TABLE_HEADER}\n"
        "| `10_a.ipynb` | 9 s | 10 s | 0.1, 0.2 | 1 | 2026-01-01, Old CPU, 2 cores |\n"
        "| `11_b.ipynb` | 5 s | 6 s | 0.1, 0.2 | 1 | 2026-01-01, Old CPU, 2 cores |\n"
        "| `99_gone.ipynb` | 5 s | 6 s | 0.1, 0.2 | 1 | 2026-01-01, Old CPU, 2 cores |\n"
    )
    runs = [
        execute_notebooks.Run(Path("x/10_a.ipynb"), 87.6, True, cpu_seconds=80.2, load=(1.0, 2.5)),
        execute_notebooks.Run(Path("x/11_b.ipynb"), 3.2, False, "CellExecutionError", 2.0),
    ]
    text = execute_notebooks.update_times_table(
        _readme(old),
        runs,
        ["10_a.ipynb", "11_b.ipynb", "12_new.ipynb"],
        1,
        "New CPU, 2 cores",
        execute_notebooks.datetime.date(2026, 12, 7),
    )
    assert "| `10_a.ipynb` | 80 s | 88 s | 1.0, 2.5 | 1 | 2026-12-07, New CPU, 2 cores |" in text
    assert "| `11_b.ipynb` | 5 s | 6 s | 0.1, 0.2 | 1 | 2026-01-01, Old CPU, 2 cores |" in text
    assert "99_gone" not in text and "Old CPU" in text
    assert f"| `12_new.ipynb` | | | | | {execute_notebooks.NOT_MEASURED} |" in text
    assert text.startswith("# Notebooks\n\nintro\n\n") and text.endswith("\n\n## After\n")
    assert text.index("10_a") < text.index("11_b") < text.index("12_new")
    # idempotent: the same update twice gives the same text
    again = execute_notebooks.update_times_table(
        text,
        runs,
        ["10_a.ipynb", "11_b.ipynb", "12_new.ipynb"],
        1,
        "New CPU, 2 cores",
        execute_notebooks.datetime.date(2026, 12, 7),
    )
    assert again == text


def test_times_table_needs_its_markers():
    with pytest.raises(ValueError, match="markers are missing"):
        execute_notebooks.update_times_table("# no table\n", [], [], None, "", None)


def test_the_notebooks_readme_has_the_generated_table_and_no_hand_typed_times():
    text = execute_notebooks.TABLE_FILE.read_text(encoding="utf-8")
    start = text.index(execute_notebooks.TABLE_START)
    end = text.index(execute_notebooks.TABLE_END)
    assert execute_notebooks.TABLE_HEADER in text[start:end]
    outside = text[:start] + text[end:]
    assert not re.search(r"\b\d+ s\b|\(load\)|previous", outside), (
        "notebooks/README.md has run times outside the table that scripts/execute_notebooks.py "
        "writes; remove them (the script keeps the table current)."
    )
    names = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    rows = re.findall(r"^\| `([^`]+\.ipynb)`", text[start:end], flags=re.M)
    assert rows == names


def test_cpu_model_names_the_cores():
    assert execute_notebooks.cpu_model().endswith(" cores")


NOTEBOOK_CPU_BUDGET_S = 180
"""The notebooks' quality bar: a full-budget run in under about 3 minutes on a 2-core CPU."""


def test_every_measured_notebook_runs_within_the_budget():
    # a check of the stored measurements (written by the script), not a timed test: a notebook
    # whose full-budget run took longer must be cut down before its outputs are stored
    text = execute_notebooks.TABLE_FILE.read_text(encoding="utf-8")
    table = text[text.index(execute_notebooks.TABLE_START) : text.index(execute_notebooks.TABLE_END)]
    rows = re.findall(r"^\| `([^`]+\.ipynb)` \| (\d+) s \| \d+ s \|", table, flags=re.M)
    assert rows, "no measured row in the run-time table of notebooks/README.md"
    over = {name: int(cpu) for name, cpu in rows if int(cpu) > NOTEBOOK_CPU_BUDGET_S}
    assert not over, (
        f"notebooks over the {NOTEBOOK_CPU_BUDGET_S} s CPU budget at full budget (CPU seconds, "
        f"notebooks/README.md): {over}; cut their training or sweeps and re-execute them with "
        "scripts/execute_notebooks.py."
    )
