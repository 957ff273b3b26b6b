"""benchmarks/sampler_limits.py: ratios and verdicts on made-up scores, and a quick real run."""

import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pytest.importorskip("diffusers")
bench = importlib.import_module("sampler_limits")
st = importlib.import_module("settings_table")


def _rows(dpm, uni, rec, ode64, ode128, data):
    """One NFE's rows from per-draw scores (two draws)."""
    values = (dpm, uni, rec, ode64, ode128, data)
    return {label: [list(v)] for label, v in zip(bench.COLUMNS, values, strict=True)}


def test_ratios_divide_by_the_better_peer_of_each_cell():
    # cell a: UniPC is the better peer (mean 2 against 4); cell b: DPM-Solver++ 2M (1 against 3)
    a = _rows((4.0, 4.0), (1.0, 3.0), (2.0, 2.0), (1.8, 1.8), (1.8, 1.8), (1.0, 1.0))
    b = _rows((1.0, 1.0), (3.0, 3.0), (0.9, 0.9), (0.85, 0.85), (0.7, 0.7), (1.1, 0.9))
    ra, rb = bench.cell_ratios(a), bench.cell_ratios(b)
    assert ra["UniPC"] == st.Ratio(1.0, 1.0, 1.0)
    assert ra["DPM-Solver++ 2M"].mean == pytest.approx(2.0)
    assert (ra[st.RECOMMENDED].mean, ra[st.RECOMMENDED].low, ra[st.RECOMMENDED].high) == (
        pytest.approx(1.0),
        pytest.approx(2 / 3),
        pytest.approx(2.0),
    )
    assert rb["DPM-Solver++ 2M"].mean == 1.0 and rb["UniPC"].mean == pytest.approx(3.0)
    assert rb[st.RECOMMENDED].mean == pytest.approx(0.9)
    # a: exact ODE 0.9 (above 0.8 by its mean, draws 1.8 and 0.6; not above 1), fresh data 0.5
    assert bench.verdict(ra, 0.8) == "exact ODE (mean only) above the target"
    assert bench.verdict(ra, 1.0) == "reachable in principle"
    # b: the 128 NFE run at 0.7 keeps the exact ODE under 0.8; fresh data at 1.0 (not above 1)
    assert bench.verdict(rb, 0.8) == "fresh data above the target"
    assert bench.verdict(rb, 1.0) == "reachable in principle"
    c = _rows((1.0, 1.0), (2.0, 2.0), (1.0, 1.0), (1.2, 1.2), (1.1, 1.1), (1.3, 1.3))
    assert bench.verdict(bench.cell_ratios(c), 1.0) == "exact ODE and fresh data above the target"
    lines = bench.table([("m", "8", "4000 x 2", a), ("m", "16", "4000 x 2", b)]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == 13
    assert lines[2].startswith("| m | 8 | 4000 x 2 | UniPC | 4 (2.00 [1.33-4.00]) | 2 (1.00 ")
    assert lines[3].startswith("| m | 16 | 4000 x 2 | 2M | 1 (1.00 [1.00-1.00]) | 3 (3.00 ")
    cells = [("m", "8", "4000 x 2", a), ("m", "16", "4000 x 2", b), ("m", "8", "100 x 2", c)]
    assert bench.summary(cells) == [
        "- target 0.8 (search), 4000 x 2: exact ODE (mean only) above the target: 1 of 2, "
        "fresh data above the target: 1 of 2",
        "- target 0.8 (search), 100 x 2: exact ODE and fresh data above the target: 1 of 1",
        "- target 1 (recommendation), 4000 x 2: reachable in principle: 2 of 2",
        "- target 1 (recommendation), 100 x 2: exact ODE and fresh data above the target: 1 of 1",
    ]


def test_cells_and_bad_arguments_are_parsed_or_refused(capsys):
    args = bench.parse_args(["--cells", "a:8,16;b:4", "--samples", "100", "--draws", "2"])
    assert args.cells == [("a", (8, 16)), ("b", (4,))] and args.samples == [100]
    for bad in (["--cells", "a"], ["--cells", "a:0"], ["--samples", "1"], ["--draws", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
        assert "error:" in capsys.readouterr().err


def test_the_quick_run_scores_every_column_against_the_better_peer(tmp_path, capsys):
    pytest.importorskip("ot")
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["cpu"] > 0 and len(saved["load"]) == 2
    machine = bench.spanned([saved["machine"]])
    assert machine.torch_threads == 1 and machine.load_after is not None
    (rows,) = saved["rows"].values()  # NFE 8
    assert set(rows) == set(bench.COLUMNS)
    assert all(len(v) == 1 and len(v[0]) == 1 and v[0][0] > 0 for v in rows.values())
    best = min(st.PEERS, key=lambda p: rows[p][0][0])
    other = next(p for p in st.PEERS if p != best)
    ratio = bench.cell_ratios(rows)
    assert ratio[best].mean == 1.0 and ratio[other].mean >= 1.0
    for label in bench.COLUMNS:  # recomputed here: the score over the better peer's
        assert ratio[label].mean == pytest.approx(rows[label][0][0] / rows[best][0][0])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| moons"))
    assert f"| {bench.SHORT[best]} |" in line and line.count("(1.00 [1.00-1.00])") >= 1
