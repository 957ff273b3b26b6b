"""Write scale/README.md's memory table from the planner (ucgm_lab.training.memory).

The device totals are what ``torch.cuda.get_device_properties(0).total_memory`` reports, the
number the trainer's memory check uses at run time (``usable_bytes(total_memory)``): about
79.2 GiB on an H100 80 GB and 139 GiB on an H200 141 GB (the GPU check's memory_decision row
records the exact value). Run ``python scripts/scale_memory_table.py`` to rewrite the block
between the markers in scale/README.md.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ucgm_lab.networks.tit import tit_from_name  # noqa: E402
from ucgm_lab.training.memory import (  # noqa: E402
    GIB,
    TiTShape,
    choose_checkpointing,
    largest_batch,
    plan_memory,
    usable_bytes,
)

DEVICES = {"H100 (79.2 GiB)": int(79.2 * GIB), "H200 (139 GiB)": int(139 * GIB)}
COMMON = dict(precision="bf16", num_processes=8, ema_copies=2, optimizer_kernel="fused")
START, END = "<!-- memory-table:start -->", "<!-- memory-table:end -->"


def _shape(name: str) -> TiTShape:
    with torch.device("meta"):
        return TiTShape.of(tit_from_name(name, input_size=32, in_channels=4, num_classes=1000))


def _label(k: int | None, depth: int) -> str:
    if k is None:
        return "does not fit"
    if k == 0:
        return "off"
    return "every block" if k == 1 else f"every {k}-th block ({-(-depth // k)} of {depth})"


def table() -> str:
    """The markdown block (sentence, two tables)."""
    names = ("TiT-B/2", "TiT-L/2", "TiT-XL/2")
    usable = ", ".join(f"{usable_bytes(b) / GIB:.1f} GiB of an {d}" for d, b in DEVICES.items())
    lines = [
        f"Usable memory, the same rule at run time and here: 95 % of `total_memory` minus 1.5 GiB "
        f"({usable}). Written by `python scripts/scale_memory_table.py` on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())} (arithmetic only, no device).",
        "",
        "| model | images/GPU | no checkpointing GiB | every block GiB | "
        + " | ".join(f"{d}: checkpointing chosen (GiB)" for d in DEVICES) + " |",
        "|---|---|---|---|" + "---|" * len(DEVICES),
    ]
    for name in names:
        shape = _shape(name)
        for batch in (64, 128, 256):
            off = plan_memory(shape, batch, checkpointing=False, **COMMON).total / GIB
            on = plan_memory(shape, batch, checkpointing=True, **COMMON).total / GIB
            cells = []
            for b in DEVICES.values():
                k, plan = choose_checkpointing(shape, batch, b, **COMMON)
                cells.append(f"{_label(k, shape.depth)} ({plan.total / GIB:.1f})")
            lines.append(f"| {name} | {batch} | {off:.1f} | {on:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "| model | " + " | ".join(f"largest images/GPU, {d}, off / every block"
                                           for d in DEVICES) + " |",
              "|---|" + "---|" * len(DEVICES)]
    for name in names:
        shape = _shape(name)
        cells = [f"{largest_batch(shape, b, False, **COMMON)} / "
                 f"{largest_batch(shape, b, True, **COMMON)}" for b in DEVICES.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    """Rewrite the block in scale/README.md (print it if the markers are missing)."""
    readme = ROOT / "scale" / "README.md"
    text = readme.read_text()
    block = f"{START}\n{table()}\n{END}"
    if START not in text:
        print(block)
        return 1
    readme.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda m: block, text,
                             flags=re.S))
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
