"""What a notebook's prose says about its own results is in its stored outputs.

The stored outputs come from a full-budget run (``python scripts/execute_notebooks.py``), and
a reader compares the text with them. So every decimal number that a notebook's markdown
quotes must appear in that notebook's stored outputs (rounded to as many decimals as the
prose gives: "about 0.17" is found in a printed 0.172). The exceptions are explicit:

* references such as "section 3.1", "Fig. 3a" or "arXiv 2505.07447";
* constants that are settings, not results (``CONSTANTS``, each with its reason, and
  ``NOTEBOOK_CONSTANTS`` for settings that only one notebook uses);
* a markdown cell that quotes a benchmark names the script that measured the figures
  (``benchmarks/<name>.py``, which must exist): its figures are the benchmark's, not the
  notebook's, and the cell says so.

No markdown cell attributes a figure to test mode: test-mode numbers are never stored (see
``tests/test_notebooks.py::test_stored_outputs_come_from_a_full_budget_run``), so prose that
quotes them cannot be checked by a reader.

Comparisons ("the raw network does worse at 2 NFE") are bound by asserts in the notebooks
themselves, which fail the full-budget run and CI (nbval) when the claim stops holding.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.]*\d)")
# "section 3.1", "sec. 4.4", "Fig. 3.2", "App. B.1.6", "arXiv 2505.07447", "eq. (3.1)".
REFERENCE = re.compile(
    r"(?:section|sec\.|§|fig\.|figure|app\.|appendix|arxiv[: ]|abs/|eq\.|tab\.)\s*\(?$", re.I
)
BENCHMARK_SCRIPT = re.compile(r"benchmarks/(\w+)\.py")

CONSTANTS: dict[str, str] = {
    "0.005": "the lambda = 1 central difference's half-width epsilon (Alg. 1, the paper's value)",
    "0.999": "the first time point of the sampler's grids (t_0 = 0.999)",
    "0.001": "the reference implementation's gap at the data end of its grid (t = 0.001)",
    "0.5": "a setting (lambda, kappa, rho or a time point of 0.5), not a result",
    "0.25": "a setting (kappa = 0.25), not a result",
    "0.75": "a setting: the enhanced target's switch time s = 0.75 (Alg. 1) or kappa = 0.75",
    "0.45": "the paper's enhancement ratio zeta = 0.45 of Fig. 3b",
    "0.44": "the paper's range of zeta in Tab. 6 (0.44 to 0.67)",
    "0.67": "the paper's range of zeta in Tab. 6 (0.44 to 0.67)",
    "0.6": "a setting (zeta = 0.6 of notebook 13) or the paper's kappa range [0.2, 0.6]",
    "0.2": "the paper's kappa range [0.2, 0.6] (section 4.4) or a guidance interval end",
    "0.8": "a setting: Beta(0.8, 1) training times (Tab. 6) or a guidance interval end",
    "1.0": "a setting (lambda = 1.0), not a result",
    "0.1": "a setting: label dropout 0.1, a data set's standard deviation 0.1, gap_noise=0.1",
    "1.5": "a setting: a guidance scale w = 1.5, a circle's radius, a Gaussian's mean",
    "2.68": "Tab. 1's EDM noise schedule sigma(t) = exp(4 (2.68 t - 1.59))",
    "1.59": "Tab. 1's EDM noise schedule sigma(t) = exp(4 (2.68 t - 1.59))",
    "1.17": "the paper's 'Auto' Kumaraswamy parameters (1.17, 0.8, 1.1) (App. A.1.3)",
    "1.1": "the paper's 'Auto' Kumaraswamy parameters (1.17, 0.8, 1.1) (App. A.1.3)",
    "2.4": "the paper's Beta(2.4, 2.4) training-time distribution for its SD-VAE runs",
}
"""Numbers that are settings or paper constants wherever they appear, with the reason."""

NOTEBOOK_CONSTANTS: dict[str, dict[str, str]] = {
    "01_prediction_functions_and_objective.ipynb": {
        "-1.2": "the worked example's point z = -1.2 (a setting of the example)",
    },
    "03_sampler_derivations.ipynb": {
        "0.99": "the convergence study's start time t = 0.99 (a setting)",
    },
    "10_transports.ipynb": {
        "1.15": "a closed-form answer: sqrt(4/3), the checkerboard's spread per coordinate",
        "0.76": "a closed-form answer: sqrt(0.25 + 0.25 * 4/3), the spread at t = 0.5",
    },
    "13_transports_and_enhanced_target.ipynb": {
        "0.3": "a setting of the enhanced-target search grid or a spread read off the plot",
    },
    "14_your_own_network.ipynb": {
        "0.03": "the TimeScaled factor 30 / 1000 (a setting)",
        "0.02": "a setting: the larger epsilon tried (0.02)",
        "0.05": "a setting: the larger epsilon tried (0.05)",
    },
    "30_images.ipynb": {
        "0.3": "a setting",
    },
}
"""Settings that only one notebook uses, per notebook, with the reason."""


def stored_notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def output_text(output: dict) -> str:
    """The text a reader sees of one stored output (streams, text/* and JSON data, errors)."""
    texts = [output.get("text", ""), output.get("ename", ""), output.get("evalue", "")]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            texts.append(value if isinstance(value, (str, list)) else json.dumps(value))
    return "\n".join("".join(t) if isinstance(t, list) else t for t in texts)


def printed_numbers(nb: dict) -> list[Decimal]:
    """Every decimal number in the notebook's stored outputs."""
    text = "\n".join(
        output_text(out)
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    )
    return [Decimal(m.group(0)) for m in NUMBER.finditer(text)]


def is_printed(quoted: str, printed: list[Decimal]) -> bool:
    """Whether a printed number, rounded to the quoted number's decimals, gives it."""
    q = Decimal(quoted)
    half = Decimal(5) * Decimal(10) ** (q.as_tuple().exponent - 1)
    places = -q.as_tuple().exponent
    return any(-p.as_tuple().exponent >= places and abs(p - q) <= half for p in printed)


def unbacked_numbers(nb: dict, name: str) -> list[str]:
    """'cell i: number (context)' for each quoted number that no stored output backs."""
    printed = printed_numbers(nb)
    allowed = CONSTANTS | NOTEBOOK_CONSTANTS.get(name, {})
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        if any((ROOT / "benchmarks" / f"{m}.py").is_file() for m in BENCHMARK_SCRIPT.findall(text)):
            continue
        for match in NUMBER.finditer(text):
            quoted = match.group(0)
            if quoted in allowed or REFERENCE.search(
                text[max(0, match.start() - 12) : match.start()]
            ):
                continue
            if not is_printed(quoted, printed):
                context = " ".join(text[max(0, match.start() - 50) : match.end() + 20].split())
                found.append(f"cell {i}: {quoted} ({context!r})")
    return found


def figures_attributed_to_test_mode(nb: dict, name: str) -> list[str]:
    """Markdown cells that speak of test mode and quote a result (a number not allowed)."""
    allowed = CONSTANTS | NOTEBOOK_CONSTANTS.get(name, {})
    found = []
    for i, cell in enumerate(nb["cells"]):
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or "test mode" not in text.lower():
            continue
        numbers = [
            m.group(0)
            for m in NUMBER.finditer(text)
            if m.group(0) not in allowed
            and not REFERENCE.search(text[max(0, m.start() - 12) : m.start()])
        ]
        if numbers:
            found.append(f"cell {i}: {numbers}")
    return found


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_numbers_in_the_prose_are_in_the_stored_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = unbacked_numbers(nb, path.name)
    assert not found, (
        f"{path.name}: the markdown quotes numbers that no stored output shows. Print them in "
        "a code cell (or refer to the printed table), name the benchmark script that measured "
        "them (benchmarks/<name>.py), or, for a setting or paper constant, add it with its reason "
        "to CONSTANTS / NOTEBOOK_CONSTANTS in tests/test_notebook_claims.py:\n  "
        + "\n  ".join(found)
    )


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_no_prose_quotes_test_mode_figures(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = figures_attributed_to_test_mode(nb, path.name)
    assert not found, (
        f"{path.name}: markdown cells that mention test mode quote figures; the stored outputs "
        "come from a full-budget run, so quote (or refer to) those instead:\n  "
        + "\n  ".join(found)
    )


def _notebook(markdown: str, printed: str) -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "source": [markdown]},
            {
                "cell_type": "code",
                "source": ["print(...)"],
                "outputs": [{"output_type": "stream", "name": "stdout", "text": [printed]}],
            },
        ]
    }


def test_the_checks_can_fail():
    printed = "ratio at 2 NFE: raw 1.252, wrapped 1.364; W2 0.172 (floor 0.132)\n"
    assert (
        unbacked_numbers(_notebook("The raw network reaches 1.25, the other 1.36.", printed), "x")
        == []
    )
    assert unbacked_numbers(_notebook("W2 is about 0.17 against 0.13.", printed), "x") == []
    assert unbacked_numbers(_notebook("The wrapped one reaches 1.10.", printed), "x") == [
        "cell 0: 1.10 ('The wrapped one reaches 1.10.')"
    ]
    # one more decimal than printed is not backed, a setting or a reference is not checked
    found = unbacked_numbers(_notebook("W2 0.1720 at eps 0.005 (section 3.1)", printed), "x")
    assert [f.split(" (")[0] for f in found] == ["cell 0: 0.1720"]
    # a cell that names an existing benchmark script quotes that script, one that does not is checked
    assert (
        unbacked_numbers(_notebook("`benchmarks/time_scale.py` measured 1.88.", printed), "x") == []
    )
    assert unbacked_numbers(_notebook("`benchmarks/" + "no_such.py` measured 1.88.", printed), "x")
    assert figures_attributed_to_test_mode(_notebook("In test mode W2 is 0.228.", printed), "x")
    assert not figures_attributed_to_test_mode(
        _notebook("Test mode shrinks budgets.", printed), "x"
    )
    assert is_printed("0.17", [Decimal("0.165")]) and not is_printed("0.17", [Decimal("0.164")])
