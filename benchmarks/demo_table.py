"""Run the CPU demo with its defaults and write its table and time into docs/benchmarks.md.

    python benchmarks/demo_table.py            # the demo's defaults (what `ucgm-lab demo` runs)
    python benchmarks/demo_table.py --no-docs  # print only

The section ``demo`` of ``docs/benchmarks.md`` gets the quality-versus-NFE table of the demo
(exact W2 to held-out data, lower is better, with the data-versus-data floor), its training
times and its total wall time, measured in this run (``docs_writer`` adds date, machine, load).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from docs_writer import DOCS, write_section  # noqa: E402
from harness import machine_info  # noqa: E402


def section(summary: str) -> str:
    """The section's markdown from the demo's summary.md (its title dropped, its lines kept)."""
    body = [line for line in summary.strip().splitlines()[1:] if not line.startswith("Settings:")]
    return "\n".join(["## The CPU demo (`ucgm-lab demo`, checkerboard, default settings)", *body])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--no-docs", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    from ucgm_lab.demo import DemoConfig, run_demo

    machine = machine_info()
    with tempfile.TemporaryDirectory() as out:
        result = run_demo(DemoConfig(out=out, progress=False))
        text = section(result.summary.read_text(encoding="utf-8"))
    print(text)
    if not args.no_docs:
        write_section(
            "demo",
            text,
            args.docs,
            command="python benchmarks/demo_table.py",
            machine=machine.finish(),
        )
        print(f"wrote the demo section of {args.docs}")
    return text


if __name__ == "__main__":
    main()
