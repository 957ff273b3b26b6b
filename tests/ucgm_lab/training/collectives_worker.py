"""Run as ``python collectives_worker.py OUT`` under ``accelerate launch`` on 2 CPU processes.

Exercises ``ucgm_lab.training.collectives`` and writes ``OUT/rank<r>.json``: the values each
collective returned, and how often a tensor was still held by the process group (use count
above 1) when a collective returned, for the library's collectives and for plain
``torch.distributed.all_reduce``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ucgm_lab.training import collectives as c

CALLS = 400


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    held_after = plain_held_after = 0
    sums, maxima = [], []
    start = time.perf_counter()
    for i in range(CALLS):
        t = torch.tensor([float(rank + i)])
        c.all_reduce(t, "sum")
        held_after += t._use_count() > 1
        sums.append(t.item())
        m = torch.tensor([rank * (i % 3)], dtype=torch.int64)
        c.all_reduce(m, "max")
        held_after += m._use_count() > 1
        maxima.append(m.item())
    held_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(CALLS):
        t = torch.tensor([float(rank + i)])
        dist.all_reduce(t)
        plain_held_after += t._use_count() > 1
        m = torch.tensor([rank * (i % 3)], dtype=torch.int64)
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
        plain_held_after += m._use_count() > 1
    plain_seconds = time.perf_counter() - start
    mean = c.mean_over_processes(torch.tensor([1.0, 2.0]) * (rank + 1))
    mine = {"rank": rank, "blob": "x" * (10 + 1000 * rank), "state": torch.arange(3) + rank}
    gathered = c.gather_objects(mine)
    from_one = c.broadcast_object({"sender": rank, "long": list(range(50 * (rank + 1)))}, src=1)
    result = {
        "world": world,
        "held_after": held_after,
        "plain_held_after": plain_held_after,
        "held_seconds": held_seconds,
        "plain_seconds": plain_seconds,
        "sums": sums,
        "maxima": maxima,
        "mean": mean.tolist(),
        "gathered": [
            {"rank": g["rank"], "blob": len(g["blob"]), "state": g["state"].tolist()}
            for g in gathered
        ],
        "from_one": from_one,
    }
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
