"""``benchmarks/recommended_settings.py --search``: the fast search on every model, then scored.

With ``--search`` every model is first searched: :func:`ucgm_lab.search_sampler` with
``SearchSpace.fast(lambda)`` started from the recommendation (``consistency_ratio=lambda``),
all budgets in one call, on its own selection and validation noises (``seed=1``;
``--search-samples`` points, 2D reference data of their own, 16 times as many, seed 30000),
timed (wall and CPU time of this process, 1-minute load average before and after); its
settings ("UCGM-S searched") are then scored on the held-out draws beside the recommendation,
the peers, Euler (DPM-Solver++ 1 = DDIM), midpoint (torchdiffeq on the flow ODE,
``benchmarks/model_search.py``), the exact ODE (UniPC at 64 NFE) and fresh data (the metric's
floor); ratios and verdicts in ``benchmarks/settings_table.py`` (target: at most 0.8 of the best
of DPM-Solver++ 2M and UniPC); the section "searched-settings". ``--quick`` is a smoke run of
seconds (one model, few points, no docs).

The models, their loaders and the samplers compared are those of
``benchmarks/recommended_settings.py``, which parses the arguments and calls :func:`main_search`.

Run: ``python benchmarks/recommended_settings.py --search`` (writes the section
"searched-settings" of docs/benchmarks.md; ``--report-only`` reuses the results saved under
``--out``).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import settings_table as st  # noqa: E402
from docs_writer import write_section  # noqa: E402
from model_search import FlowVelocity, data_points, run_search  # noqa: E402
from recommended_settings import (  # noqa: E402
    EULER,
    FLOOR_SETS,
    MIDPOINT,
    ODE_NFE,
    SOLVERS,
    load_model,
    set_of,
)

from ucgm_lab import recommended_settings, sample  # noqa: E402
from ucgm_lab.peers import peer_solve  # noqa: E402
from ucgm_lab.peers.diffusers_solvers import diffusers_sample  # noqa: E402
from ucgm_lab.search import SamplerSettings, SlicedW2  # noqa: E402


def scorer_with_floor(dataset: str, samples: int, num_classes: int | None):
    """(noise shape, labels, metric, the metric's floor at draw d) for one model's scores.

    The floor is real data scored like a sample: 2D, the mean over ``FLOOR_SETS`` sets of
    fresh points (seeds 5000 + FLOOR_SETS d + k; one set's score varies by a factor of two
    between draws); digits, the test split.
    """
    if dataset == "digits":
        from ucgm_lab.metrics.digits import digits_frechet

        frechet = digits_frechet()
        labels = frechet.test_labels
        shape = (labels.shape[0], 1, 8, 8)
        return shape, labels, frechet.distance, lambda d: frechet.floor().mean
    data = data_points(dataset, 8 * samples, 99)
    metric = SlicedW2(256, seed=0)
    labels = None if num_classes is None else torch.arange(samples) % num_classes

    def floor(d: int) -> float:
        seeds = range(5000 + FLOOR_SETS * d, 5000 + FLOOR_SETS * (d + 1))
        return st.mean([metric(data_points(dataset, samples, k), data) for k in seeds])

    return (samples, 2), labels, lambda x: metric(x, data), floor


def measure_searched(
    name: str, args, searched: dict[int, SamplerSettings] | None = None
) -> dict[str, list[list[float]]]:
    """sampler -> per NFE, the score of every held-out noise draw (``searched``: the search's
    settings per budget, scored as "UCGM-S searched")."""
    m = load_model(name)
    model, transport = m.model, m.transport
    shape, labels, metric, floor = scorer_with_floor(m.dataset, args.samples, m.num_classes)
    flow = FlowVelocity(model, transport, labels)
    rows: dict[str, list[list[float]]] = {}
    ode_scores: list[float] = []
    for n in args.nfes:
        scores: dict[str, list[float]] = {}
        settings = {
            st.RECOMMENDED: recommended_settings(
                n, m.consistency_ratio, transport, enhanced_target=m.enhanced_target
            )
        }
        if searched is not None:
            settings[st.SEARCHED] = searched[n]
        for d in range(args.draws):
            noise = torch.randn(shape, generator=torch.Generator().manual_seed(7 + d))
            runs = {
                label: sample(
                    model,
                    noise,
                    transport,
                    y=labels,
                    generator=torch.Generator().manual_seed(1000 + d),
                    **s.as_kwargs(),
                ).sample
                for label, s in settings.items()
            }
            runs["UCGM-S defaults (Alg. 2, Euler)"] = sample(
                model, noise, transport, steps=n, y=labels
            ).sample
            for label, key in {**SOLVERS, **EULER}.items():
                runs[label] = diffusers_sample(model, noise, transport, n, key, y=labels).sample
            if n >= 2:
                runs[MIDPOINT] = peer_solve(flow, noise, "midpoint", steps=n // 2).sample
            if n == max(args.nfes):  # the model's own error: its ODE solved almost exactly
                exact = diffusers_sample(model, noise, transport, ODE_NFE, "unipc", y=labels)
                ode_scores.append(metric(exact.sample))
            for label, x in runs.items():
                scores.setdefault(label, []).append(metric(x))
            scores.setdefault(st.DATA, []).append(floor(d))
        for label, value in scores.items():
            rows.setdefault(label, []).append(value)
    rows[st.ODE] = [ode_scores] * len(args.nfes)
    return rows


def searched_table(results: dict[str, st.Rows], nfes: list[int]) -> str:
    """The markdown table of mean scores, then the ratio lines of every UCGM-S sampler."""
    head = "| model | set | sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(nfes)]
    where = {name: set_of(name) for name in results}
    for name, rows in results.items():
        for label, values in rows.items():
            bold = label in (st.RECOMMENDED, st.SEARCHED)
            cells = " | ".join(
                f"**{st.mean(v):.4f}**" if bold else f"{st.mean(v):.4f}" for v in values
            )
            lines.append(f"| {name} | {where[name]} | {label} | {cells} |")
    for label, what in (
        (st.SEARCHED, "searched (fast search on selection noise, scored on held-out noise)"),
        (st.RECOMMENDED, "recommended (no search)"),
    ):
        if not any(label in rows for rows in results.values()):
            continue
        target = st.TARGETS[label]
        lines += [
            "",
            f"UCGM-S {what} / best of DPM-Solver++ 2M and UniPC (target: at most {target:g}), "
            "per NFE, with the lowest and highest ratio over the noise draws in brackets; "
            f'"within noise": a mean ratio above {target:g} whose draws include one at most '
            f"{target:g}. {st.summary(results, label)}",
            "",
            *st.ratio_lines(results, where, label, nfes),
        ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    root = Path(__file__).resolve().parents[1]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def search_table(records: dict[str, dict], nfes: list[int]) -> str:
    """The searches' times and chosen settings, one row per model."""
    lines = [
        "| model | wall s | CPU s | load (1 min) | settings tried | "
        + " | ".join(f"NFE {n} settings" for n in nfes)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(nfes),
    ]
    for name, r in records.items():
        cut = ""
        if r.get("max_seconds") is not None:
            cut = f" (`max_seconds={r['max_seconds']:g}`" + (
                ", stopped early)" if r["stopped_early"] else ", not reached)"
            )
        elif r["stopped_early"]:
            cut = " (stopped early)"
        cells = " | ".join(f"`{r['settings'][str(n)]}`" for n in nfes)
        lines.append(
            f"| {name}{cut} | {r['wall']:.0f} | {r['cpu']:.0f} | "
            f"{r['load'][0]:.1f}-{r['load'][1]:.1f} | {r['trials']} | {cells} |"
        )
    return "\n".join(lines)


def main_search(args, argv: list[str] | None) -> int:
    """``--search``: search, score and write the section "searched-settings"."""
    results: dict[str, st.Rows] = {}
    records: dict[str, dict] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        stem = f"{name}-{args.samples}-{args.draws}"
        path = args.out / (f"{stem}-searched.json" if args.search else f"{stem}.json")
        if not args.report_only:
            searched, record = None, None
            if args.search:
                searched, record = run_search(load_model(name), args)
                print(name, "search", record, flush=True)
            rows = measure_searched(name, args, searched)
            path.write_text(json.dumps({"rows": rows, "search": record}))
        if path.exists():
            saved = json.loads(path.read_text())
            results[name] = saved["rows"] if "rows" in saved else saved  # older files: rows
            if saved.get("search"):
                records[name] = saved["search"]
            rounded = {k: [round(st.mean(v), 4) for v in vs] for k, vs in results[name].items()}
            print(name, rounded, flush=True)
    text = searched_table(results, args.nfes)
    if records:
        text = search_table(records, args.nfes) + "\n\n" + text
    print(text)
    if args.no_docs:
        return 0
    saved_note = (
        f" With --report-only the figures are those the earlier runs of this script saved under "
        f"{_shown(args.out)} (quality figures and search times as measured then)."
        if args.report_only
        else ""
    )
    command = shlex.join(
        [
            "python",
            "benchmarks/recommended_settings.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    scores = (
        f"2D: sliced W2 to {8 * args.samples} data points ({args.samples} samples, mean of "
        f"{args.draws} noise draws); digits: digits Frechet distance on the test split's "
        "labels. derived: the recommendation's rule was chosen on these; seen: looked at "
        "while choosing; held out: never used."
    )
    if args.search:
        write_section(
            "searched-settings",
            "## The fast search on every model against DPM-Solver++ and UniPC\n\n"
            f"`search_sampler(..., space=SearchSpace.fast(lambda), consistency_ratio=lambda, "
            f"nfe={args.nfes}, validation_streams=2, seed=1)`: 2D searches on "
            f"{args.search_samples} selection points against {16 * args.search_samples} "
            "reference points of their own; digits on the test split's labels. Search times: "
            "this process, one model after the other (wall and CPU; the machine is shared, "
            "compare CPU). Then every sampler is scored on held-out noise draws the search "
            f"never saw (target for the searched settings: at most {st.TARGETS[st.SEARCHED]:g} of the "
            f"best of DPM-Solver++ 2M and UniPC at every NFE). {scores}{saved_note}\n\n" + text,
            command=command.strip(),
        )
    else:
        write_section(
            "recommended-settings",
            "## Recommended sampler settings (no search) against DPM-Solver++ and UniPC\n\n"
            "`ucgm_lab.recommended_settings(nfe, consistency_ratio, transport, "
            f"enhanced_target=zeta > 0)`; {scores}{saved_note}\n\n" + text,
            command=command.strip(),
        )
    return 0
