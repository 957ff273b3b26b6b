"""The sampler-settings benchmarks' logic: ratios to the best peer, targets, verdicts
(benchmarks/settings_table.py), the flow ODE of any transport (benchmarks/model_search.py)
and a smoke run of ``recommended_settings.py --search --quick``."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import torch

from tests.scale.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
table = importlib.import_module("settings_table")

NFES = [4, 8, 16]


def _rows(own, dpm, uni, label=table.SEARCHED):
    return {label: own, "DPM-Solver++ 2M": dpm, "UniPC": uni}


def test_the_ratio_divides_by_the_better_peer_and_brackets_the_draws():
    # NFE 4: UniPC is better by its mean (0.5 < 0.6); NFE 8: DPM-Solver++ 2M (by its mean,
    # although UniPC wins the second draw)
    rows = _rows(
        own=[[0.2, 0.4], [0.3, 0.3]],
        dpm=[[0.6, 0.6], [0.3, 0.5]],
        uni=[[0.4, 0.6], [0.6, 0.4]],
    )
    r4, r8 = table.ratios(rows, table.SEARCHED)
    assert r4.mean == pytest.approx(0.3 / 0.5)
    assert (r4.low, r4.high) == pytest.approx((0.2 / 0.4, 0.4 / 0.6))
    assert r8.mean == pytest.approx(0.3 / 0.4)
    assert (r8.low, r8.high) == pytest.approx((0.3 / 0.5, 0.3 / 0.3))


def test_verdicts_against_each_target():
    r = table.Ratio
    assert table.verdict([r(0.8, 0.7, 0.9)] * 3, 0.8) == "met"
    assert table.verdict([r(0.7, 0.6, 0.8), r(0.81, 0.75, 0.9)], 0.8) == "within noise"
    assert table.verdict([r(0.7, 0.6, 0.8), r(0.95, 0.81, 1.1)], 0.8) == "MISSED"
    # the same ratios meet the recommendation's target of 1
    assert table.verdict([r(0.7, 0.6, 0.8), r(0.95, 0.81, 1.1)], 1.0) == "met"
    assert table.missed_nfes(
        [r(0.5, 0.5, 0.5), r(0.81, 0.8, 0.82), r(0.9, 0.9, 0.9)], NFES, 0.8
    ) == [8, 16]
    assert table.TARGETS == {table.RECOMMENDED: 1.0, table.SEARCHED: 0.8}


def test_ratio_lines_name_the_missed_budgets_and_the_summary_counts_models():
    good = _rows([[0.1], [0.1], [0.1]], [[0.2], [0.2], [0.2]], [[0.3], [0.3], [0.3]])
    at_floor = _rows([[0.1], [0.19], [0.2]], [[0.2], [0.2], [0.2]], [[0.3], [0.3], [0.3]])
    at_floor[table.DATA] = [[0.18], [0.15], [0.15]]  # real data: 0.9, then 0.75 of the peer
    at_floor[table.ODE] = [[0.19], [0.19], [0.19]]  # the model's own ODE: 0.95 of the peer
    results = {
        "a": good,
        "b": at_floor,
        "c": {k: v for k, v in good.items() if k != table.SEARCHED},
    }
    where = {"a": "derived", "b": "held out", "c": "seen"}
    lines = table.ratio_lines(results, where, table.SEARCHED, NFES)
    assert lines == [
        "- a (derived): 0.50 [0.50-0.50], 0.50 [0.50-0.50], 0.50 [0.50-0.50] (met)",
        "- b (held out): 0.50 [0.50-0.50], 0.95 [0.95-0.95], 1.00 [1.00-1.00] "
        "(MISSED, above 0.8 at NFE 8, 16; the exact ODE above 0.8 at NFE 8, 16); "
        "exact ODE: 0.95, 0.95, 0.95; fresh data: 0.90, 0.75, 0.75",
    ]
    assert "on 1 of 2 models (0 more" in table.summary(results, table.SEARCHED)


def test_bad_rows_are_refused_with_what_is_missing():
    with pytest.raises(KeyError, match="UniPC"):
        table.ratios({table.SEARCHED: [[1.0]], "DPM-Solver++ 2M": [[1.0]]}, table.SEARCHED)
    with pytest.raises(ValueError, match="2 draws"):
        table.ratios(_rows([[1.0, 1.0]], [[1.0]], [[1.0]]), table.SEARCHED)


@pytest.mark.parametrize("transport", ["linear", "trigflow"])
def test_the_flow_ode_of_any_transport_carries_noise_to_the_data(transport):
    """A model whose output is the exact target of one data point x0 (so x^ = x0 at every
    t): the flow ODE is a straight line to x0, which midpoint integrates exactly."""
    pytest.importorskip("torchdiffeq")
    model_search = importlib.import_module("model_search")
    from ucgm_lab.peers import peer_solve
    from ucgm_lab.transports import get_transport

    tr = get_transport(transport)
    x0 = torch.tensor([[0.7, -1.3]], dtype=torch.float64)

    def exact(x_t, t, y=None):
        c = tr.coefficients(t.to(torch.float64)[:, None])
        z = (x_t - c.gamma * x0) / c.alpha
        return c.alpha_hat * z + c.gamma_hat * x0

    if tr.model_time(torch.tensor(0.5, dtype=torch.float64)) != 0.5:
        pytest.skip("the test model takes the transport's own time")
    noise = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flow = model_search.FlowVelocity(exact, transport)
    out = peer_solve(flow, noise, "midpoint", steps=3)
    assert out.nfe == 6
    torch.testing.assert_close(out.sample, x0.expand(5, 2), rtol=0, atol=1e-9)


def test_the_quick_search_run_writes_every_sampler(tmp_path):
    for lib in ("diffusers", "torchdiffeq", "ot"):
        pytest.importorskip(lib)
    bench = importlib.import_module("recommended_settings")
    assert bench.main(["--quick", "--search", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*-searched.json")
    saved = json.loads(path.read_text())
    rows, record = saved["rows"], saved["search"]
    assert {table.SEARCHED, table.RECOMMENDED, table.DATA, *table.PEERS, bench.MIDPOINT} <= set(
        rows
    )
    assert all(len(v) == 1 and len(v[0]) == 1 for v in rows.values())  # NFE 4, one draw
    assert set(record["settings"]) == {"4"} and record["cpu"] > 0 and record["trials"] > 0


def test_the_floor_note_names_only_missed_budgets_that_the_floors_explain():
    rows = _rows([[0.9], [0.9]], [[1.0], [1.0]], [[2.0], [2.0]])
    rows[table.ODE] = [[0.7], [0.95]]
    rows[table.DATA] = [[0.85], [0.85]]
    assert table.floor_note(rows, [8, 16], [8, 16], 0.8) == (
        "; the exact ODE above 0.8 at NFE 16; fresh data above 0.8 at NFE 8, 16"
    )
    assert table.floor_note(rows, [8, 16], [], 0.8) == ""
    del rows[table.ODE], rows[table.DATA]
    assert table.floor_note(rows, [8, 16], [8, 16], 0.8) == ""
