"""The table of benchmarks/recommended_settings.py, on made-up scores (no model is run)."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pytest.importorskip("diffusers")
bench = importlib.import_module("recommended_settings")


def _rows(rec):
    # two NFE, two draws per score
    return {
        "UCGM-S recommended": rec,
        "UCGM-S defaults (Alg. 2, Euler)": [[3.0, 3.0], [2.0, 2.0]],
        "DPM-Solver++ 2M": [[2.0, 2.0], [1.0, 1.0]],
        "DPM-Solver++ 3M": [[2.0, 2.0], [1.0, 1.0]],
        "UniPC": [[1.0, 1.0], [2.0, 2.0]],
    }


def test_ratios_verdicts_and_the_lambda_zero_extras():
    results = {
        "checkerboard-linear-lam0": _rows([[0.5, 0.5], [1.1, 1.3]]),
        "digits-linear-lam0.5": _rows([[0.9, 1.1], [0.8, 0.8]]),
    }
    more = {
        "checkerboard-linear-lam0": {"converged": [1.2, 1.2], "toggled": [[2.0, 2.0], [0.9, 0.9]]},
        "digits-linear-lam0.5": {"converged": None, "toggled": None},
    }
    text = bench.table(results, [4, 8], more, 64)
    lines = text.splitlines()
    # the best peer is UniPC at NFE 4, DPM-Solver++ 2M at NFE 8
    assert "- checkerboard-linear-lam0 (derived): 0.50 [0.50-0.50], 1.20 [1.10-1.30] (MISSED)" in (
        text
    )
    assert "; converged 1.2000 (1.20 of the best peer at NFE 8)" in text
    assert "; corrector toggled: 2.00, 0.90" in text
    assert "- digits-linear-lam0.5 (derived): 1.00 [0.90-1.10], 0.80 [0.80-0.80] (met)" in lines
    toggled_rows = [line for line in lines if bench.TOGGLED in line]
    assert toggled_rows == [
        f"| checkerboard-linear-lam0 | derived | {bench.TOGGLED} | 2.0000 | 0.9000 |"
    ]
    # without extras: no converged or toggled text
    plain = bench.table(results, [4, 8])
    assert "converged" not in plain and bench.TOGGLED not in plain
