"""scale/gpu_check: refusal without CUDA, per-row JSON as rows end, the global deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scale.gpu_check import Row, memory_decision, run_check
from ucgm_lab.training.memory import usable_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_without_cuda_within_seconds(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)}
    # The baseline, in the same run: starting Python, importing torch and asking for CUDA, which
    # is all a refusal should cost. A fixed bound in seconds fails on a loaded machine.
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import scale.gpu_check, torch; torch.cuda.is_available()"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, check=True, timeout=300,
    )
    baseline = time.monotonic() - start
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scale" / "gpu_check.sh"), "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 3 * baseline + 15, f"refusal took {elapsed:.1f} s, the import {baseline:.1f} s"
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def _py(code: str) -> tuple[str, ...]:
    return ("-c", code)


def test_rows_written_as_they_end(tmp_path: Path) -> None:
    out = tmp_path / "check"
    rows = [
        Row("first", _py("import json,sys; json.dump({'images_per_second': 1.5}, "
                         "open(sys.argv[1], 'w'))") + ("{json}",)),
        # succeeds only if the first row's JSON is on disk (written as soon as it ended)
        Row("second", _py("import pathlib,sys; sys.exit(0 if pathlib.Path(sys.argv[1]).exists() "
                          "else 3)") + ("{out}/01_first.json",), report_json=False),
        Row("fails", _py("import sys; sys.exit('a one-line failure')"), report_json=False),
    ]
    entries = run_check(rows, out, budget=600.0, hard_stop=600.0, row_timeout=300.0,
                        device_bytes=80 * 10**9)
    status = {e["row"]: e["status"] for e in entries}
    assert status == {"memory_decision": "ok", "first": "ok", "second": "ok", "fails": "failed"}
    first = json.loads((out / "01_first.json").read_text())
    assert first["report"] == {"images_per_second": 1.5}
    assert json.loads((out / "03_fails.json").read_text())["error"] == "a one-line failure"
    summary = json.loads((out / "summary.json").read_text())
    assert [r["row"] for r in summary["rows"]] == [e["row"] for e in entries]
    assert "| first | ok |" in (out / "summary.md").read_text()


def test_global_deadline_stops_a_row_and_skips_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "check"
    rows = [
        Row("sleeper", _py("import time; time.sleep(300)"), report_json=False),
        Row("never", _py("pass"), report_json=False),
    ]
    start = time.monotonic()
    entries = run_check(rows, out, budget=3.0, hard_stop=3.0, row_timeout=90.0,
                        device_bytes=None)
    assert time.monotonic() - start < 150  # stopped at the hard stop (3 s), not after 300 s
    assert [e["status"] for e in entries] == ["timed out", "skipped"]
    assert json.loads((out / "01_sleeper.json").read_text())["status"] == "timed out"
    assert json.loads((out / "02_never.json").read_text())["status"] == "skipped"


def test_memory_decision_uses_the_planner_rule() -> None:
    d = memory_decision(80 * 10**9)
    assert d["usable_gib"] == pytest.approx(usable_bytes(80 * 10**9) / 2**30)
    for row in d["rows"]:
        fits_off = row["planner_gib_off"] <= d["usable_gib"]
        assert (row["decision"] == "no checkpointing") == fits_off


@pytest.mark.slow
def test_tiny_check_on_cpu(tmp_path: Path) -> None:
    """The whole check with tiny rows behind --allow-cpu: every row ok, resumed to step 30."""
    out = tmp_path / "tiny"
    done = subprocess.run(
        [sys.executable, "-m", "scale.gpu_check", "--allow-cpu", "--tiny", "--out", str(out),
         "--row-timeout", "300", "--budget", "1000", "--hard-stop", "1100"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    resume = json.loads(next(out.glob("*_resume_30.json")).read_text())
    assert resume["report"]["steps"] == 30 and resume["report"]["all_finite"]
    assert resume["report"]["resumed"] and "step 20" in resume["report"]["resumed"]
    nan = json.loads(next(out.glob("*_nan_check.json")).read_text())
    assert nan["report"]["finite"]
