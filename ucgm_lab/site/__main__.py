"""``python -m ucgm_lab.site build [--out site] [--quick] [--notebooks ...] [--explorers ...]``."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and build; returns the exit status (2 for a bad argument)."""
    parser = argparse.ArgumentParser(prog="python -m ucgm_lab.site", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the static site")
    build.add_argument("--out", default="site", help="site folder (default: site)")
    build.add_argument("--quick", action="store_true", help="test-sized explorer grids")
    build.add_argument("--notebooks", nargs="*", help="notebook stems (default: all)")
    build.add_argument("--explorers", nargs="*", help="explorer names (default: all)")
    build.add_argument(
        "--repo-url",
        help="where links to repository files point, e.g. https://github.com/OWNER/REPO/blob/main",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    from .build import build_site

    try:
        report = build_site(
            args.out,
            quick=args.quick,
            notebooks=args.notebooks,
            explorers=args.explorers,
            repo_url=args.repo_url,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
