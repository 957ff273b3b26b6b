"""The ``ucgm-lab`` command line: ``ucgm-lab demo`` (the main job) and ``ucgm-lab zoo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .demo import MIN_DEMO_SAMPLES, DemoConfig, run_demo
from .training.checkpoint import CheckpointError


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ucgm-lab`` console script."""
    parser = argparse.ArgumentParser(
        prog="ucgm-lab", description="Unified Continuous Generative Models lab."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo", help="train multi-step and few-step toy models on a CPU and write a report"
    )
    defaults = DemoConfig()
    d.add_argument("--dataset", default=defaults.dataset, help="2D data set (default: %(default)s)")
    d.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help="training steps, multi-step model (default: %(default)s)",
    )
    d.add_argument(
        "--few-step-steps",
        type=int,
        default=defaults.few_step_steps,
        help="training steps, few-step model (default: %(default)s)",
    )
    d.add_argument("--out", default=defaults.out, help="output folder (default: %(default)s)")
    d.add_argument(
        "--device",
        default=defaults.device,
        choices=["cpu", "auto"],
        help="cpu, or auto to use an accelerator if present",
    )
    d.add_argument("--seed", type=int, default=defaults.seed)
    d.add_argument(
        "--samples",
        type=int,
        default=defaults.samples,
        help="samples per evaluation (default: %(default)s)",
    )
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    z = sub.add_parser(
        "zoo", help="list or build the pre-trained toy zoo (same as python -m ucgm_lab.zoo)"
    )
    z.add_argument("zoo_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "zoo":
        from .zoo.__main__ import main as zoo_main

        zoo_main(args.zoo_args or ["list"])
        return
    from toy_data import list_2d_datasets

    if args.dataset.lower() not in list_2d_datasets():
        d.error(f"unknown dataset {args.dataset!r}; choose from {', '.join(list_2d_datasets())}")
    for flag in ("steps", "few_step_steps"):
        if getattr(args, flag) < 1:
            d.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.samples < MIN_DEMO_SAMPLES:
        d.error(
            f"--samples must be >= {MIN_DEMO_SAMPLES}, got {args.samples} (with fewer points the "
            "W2 floor exceeds the models' scores)"
        )
    if Path(args.out).exists() and not Path(args.out).is_dir():
        d.error(f"--out {args.out} is a file; give a folder for the report")
    try:
        config = DemoConfig(
            dataset=args.dataset.lower(),
            steps=args.steps,
            few_step_steps=args.few_step_steps,
            out=args.out,
            device=args.device,
            seed=args.seed,
            samples=args.samples,
            progress=not args.no_progress,
        )
    except ValueError as exc:
        d.error(str(exc))
    try:
        run_demo(config)
    except CheckpointError as exc:  # an output folder that cannot be written
        d.error(str(exc))


if __name__ == "__main__":
    main()
