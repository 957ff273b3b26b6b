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


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "Your data, your network" writes runs/lam0 and runs/lam1
    torch.manual_seed(0)
    namespace: dict = {}
    for i, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message is the point
            raise AssertionError(f"README.md python block {i} fails: {error!r}\n{block}") from error
    assert (tmp_path / "runs" / "lam1" / "last.pt").is_file()


def test_readme_command_lines_name_existing_current_modules():
    """Every `python -m ucgm_lab...` of the README exists and is not a deprecated alias."""
    import importlib.util

    text = README.read_text(encoding="utf-8")
    modules = set(re.findall(r"python -m (ucgm_lab[\w.]*)", text))
    assert "ucgm_lab.zoo" in modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module
        assert not module.startswith("ucgm_lab.images"), f"{module} is deprecated: use ucgm_lab.zoo"
