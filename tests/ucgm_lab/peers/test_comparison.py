"""The peer-comparison helpers: tiny training runs, solver NFE counts, tables."""

import pytest
import torch

pytest.importorskip("torchcfm")
pytest.importorskip("flow_matching")
pytest.importorskip("torchdiffeq")

from ucgm_lab.evaluation import QualityPoint, format_quality_table  # noqa: E402
from ucgm_lab.peers import (  # noqa: E402
    TrainConfig,
    compare_samplers,
    format_match_table,
    make_metric,
    nfe_to_reach,
    peer_solve,
    train_peer,
)
from ucgm_lab.viz.quality import plot_quality_vs_nfe  # noqa: E402

TINY = TrainConfig(dataset="moons", steps=3, batch_size=32, hidden=16, seed=1)


@pytest.fixture(scope="module", params=["torchcfm", "flow_matching"])
def peer(request):
    return train_peer(request.param, TINY)


def test_training_is_deterministic_and_leaves_global_rng_alone(peer):
    state = torch.get_rng_state()
    again = train_peer(peer.library, TINY)
    assert torch.equal(torch.get_rng_state(), state)
    assert again.losses == peer.losses and len(peer.losses) == TINY.steps
    for a, b in zip(peer.network.parameters(), again.network.parameters(), strict=True):
        assert torch.equal(a, b)
    rebuilt = train_peer(peer.library, TINY, state_dict=peer.state_dict())
    assert rebuilt.losses == []
    x, s = torch.randn(4, 2), torch.rand(4)
    torch.testing.assert_close(rebuilt.velocity(x, s), peer.velocity(x, s))


def test_peer_euler_equals_ucgm_on_native_grid(peer):
    noise = torch.randn(50, 2)
    res = peer_solve(peer, noise, "euler", steps=6)
    out = peer.adapted.sample(noise, steps=6, native_grid=True)
    assert res.nfe == out.nfe == 6
    torch.testing.assert_close(out.sample, res.sample, rtol=1e-5, atol=1e-5)


def test_peer_solver_nfe_counts(peer):
    noise = torch.randn(10, 2)
    assert peer_solve(peer, noise, "midpoint", steps=5).nfe == 10
    assert peer_solve(peer, noise, "dopri5", tolerance=1e-3).nfe > 6
    with pytest.raises(ValueError, match="steps"):
        peer_solve(peer, noise, "euler")


def test_compare_samplers_and_tables(peer):
    noise = torch.randn(40, 2)
    reference = torch.randn(40, 2)
    points = compare_samplers(
        peer, noise, reference, nfes=(2, 3, 4), tolerances=(1e-1,), kappas=(0.0, 0.5), orders=(1, 2)
    )
    samplers = {p.sampler for p in points}
    assert {
        "peer euler",
        "peer midpoint",
        "peer dopri5",
        "UCGM-S k=0 o1",
        "UCGM-S k=0.5 o2",
        "UCGM-S k=0.5 o2-data",
    } <= samplers
    assert sorted(p.nfe for p in points if p.sampler == "UCGM-S k=0 o2") == [3]
    data_form = [p for p in points if p.sampler == "UCGM-S k=0 o2-data"]
    assert [(p.nfe, p.correction, p.order) for p in data_form] == [(3, "data", 2)]
    assert sorted(p.nfe for p in points if p.sampler == "peer midpoint") == [2, 4]
    table = format_quality_table(points, nfes=(2, 3, 4), fill_below=True, digits=4)
    assert "peer midpoint" in table and "UCGM-S k=0.5 o1" in table
    (dopri,) = [p for p in points if p.sampler == "peer dopri5"]
    assert dopri.steps is None and dopri.setting == "tol=0.1" and dopri.family == "peer"
    assert all(p.model == peer.library for p in points)
    text = format_match_table(points, budget=4)
    assert "peer euler @ 4" in text and "UCGM-S k=0 o1" in text

    import matplotlib

    matplotlib.use("Agg")
    ax = plot_quality_vs_nfe(points, title="t")
    assert len(ax.get_lines()) == len(samplers)


def test_nfe_to_reach():
    pts = [
        QualityPoint("a", 4, 4, {"w": 0.5}, model="m", family="peer"),
        QualityPoint("a", 8, 8, {"w": 0.2}, model="m", family="peer"),
        QualityPoint("a", 16, 16, {"w": 0.1}, model="m", family="peer"),
        QualityPoint("b", 4, 4, {"w": 0.3}, model="m"),
    ]
    assert nfe_to_reach(pts, 0.25) == {("m", "a"): 8, ("m", "b"): None}
    table = format_match_table(pts, budget=8, rel_tol=0.5)
    # target: peer a at 8 NFE = 0.2 -> matched within 50% (<= 0.3) by a at 8 and b at 4
    row = [line for line in table.splitlines() if line.startswith("m: a @ 8")][0]
    assert row.split()[-2:] == ["8", "4"]


def test_fast_metric_equals_ucgm_lab_sliced_w2():
    from ucgm_lab.metrics import sliced_wasserstein2

    a = torch.randn(700, 2, dtype=torch.float64)
    b = torch.randn(700, 2, dtype=torch.float64) * 1.3 + 0.2
    for n_proj, seed in ((64, 0), (256, 3)):
        fast = make_metric(n_proj, seed)(a, b)
        assert fast == pytest.approx(
            sliced_wasserstein2(a, b, n_projections=n_proj, seed=seed), rel=1e-9
        )
    # unequal sizes fall back to the library function
    assert make_metric(32)(a[:500], b) == pytest.approx(
        sliced_wasserstein2(a[:500], b, n_projections=32)
    )


def test_quality_table_fills_from_below_for_off_grid_curves():
    pts = [
        QualityPoint(
            "peer dopri5", None, 7, {"w": 0.25}, {"tolerance": 0.1}, model="m", family="peer"
        ),
        QualityPoint("UCGM-S k=0 o1", 4, 4, {"w": 0.5}, model="m"),
        QualityPoint("UCGM-S k=0 o1", 8, 8, {"w": 0.125}, model="m"),
    ]
    table = format_quality_table(pts, nfes=(4, 8), fill_below=True, digits=2)
    assert table.splitlines()[2] == "| m / peer dopri5 |  | 0.25 [7] |"
    assert table.splitlines()[3] == "| m / UCGM-S k=0 o1 | 0.50 | 0.12 |"
    assert (
        format_quality_table(pts, nfes=(4, 8), digits=2).splitlines()[2]
        == "| m / peer dopri5 |  |  |"
    )
