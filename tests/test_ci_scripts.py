"""CI (.ci/run -> scripts/test.sh) reruns the reproducibility tests with 1 thread and AVX2 kernels."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test_reproducibility.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY")
    }
    env["PYTHON"] = sys.executable
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_ci_runs_the_test_script_and_it_ends_with_the_variant_runs():
    assert (REPO / ".ci" / "run").read_text().strip().endswith("exec bash scripts/test.sh")
    lines = [ln for ln in (REPO / "scripts" / "test.sh").read_text().splitlines() if ln.strip()]
    main = next(i for i, ln in enumerate(lines) if ln.startswith("python -m pytest"))
    assert "tests notebooks" in lines[main] and lines[-1] == "bash scripts/test_reproducibility.sh"
    assert (
        '\n    "reproducibility: ' in (REPO / "pyproject.toml").read_text()
    )  # a registered marker


def test_each_variant_runs_the_marked_tests_with_its_setting(tmp_path):
    log = tmp_path / "seen.txt"
    (tmp_path / "test_marked.py").write_text(
        "import os\nimport pytest\n\n\n@pytest.mark.reproducibility\ndef test_seen():\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write(f\"{os.environ.get('OMP_NUM_THREADS')} {os.environ.get('ATEN_CPU_CAPABILITY')}\\n\")\n"
        "\n\ndef test_not_marked():\n    raise AssertionError('only the marked tests run')\n"
    )
    done = _run(str(tmp_path / "test_marked.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert log.read_text().splitlines() == ["1 None", "None avx2"]


def test_no_selected_test_or_a_failure_fails_the_script(tmp_path):
    (tmp_path / "test_unmarked.py").write_text("def test_plain():\n    pass\n")
    empty = _run(str(tmp_path / "test_unmarked.py"))  # nothing marked
    assert empty.returncode == 1
    assert empty.stderr.count("no test marked 'reproducibility' was selected") == 2
    (tmp_path / "test_bad.py").write_text(
        "import pytest\n\n\n@pytest.mark.reproducibility\ndef test_bad():\n    assert False\n"
    )
    bad = _run(str(tmp_path / "test_bad.py"))
    assert bad.returncode == 1 and bad.stderr.count("the reproducibility tests failed") == 2
