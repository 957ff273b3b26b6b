"""Command line of the zoo: ``python -m ucgm_lab.zoo {list,build,build-peers,search-settings}``."""

from __future__ import annotations

import argparse
import sys

from . import ALL_NAMES, CLASSIFIER_NAME, ZOO_DIR, ZOO_SPECS, available, build, classifier_available
from .build_cli import check_build_arguments


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m ucgm_lab.zoo", description="The pre-trained zoo: 2D and digits models."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the zoo models and whether their checkpoint exists")
    b = sub.add_parser(
        "build", help="train and save zoo models and the digits classifier (CPU, seeded)"
    )
    b.add_argument(
        "--only", nargs="*", help=f"names to build (default: all, with {CLASSIFIER_NAME})"
    )
    b.add_argument(
        "--out", default=None, help="output folder (default: each model's folder in the package)"
    )
    b.add_argument("--steps-scale", type=float, default=1.0, help="multiply every training budget")
    b.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p = sub.add_parser(
        "build-peers", help="train and save the torchcfm and flow_matching models of notebook 20"
    )
    p.add_argument("--only", nargs="*", help="libraries to build (default: all)")
    p.add_argument("--out", default=str(ZOO_DIR), help="output folder (default: the package's zoo)")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply the training budget")
    s = sub.add_parser(
        "search-settings",
        help="search the best sampler settings per NFE budget into ucgm_lab/zoo/sampler_settings.json",
    )
    s.add_argument(
        "--only",
        nargs="*",
        help="zoo names (default: every 2D model, class-conditional ones with guidance searched)",
    )
    s.add_argument("--nfe", type=int, nargs="+", default=[2, 4, 8, 16, 32], help="NFE budgets")
    s.add_argument("--samples", type=int, default=2000, help="points per candidate run")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None, help="settings file (default: the package's)")
    args = parser.parse_args(argv)
    if args.command == "list":
        from .peers import PEER_LIBRARIES, available_peers, peer_zoo_name

        have = set(available())
        if classifier_available():
            have.add(CLASSIFIER_NAME)
        rows = [(s.name, s.description) for s in ZOO_SPECS]
        rows.append((CLASSIFIER_NAME, "digits classifier behind the digits metric"))
        for name, description in rows:
            mark = "built  " if name in have else "missing"
            print(f"{mark}  {name:32s} {description}")
        peers = set(available_peers())
        for library in PEER_LIBRARIES:
            mark = "built  " if library in peers else "missing"
            print(f"{mark}  {peer_zoo_name(library):32s} trained with {library} (notebook 20)")
        return
    if args.command == "build-peers":
        from .peers import build_peers

        for path in build_peers(args.only, args.out, args.steps_scale):
            print(f"wrote {path}")
        return
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    if args.command == "search-settings":
        from .settings import SETTINGS_PATH, search_zoo_settings

        unknown = [n for n in args.only or [] if n not in ALL_NAMES]
        if unknown:
            s.error(f"unknown name(s) {', '.join(unknown)}; known: {', '.join(ALL_NAMES)}")
        points = [spec.name for spec in ZOO_SPECS if spec.recipe.kind == "points"]
        images = [n for n in args.only or [] if n not in points]
        if images:
            s.error(
                f"only the 2D models are searched, not {', '.join(images)}; "
                f"2D models: {', '.join(points)}"
            )
        if any(n < 1 for n in args.nfe) or len(set(args.nfe)) != len(args.nfe):
            s.error(f"--nfe must be distinct positive integers, got {args.nfe}")
        if args.samples < 2:
            s.error(f"--samples must be at least 2, got {args.samples}")
        from ..training.checkpoint import CheckpointError

        out = args.out or SETTINGS_PATH
        try:
            found = search_zoo_settings(
                args.only or None, args.nfe, samples=args.samples, seed=args.seed, path=out
            )
        except CheckpointError as exc:  # not writable, full disk, locked by another writer
            print(f"python -m ucgm_lab.zoo search-settings: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        for name, budgets in found.items():
            for nfe, settings in budgets.items():
                print(f"{name:32s} NFE {nfe:3d}: {settings.describe()}")
        print(f"wrote {out}")
        return
    check_build_arguments(b, args, ALL_NAMES)
    for path in build(args.only, args.out, args.steps_scale):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
