"""scripts/execute_notebooks.py: full-budget environment, argument checks, the timing table."""

import importlib.util
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
