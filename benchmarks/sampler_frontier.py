"""The NFE-quality frontier: searched UCGM-S against every peer solver, on held-out noise.

For three 2D checkerboard models, the torchcfm and flow_matching models of
``benchmarks/peer_samplers.py`` (trained once and cached, 4000 steps each) and the zoo's
lambda = 0 model (``checkerboard-linear-lam0``), this

1. runs :func:`ucgm_lab.search_sampler` at every NFE budget (selection noise and selection
   reference data of their own), timing it;
2. scores on one *held-out* noise and one held-out reference (never seen by the search):
   the searched settings, UCGM-S with ``sample``'s defaults (``steps = NFE``), UCGM-S with
   :func:`ucgm_lab.recommended_settings` (no search), the solvers users pick for flow models,
   diffusers' DPM-Solver++ 2M / 3M and UniPC in flow mode
   (:func:`ucgm_lab.peers.diffusers_solvers.diffusers_sample`, one evaluation per step), and
   the solvers of torchdiffeq / flow_matching (for the zoo models torchdiffeq on their
   velocity): Euler, midpoint, fixed-step RK4 and dopri5 (at several tolerances);
3. prints a markdown table (sliced W2 by NFE), the NFE each curve needs to come within 2% of
   the peer Euler's 100-NFE score, and for the zoo model the ratio of the searched 8-NFE
   score to the 100-NFE defaults; writes a plotly figure (HTML under ``--out``, PNG into
   ``docs/figures/sampler_frontier.png`` via kaleido) and the tables into the section
   "sampler-frontier" of ``docs/benchmarks.md`` (``benchmarks/docs_writer.py``).

``--models`` may include ``digits`` (the class-conditional ``digits-linear-lam0``, scored by the
digits Frechet distance on the test split's labels; no search: ``--search-models`` lists the
models that are searched).

Run: ``python benchmarks/sampler_frontier.py`` (needs the notebooks extra: torchcfm,
flow_matching, torchdiffeq, kaleido); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_samplers  # noqa: E402  (the cached peer models of benchmarks/peer_samplers.py)
from docs_writer import write_section  # noqa: E402

from toy_data import sample_2d  # noqa: E402
from ucgm_lab import recommended_settings, sample, search_sampler  # noqa: E402
from ucgm_lab.peers import TrainConfig, data_floor, peer_solve  # noqa: E402
from ucgm_lab.peers.diffusers_solvers import DIFFUSERS_SOLVERS, diffusers_sample  # noqa: E402
from ucgm_lab.search import SlicedW2  # noqa: E402
from ucgm_lab.zoo import load as load_zoo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"euler": 1, "midpoint": 2, "rk4": 4}
FINE_NFES = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 50, 64, 80, 100)
"""The peers' fixed-step budgets (a finer grid than the table, for "NFE to reach")."""
TOLERANCES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4)
DIFFUSERS = ("dpm++2m", "dpm++3m", "unipc")
"""The diffusers solvers of the frontier (labels from ``DIFFUSERS_SOLVERS``)."""


