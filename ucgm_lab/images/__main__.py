"""Command line of the image zoo: ``python -m ucgm_lab.images {list,build}``."""

from __future__ import annotations

import argparse

import torch

from ..zoo.build_cli import check_build_arguments
from .zoo import CLASSIFIER_NAME, IMAGE_ZOO_DIR, IMAGE_ZOO_SPECS, available, build

ALL_NAMES = [CLASSIFIER_NAME, *(s.name for s in IMAGE_ZOO_SPECS)]


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m ucgm_lab.images", description="The digits zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the classifier and the zoo models and whether their checkpoint exists")
    b = sub.add_parser("build", help="train and save the classifier and zoo models (CPU, seeded)")
    b.add_argument("--only", nargs="*", help=f"names to build (default: {CLASSIFIER_NAME} and all models)")
    b.add_argument("--out", default=str(IMAGE_ZOO_DIR), help="output folder (default: the package's zoo)")
    b.add_argument("--steps-scale", type=float, default=1.0, help="multiply every training budget")
    b.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.command == "list":
        have = set(available())
        rows = [(CLASSIFIER_NAME, "digits classifier behind the digits metric")]
        rows += [(s.name, s.description) for s in IMAGE_ZOO_SPECS]
        for name, description in rows:
            mark = "built  " if name in have else "missing"
            print(f"{mark}  {name:24s} {description}")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    check_build_arguments(b, args, ALL_NAMES)
    for path in build(args.only, args.out, args.steps_scale):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
