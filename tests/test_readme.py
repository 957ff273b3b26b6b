"""The README's Python code blocks run as written (in order, in one namespace)."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(
        r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S
    )


def test_readme_has_python_blocks():
    assert python_blocks(), "README.md has no ```python block to check"


def test_readme_python_blocks_run_as_written():
    torch.manual_seed(0)
    namespace: dict = {}
    for i, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message is the point
            raise AssertionError(f"README.md python block {i} fails: {error!r}\n{block}") from error