class ZooVelocity:
    """A zoo model (linear transport, data at t = 0) as an ODE in s = 1 - t (data at s = 1).

    ``y``: the class ids of a class-conditional model (fixed for the whole solve).
    """

    library = "zoo"

    def __init__(self, zm, y: torch.Tensor | None = None) -> None:
        self.zm, self.y = zm, y

    def velocity(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        t = (1 - s.to(torch.float64)).expand(x.shape[0])
        t_net = self.zm.transport.model_time(t).to(x.dtype)
        if self.y is None:
            return -self.zm.model(x, t_net)
        return -self.zm.model(x, t_net, self.y)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nfes", default="2,4,8,16,32", help="comma-separated budgets")
    parser.add_argument("--samples", type=int, default=10000, help="held-out points per cloud")
    parser.add_argument("--search-samples", type=int, default=4000, help="selection points")
    parser.add_argument(
        "--search-reference-factor",
        type=int,
        default=16,
        help="selection reference = this many times --search-samples data points (1: as large)",
    )
    parser.add_argument(
        "--validation-streams", type=int, default=4, help="validation streams of the search"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="torchcfm,flow_matching,zoo,digits")
    parser.add_argument(
        "--search-models",
        default="torchcfm,flow_matching,zoo",
        help="models that are searched (the others get no 'UCGM-S searched' curve)",
    )
    parser.add_argument("--max-seconds", type=float, default=None, help="per search")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "sampler_frontier")
    parser.add_argument(
        "--png", type=Path, default=ROOT / "docs" / "figures" / "sampler_frontier.png"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    parser.add_argument("--no-figure", action="store_true", help="tables only")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write docs/benchmarks.md's section"
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="tables and figure from the JSON files in --out"
    )
    args = parser.parse_args(argv)
    args.nfes = [int(v) for v in args.nfes.split(",") if v.strip()]
    args.search_models = {v.strip() for v in args.search_models.split(",") if v.strip()}
    if args.quick:
        args.samples, args.search_samples, args.nfes = 1000, 500, [2, 4]
        args.no_docs = True
    return args


def load_models(names: list[str]) -> dict[str, tuple]:
    """name -> (UCGM-S model, transport, peer object with .library and .velocity)."""
    bench = peer_samplers.parse_args([])
    config = TrainConfig(
        dataset="checkerboard",
        steps=bench.train_steps,
        batch_size=bench.batch_size,
        lr=bench.lr,
        hidden=bench.hidden,
        seed=bench.seed,
    )
    models = {}
    for name in names:
        if name == "zoo":
            zm = load_zoo("checkerboard-linear-lam0")
            models[name] = (zm.model, zm.transport, ZooVelocity(zm))
        elif name == "digits":
            zm = load_zoo("digits-linear-lam0")
            models[name] = (zm.model, zm.transport, ZooVelocity(zm))
        else:
            peer = peer_samplers.load_or_train(name, config, bench)
            models[name] = (peer.adapted.model, peer.adapted.transport, peer)
    return models


