"""docs/your-data.md (the README's "Your data, your network" section) runs as written."""

import re
import warnings
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "your-data.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_your_data_runs_as_written_without_a_time_warning(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert blocks, "docs/your-data.md has no ```python block"
    monkeypatch.chdir(tmp_path)  # it writes runs/lam0 and runs/lam1
    torch.manual_seed(0)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the wrapped network: no time warning
        for i, block in enumerate(blocks):
            exec(compile(block, f"docs/your-data.md python block {i}", "exec"), namespace)
    assert namespace["more"].step == 200 and namespace["loaded"].time_scale == 0.03
    assert (tmp_path / "runs" / "lam1" / "last.pt").exists()
    assert namespace["points"].shape == (1000, 2)


def test_the_code_stays_short():
    lines = [line for line in python_blocks()[0].splitlines() if line.strip()]
    assert len(lines) <= 32, len(lines)
