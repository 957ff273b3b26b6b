"""The benchmark harness on trivial functions: interleaving, statistics, warnings, README block.

No timed assertions: the ratios are checked with a fake clock that each function advances by a
known amount, so the expected medians and spreads are exact.
"""

import importlib
import sys

import pytest

from tests.scale.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
harness = importlib.import_module("harness")
run_all = importlib.import_module("run_all")
docs_writer = importlib.import_module("docs_writer")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _case(clock, cand_costs, base_cost=1.0, target=None, log=None):
    costs = iter(cand_costs)

    def candidate():
        clock.now += next(costs)
        if log is not None:
            log.append("c")

    def baseline():
        clock.now += base_cost
        if log is not None:
            log.append("b")

    return harness.Case(
        "k", "candidate / baseline", candidate, baseline, target=target, unit="step"
    )


def test_exact_ratio_interleaved_abba():
    clock, log = FakeClock(), []
    case = _case(clock, [2.0] * 100, log=log)
    result = harness.measure(case, rounds=5, min_block_s=1.0, warmup=1, clock=clock)
    assert result.ratio == 2.0 and result.spread == 0.0
    assert result.calls_per_block == 1
    assert result.candidate_median_s == 2.0 and result.baseline_median_s == 1.0
    # warm-up (c, b), calibration (c, b), then rounds alternating which side goes first
    assert "".join(log) == "cb" + "cb" + "cb" + "bc" + "cb" + "bc" + "cb"
    assert result.warnings() == []
    assert "ratio 2.000 +- 0.000" in result.line()


def test_units_per_call_and_calls_per_block():
    clock = FakeClock()
    costs = [0.1] * 1000
    case = harness.Case(
        "k",
        "x",
        lambda: setattr(clock, "now", clock.now + costs.pop()),
        lambda: setattr(clock, "now", clock.now + 0.05),
        units_per_call=4,
    )
    result = harness.measure(case, rounds=5, min_block_s=1.0, warmup=0, clock=clock)
    assert result.calls_per_block == 10
    assert result.candidate_s[0] == pytest.approx(0.1 / 4)
    assert result.ratio == pytest.approx(2.0)


def test_spread_larger_than_effect_warns():
    clock = FakeClock()
    # per-round ratios 0.9, 1.1, 0.9, 1.1, ... around a median of 1.0 (+- 0.1)
    cand = [1.0, 1.0] + [0.9, 1.1] * 10
    case = _case(clock, cand, target=1.05)
    result = harness.measure(case, rounds=6, min_block_s=1.0, warmup=1, clock=clock)
    assert result.ratio == pytest.approx(1.0)
    assert result.spread == pytest.approx(0.1)
    assert result.ratio_range == pytest.approx((0.9, 1.1))
    warnings = result.warnings()
    assert any("larger than the effect" in w for w in warnings)
    assert any("target 1.05 lies inside the spread" in w for w in warnings)
    table = harness.markdown_table([result])
    assert "within the noise of this run" in table and "<= 1.05 (met)" in table


def test_needs_five_rounds():
    clock = FakeClock()
    with pytest.raises(ValueError, match="rounds must be >= 5"):
        harness.measure(_case(clock, [1.0] * 10), rounds=4, clock=clock)


def test_real_clock_on_trivial_functions():
    case = harness.Case("trivial", "sum / sum", lambda: sum(range(100)), lambda: sum(range(100)))
    (result,) = harness.run([case], rounds=5, min_block_s=0.001, echo=False)
    assert len(result.ratios) == 5 and all(r > 0 for r in result.ratios)
    machine = harness.machine_info().finish()
    assert machine.torch_threads >= 1 and machine.load_after is not None
    assert "thread" in machine.describe()


def test_overhead_section_is_replaced_and_nothing_else(tmp_path):
    clock = FakeClock()
    result = harness.measure(
        _case(clock, [3.0] * 50, target=2.0), rounds=5, min_block_s=1.0, clock=clock
    )
    block = run_all.render_block([result], rounds=5)
    assert "Missed targets: k 3.000" in block
    begin, end = docs_writer.markers(run_all.SECTION)
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# title\n\nbefore\n{begin}\nold table\n{end}\nafter\n")
    machine = harness.machine_info().finish()
    run_all.write_docs(docs, block, machine, "small")
    text = docs.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith("\nafter\n")
    assert "old table" not in text and "| candidate / baseline |" in text
    assert "`python benchmarks/run_all.py --size small`" in text and machine.when in text


def test_run_all_cli_measures_saves_and_renders(tmp_path, monkeypatch):
    trivial = [
        harness.Case("a", "sum / sum", lambda: sum(range(50)), lambda: sum(range(50)), target=2.0),
        harness.Case("b", "max / max", lambda: max(range(50)), lambda: max(range(50))),
    ]
    monkeypatch.setattr(run_all, "all_cases", lambda size: trivial)
    saved, readme = tmp_path / "run.json", tmp_path / "benchmarks.md"
    begin, end = docs_writer.markers(run_all.SECTION)
    readme.write_text(f"x\n{begin}\n{end}\ny\n")
    results = run_all.main(
        [
            "--only",
            "a",
            "--rounds",
            "5",
            "--block",
            "0.001",
            "--json",
            str(saved),
            "--docs",
            str(readme),
        ]
    )
    assert [r.case.key for r in results] == ["a"]
    assert "sum / sum" not in readme.read_text()  # a run with --only never rewrites the docs
    again = run_all.main(["--from-json", str(saved), "--docs", str(readme)])
    assert again[0].ratios == results[0].ratios
    text = readme.read_text()
    assert text.startswith("x\n") and text.endswith("\ny\n") and "| sum / sum |" in text