def diffusers_points(
    model, transport, noise, reference, metric, nfes, y=None
) -> dict[str, list[tuple[int, float]]]:
    """DPM-Solver++ 2M / 3M and UniPC (diffusers, flow mode) at every budget; NFE counted."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for key in DIFFUSERS:
        label = DIFFUSERS_SOLVERS[key].label
        for n in nfes:
            res = diffusers_sample(model, noise, transport, n, key, y=y)
            curves.setdefault(label, []).append((res.nfe, metric(res.sample, reference)))
    return curves


def peer_points(
    peer, noise, reference, metric, nfes, tolerances=TOLERANCES
) -> dict[str, list[tuple[int, float]]]:
    curves: dict[str, list[tuple[int, float]]] = {}
    for method, per in FIXED.items():
        wanted = set(nfes) | {n for n in FINE_NFES if method == "euler" or n <= max(nfes)}
        for steps in sorted({n // per for n in wanted if n // per >= 1}):
            res = peer_solve(peer, noise, method, steps=steps)
            curves.setdefault(f"peer {method}", []).append((res.nfe, metric(res.sample, reference)))
    for tol in tolerances:
        res = peer_solve(peer, noise, "dopri5", tolerance=tol)
        curves.setdefault("peer dopri5", []).append((res.nfe, metric(res.sample, reference)))
    return {k: sorted(v) for k, v in curves.items()}


def digits_data(peer: ZooVelocity) -> tuple[torch.Tensor, None, None]:
    """The held-out noise of the digits model (one image per test label; sets ``peer.y``)."""
    from ucgm_lab.metrics.digits import digits_frechet

    labels = digits_frechet().test_labels
    peer.y = labels
    gen = torch.Generator().manual_seed(7)
    return torch.randn(labels.shape[0], 1, 8, 8, generator=gen), None, None


def digits_metric():
    """The digits Frechet distance as a metric(samples, reference) (the reference unused)."""
    from ucgm_lab.metrics.digits import digits_frechet

    frechet = digits_frechet()
    return lambda samples, _reference: frechet.distance(samples)


def cell(points: list[tuple[int, float]], nfe: int) -> str:
    below = [p for p in points if p[0] <= nfe]
    if not below:
        return "-"
    n, score = max(below)
    return f"{score:.4f}" if n == nfe else f"{score:.4f} [{n}]"


def measure(name, model, transport, peer, data, metric, args, y=None) -> dict:
    """Search (for ``args.search_models``), then score every curve of one model on the held-out noise.

    ``y``: class ids of the held-out samples (class-conditional models; no guidance).
    """
    noise, reference, search_ref = data
    rec: dict = {}
    curves: dict[str, list[tuple[int, float]]] = {}
    if name in args.search_models:
        t0, c0 = time.perf_counter(), time.process_time()
        found = search_sampler(
            model,
            transport,
            search_ref,
            nfe=args.nfes,
            metric=metric,
            num_samples=args.search_samples,
            seed=args.seed + 1,
            max_seconds=args.max_seconds,
            validation_streams=args.validation_streams,
            progress=False,
        )
        rec["search_seconds"] = time.perf_counter() - t0
        rec["search_cpu_seconds"] = time.process_time() - c0
        rec["search_trials"] = found.trials
        rec["stopped_early"] = found.stopped_early
        rec["settings"] = {b.budget: b.settings.describe() for b in found.budgets}
        rec["validation"] = {b.budget: [b.validation_score, b.validation_se] for b in found.budgets}
        rec["kwargs"] = {b.budget: repr(b.settings.as_kwargs()) for b in found.budgets}
        searched = []
        for b in found.budgets:
            fresh = torch.Generator().manual_seed(args.seed + 99)  # not the search's streams
            out = sample(model, noise, transport, generator=fresh, **b.settings.as_kwargs())
            searched.append((out.nfe, metric(out.sample, reference)))
        curves["UCGM-S searched"] = searched
        rec["ratios_8"] = ratio_over_draws(model, transport, peer, found, metric, args)
    recommended, defaults = [], []
    for n in args.nfes:
        fresh = torch.Generator().manual_seed(args.seed + 99)
        settings = recommended_settings(n, 0.0, transport)
        out = sample(model, noise, transport, y=y, generator=fresh, **settings.as_kwargs())
        recommended.append((out.nfe, metric(out.sample, reference)))
    for n in [*args.nfes, 100]:
        out = sample(model, noise, transport, steps=n, y=y)
        defaults.append((out.nfe, metric(out.sample, reference)))
    curves["UCGM-S recommended"] = recommended
    curves["UCGM-S defaults"] = defaults
    curves.update(diffusers_points(model, transport, noise, reference, metric, args.nfes, y))
    tolerances = TOLERANCES if y is None else (1e-2, 1e-3)
    curves.update(peer_points(peer, noise, reference, metric, args.nfes, tolerances))
    rec["curves"] = curves
    return rec


def ratio_over_draws(model, transport, peer, found, metric, args, draws: int = 5) -> dict:
    """Score at 8 NFE / UCGM-S defaults at 100 NFE, on ``draws`` independent held-out noises.

    One held-out draw of N points moves every score by about as much as the good 8-NFE samplers
    differ (sliced W2 of N samples has a spread of its own), and a stochastic setting (rho > 0)
    does not share that spread with the deterministic 100-NFE run; the mean over draws against a
    reference 8 times larger is the figure to compare with the 1.10x target.
    """
    budget = max((b.budget for b in found.budgets if b.budget <= 8), default=None)
    if budget is None:
        return {}
    settings = found.best(budget).as_kwargs()
    big = sample_2d("checkerboard", 8 * args.samples, seed=args.seed + 50_000).points
    out = {
        "searched": [],
        "multistep velocity, even grid": [],
        "peer midpoint": [],
        "peer rk4": [],
    }
    for r in range(draws):
        noise = torch.randn(args.samples, 2, generator=torch.Generator().manual_seed(1000 + r))
        fresh = torch.Generator().manual_seed(2000 + r)
        target = metric(sample(model, noise, transport, steps=100).sample, big)
        got = sample(model, noise, transport, generator=fresh, **settings).sample
        out["searched"].append(metric(got, big) / target)
        plain = sample(model, noise, transport, steps=budget, multistep="velocity").sample
        out["multistep velocity, even grid"].append(metric(plain, big) / target)
        out["peer midpoint"].append(
            metric(peer_solve(peer, noise, "midpoint", steps=4).sample, big) / target
        )
        out["peer rk4"].append(metric(peer_solve(peer, noise, "rk4", steps=2).sample, big) / target)
    return out


def report(name: str, rec: dict, nfes: list[int]) -> str:
    """The markdown table of one model (and notes under it)."""
    curves = {k: [tuple(p) for p in v] for k, v in rec["curves"].items()}
    target = dict(curves["peer euler"])[100]
    reach = {
        k: next((n for n, s in sorted(v) if s <= target * 1.02), None) for k, v in curves.items()
    }
    metric = "digits Frechet distance" if name == "digits" else "sliced W2"
    if "search_seconds" in rec:
        searched = (
            f"search: {rec['search_seconds']:.0f} s wall, {rec['search_cpu_seconds']:.0f} s CPU, "
            f"{rec['search_trials']} settings tried"
            + (", stopped by the time budget" if rec["stopped_early"] else "")
        )
    else:
        searched = "not searched"
    lines = [f"\n### {name} ({metric}; {searched})\n"]
    lines.append(
        "| sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " | NFE to peer Euler@100 |"
    )
    lines.append("|---|" + "---|" * (len(nfes) + 1))
    for k, v in curves.items():
        reached = "-" if reach[k] is None else str(reach[k])
        lines.append(f"| {k} | " + " | ".join(cell(v, n) for n in nfes) + f" | {reached} |")
    default100 = dict(curves["UCGM-S defaults"])[100]
    lines.append(
        f"\npeer Euler at 100 NFE: {target:.4f}; UCGM-S defaults at 100 NFE: {default100:.4f}"
    )
    searched = curves.get("UCGM-S searched", [])
    if any(n <= 8 for n, _ in searched):
        best8 = dict(searched)[max(n for n, _ in searched if n <= 8)]
        lines.append(f"searched UCGM-S at 8 NFE / defaults at 100 NFE: {best8 / default100:.3f}x")
    for label, values in rec.get("ratios_8", {}).items():
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
        lines.append(
            f"  8 NFE / 100 NFE over {len(values)} held-out draws ({label}): "
            f"{mean:.3f}x +- {spread:.3f} (" + ", ".join(f"{v:.2f}" for v in values) + ")"
        )
    for budget, text in rec.get("settings", {}).items():
        val = rec.get("validation", {}).get(budget)
        extra = f" (validation {val[0]:.4f} +- {val[1]:.4f})" if val else ""
        lines.append(f"  NFE {budget}: {text}{extra}")
    text = "\n".join(lines)
    print(text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    metric = SlicedW2(256, seed=0)
    names = [v.strip() for v in args.models.split(",") if v.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    floor_path = args.out / "floor.json"
    if not args.plot_only:
        gen = torch.Generator().manual_seed(args.seed + 7)
        noise = torch.randn(args.samples, 2, generator=gen)  # the held-out noise, shared by all
        reference = sample_2d("checkerboard", args.samples, seed=args.seed + 10_000).points
        search_ref = sample_2d(
            "checkerboard",
            args.search_samples * args.search_reference_factor,
            seed=args.seed + 30_000,
        ).points
        floor = data_floor("checkerboard", args.samples, metric=metric, seed=args.seed + 20_000)
        floor_path.write_text(json.dumps({"floor": floor.mean, "samples": args.samples}))
        for name, (model, transport, peer) in load_models(names).items():
            if name == "digits":
                data, model_metric, y = digits_data(peer), digits_metric(), peer.y
            else:
                data, model_metric, y = (noise, reference, search_ref), metric, None
            rec = measure(name, model, transport, peer, data, model_metric, args, y=y)
            (args.out / f"frontier-{name}.json").write_text(json.dumps(rec, indent=1))
    record = {"floor": json.loads(floor_path.read_text())["floor"], "models": {}}
    for name in names:
        path = args.out / f"frontier-{name}.json"
        if path.exists():
            record["models"][name] = json.loads(path.read_text())
    head = (
        f"2D models: sliced W2 to held-out checkerboard data, {args.samples} points (data floor "
        f"{record['floor']:.4f}); digits: the digits Frechet distance on the test split's labels. "
        "Every sampler starts from the same held-out noise; NFE counted by calls of the network "
        "(a number in brackets: the largest NFE at most the column's that the solver has)."
    )
    print(head)
    tables = [report(name, rec, args.nfes) for name, rec in record["models"].items()]
    if not args.no_docs:
        command = shlex.join(["python", "benchmarks/sampler_frontier.py", *(argv or sys.argv[1:])])
        write_section(
            "sampler-frontier",
            "## The NFE-quality frontier: UCGM-S against the solvers users pick\n\n"
            + head
            + "\n"
            + "\n".join(tables)
            + "\n\n![frontier](figures/sampler_frontier.png)",
            command=command.strip(),
        )
    if args.no_figure:
        return 0
    fig = frontier_figure(record, args.nfes)
    fig.write_html(args.out / "frontier.html")
    if not args.quick:
        import plotly.io as pio

        args.png.parent.mkdir(parents=True, exist_ok=True)
        pio.write_image(fig, args.png, width=1200, height=420, scale=1)
        print(f"\nfigure: {args.png} (and {args.out / 'frontier.html'})")
    return 0


def frontier_figure(record: dict, nfes: list[int]):
    """One log-log panel per model: sliced W2 against NFE for every curve, data floor dotted."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(record["models"])
    titles = [f"{n} (digits Frechet)" if n == "digits" else n for n in names]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=titles)
    style = {
        "UCGM-S searched": ("#d62728", "solid", "circle"),
        "UCGM-S recommended": ("#ff7f0e", "solid", "star"),
        "UCGM-S defaults": ("#ff9896", "dash", "circle-open"),
        "DPM-Solver++ 2M": ("#17becf", "dashdot", "x"),
        "DPM-Solver++ 3M": ("#8c564b", "dashdot", "cross"),
        "UniPC": ("#e377c2", "dashdot", "hexagon"),
        "peer euler": ("#222222", "dot", "square"),
        "peer midpoint": ("#1f77b4", "dot", "square"),
        "peer rk4": ("#2ca02c", "dot", "diamond"),
        "peer dopri5": ("#9467bd", "dot", "triangle-up"),
    }
    for col, name in enumerate(names, start=1):
        for label, pts in record["models"][name]["curves"].items():
            pts = [p for p in sorted(pts) if p[0] <= max(nfes) * 1.6 or label == "peer euler"]
            color, dash, symbol = style[label]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line={"color": color, "dash": dash},
                    marker={"symbol": symbol},
                ),
                row=1,
                col=col,
            )
        if name != "digits":
            fig.add_hline(y=record["floor"], line_dash="dot", line_color="grey", row=1, col=col)
        fig.update_xaxes(type="log", title_text="NFE", row=1, col=col)
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="sliced W2 to held-out data", row=1, col=1)
    fig.update_layout(
        template="plotly_white", title="NFE-quality frontier (held-out noise; grey: data floor)"
    )
    return fig


if __name__ == "__main__":
    sys.exit(main())
