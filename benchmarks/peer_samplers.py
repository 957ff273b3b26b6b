"""UCGM-S as a plug-and-play sampler, measured against the peers' own solvers.

Loads from the zoo (``python -m ucgm_lab.zoo build-peers``; other budgets: trains, or loads
from a cache) one small 2D velocity model with torchcfm and one with facebookresearch's
flow_matching, samples each with the peer solvers (Euler, midpoint,
dopri5: flow_matching's ODESolver, torchdiffeq for torchcfm) and with UCGM-S through
``ucgm_lab.adapters`` (kappa and order sweeps), scores every run by sliced W2 against
held-out data, and prints

1. the score of every sampler at every NFE, with the data floor;
2. the NFE each sampler needs to match each peer solver's quality at 100 NFE.

All samplers start from the same noise and are scored against the same reference points
with the same projection directions, so differences between rows are not sampling noise of
the metric. Needs the notebooks extra (torchcfm, flow_matching, torchdiffeq).

Run: ``python benchmarks/peer_samplers.py`` (defaults: under 10 minutes on 2 CPU cores);
``--help`` lists the budget options, ``--quick`` is a one-minute smoke run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from toy_data import sample_2d
from ucgm_lab.evaluation import QualityPoint, format_quality_table
from ucgm_lab.peers import (
    DEFAULT_NFES,
    DEFAULT_TOLERANCES,
    PEER_LIBRARIES,
    UCGM_SCHEDULES,
    PeerModel,
    TrainConfig,
    compare_samplers,
    data_floor,
    format_match_table,
    make_metric,
    nfe_to_reach,
    peer_targets,
    train_peer,
    ucgm_schedule,
)
from ucgm_lab.training.checkpoint import CheckpointError, load_weights, save_weights
from ucgm_lab.zoo.peers import PEER_ZOO_CONFIG, available_peers, load_peer

BENCH_NFES = tuple(n for n in DEFAULT_NFES if n != 80)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="checkerboard", help="toy_data 2D data set")
    parser.add_argument("--libraries", default=",".join(PEER_LIBRARIES), help="peer libraries")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=10000, help="points per sample cloud")
    parser.add_argument("--projections", type=int, default=256, help="sliced W2 directions")
    parser.add_argument("--nfes", type=_ints, default=BENCH_NFES, help="comma-separated")
    parser.add_argument("--tolerances", type=_floats, default=DEFAULT_TOLERANCES, help="dopri5")
    parser.add_argument("--kappas", type=_floats, default=(0.0, 0.25, 0.5))
    parser.add_argument("--orders", type=_ints, default=(1, 2))
    parser.add_argument(
        "--corrections",
        type=lambda text: tuple(v.strip() for v in text.split(",") if v.strip()),
        default=("noise", "data"),
        help="order-2 correction forms ('noise': the paper's, 'data')",
    )
    parser.add_argument(
        "--schedule", default="open", choices=UCGM_SCHEDULES, help="UCGM-S grid (ucgm_schedule)"
    )
    parser.add_argument("--budget", type=int, default=100, help="peer NFE that sets the target")
    parser.add_argument("--match", type=float, default=0.02, help="relative slack of a match")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "ucgm-lab"
        / "peer_samplers",
    )
    parser.add_argument("--no-cache", action="store_true", help="always train (no zoo, no cache)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_steps, args.samples, args.projections = 300, 1000, 64
        args.nfes, args.tolerances = (2, 4, 8, 16, 32, 100), (1e-2, 1e-4)
    return args


def load_or_train(library: str, config: TrainConfig, args: argparse.Namespace) -> PeerModel:
    if not args.no_cache and config == PEER_ZOO_CONFIG and library in available_peers():
        zp = load_peer(library)
        print(f"  {library}: loaded from the zoo ({zp.name})")
        return zp.peer
    key = hashlib.sha1(json.dumps([library, asdict(config)], sort_keys=True).encode()).hexdigest()
    path = args.cache_dir / f"{library}-{key[:12]}.safetensors"
    state = None if args.no_cache else read_cache(path)
    if state is not None:
        peer = train_peer(library, config, state_dict=state)
        print(f"  {library}: loaded cached weights ({path.name})")
        return peer
    peer = train_peer(library, config)
    tail = peer.losses[-200:]
    print(
        f"  {library}: trained {config.steps} steps in {peer.seconds:.1f} s "
        f"(final loss {sum(tail) / len(tail):.3f})"
    )
    if not args.no_cache:
        write_cache(path, peer.state_dict(), library)
    return peer


def read_cache(path: Path) -> dict[str, torch.Tensor] | None:
    """The cached weights, or None when there are none or the file is damaged (then removed).

    The cache is a safetensors file with a digest of its content (``save_weights``), so a file
    cut short by a kill or a full disk is recognised, deleted and retrained, instead of failing
    every later run.
    """
    if not path.exists():
        return None
    try:
        tensors, _ = load_weights(path)
    except CheckpointError as exc:
        print(f"  the cache file {path} is damaged ({exc}); deleting it and training again")
        path.unlink(missing_ok=True)
        return None
    return tensors


def write_cache(path: Path, state: dict[str, torch.Tensor], library: str) -> None:
    """Write the cache atomically (temporary file, fsync, rename): never a half-written file."""
    save_weights(path, state, {"library": library, "what": "benchmarks/peer_samplers.py cache"})


def headline(points: list[QualityPoint], budget: int, rel_tol: float) -> list[str]:
    """One line per model: the best UCGM-S setting against the peer's Euler at ``budget`` NFE."""
    lines = []
    for model in dict.fromkeys(p.model for p in points):
        pts = [p for p in points if p.model == model]
        target = peer_targets(pts, model, budget).get("peer euler")
        if target is None:
            continue
        reach = nfe_to_reach(pts, target.score * (1 + rel_tol))
        ucgm = {s: n for (_, s), n in reach.items() if s.startswith("UCGM") and n is not None}
        peers = {s: n for (_, s), n in reach.items() if s.startswith("peer")}
        if not ucgm:
            lines.append(f"{model}: no UCGM-S setting matched peer euler @ {target.nfe} NFE.")
            continue
        best = min(ucgm, key=ucgm.get)
        others = ", ".join(
            f"{s.removeprefix('peer ')} {'-' if n is None else n}" for s, n in peers.items()
        )
        lines.append(
            f"{model}: {best} matches peer euler @ {target.nfe} NFE (score {target.score:.4f}) "
            f"at {ucgm[best]} NFE ({target.nfe / ucgm[best]:.1f}x fewer); peers need: {others}."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    libraries = [v.strip() for v in args.libraries.split(",") if v.strip()]
    config = TrainConfig(
        dataset=args.dataset,
        steps=args.train_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        hidden=args.hidden,
        seed=args.seed,
    )
    metric = make_metric(args.projections, seed=0)
    print(f"UCGM-S vs peer solvers on '{args.dataset}' ({args.samples} points per cloud)")
    print(
        f"metric: sliced W2 to held-out data ({args.projections} fixed directions); "
        f"UCGM-S schedule '{args.schedule}', kappa {args.kappas}, order {args.orders} "
        f"(order-2 corrections {args.corrections})"
    )
    print("models:")
    peers = [load_or_train(lib, config, args) for lib in libraries]

    gen = torch.Generator().manual_seed(args.seed + 7)
    noise = torch.randn(args.samples, 2, generator=gen)
    reference = sample_2d(args.dataset, args.samples, seed=args.seed + 10_000).points
    floor = data_floor(args.dataset, args.samples, metric=metric, seed=args.seed + 20_000)
    print(f"data floor (two independent data samples): {floor.mean:.4f} +- {floor.std:.4f}")

    points = []
    for peer in peers:
        t0 = time.perf_counter()
        pts = compare_samplers(
            peer,
            noise,
            reference,
            nfes=args.nfes,
            tolerances=args.tolerances,
            kappas=args.kappas,
            orders=args.orders,
            corrections=args.corrections,
            metric=metric,
            schedule=ucgm_schedule(args.schedule),
        )
        points += pts
        took = time.perf_counter() - t0
        print(f"\n== {peer.library}: score (lower is better) by NFE ({took:.0f} s)")
        print("   [n] = the run's own NFE where it differs from the column (dopri5, order 2);")
        print("   o2 = the paper's order-2 correction (averages z^), o2-data = correction='data'")
        print(format_quality_table(pts, nfes=args.nfes, fill_below=True, digits=4))

    print(
        f"\n== NFE needed to match each peer solver's quality at {args.budget} NFE "
        f"(score <= target x {1 + args.match:g}; '-' = not within the sweep)"
    )
    print(format_match_table(points, budget=args.budget, rel_tol=args.match))
    print()
    for line in headline(points, args.budget, args.match):
        print(line)
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
