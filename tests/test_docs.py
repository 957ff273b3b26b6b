"""The user documents hold no hand-typed measurement: README.md is a short guide, and every
table of docs/benchmarks.md lies inside a section a script wrote (with its command and date)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = re.compile(r"<!-- BEGIN ([\w-]+) -->\n(.*?)\n<!-- END \1 -->", re.S)


def test_readme_is_a_guide_not_a_log():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, (
        f"README.md has {len(lines)} lines (at most 220): move measurements to docs/"
    )
    history = [l for l in lines if re.search(r"\bbefore:|previous version|\bwas \d", l, re.I)]
    assert not history, f"README.md keeps a history of figures: {history}"


def test_every_table_of_docs_benchmarks_is_written_by_a_script():
    text = BENCHMARKS.read_text(encoding="utf-8")
    sections = SECTION.findall(text)
    assert sections, "docs/benchmarks.md has no generated section"
    outside = SECTION.sub("", text)
    stray = [l for l in outside.splitlines() if l.startswith("|") or re.search(r"\d\.\d{2}", l)]
    assert not stray, f"docs/benchmarks.md has figures outside a generated section: {stray[:3]}"
    for name, body in sections:
        assert re.search(r"^Written by `python [^`]+`, measured \d{4}-\d\d-\d\d", body, re.M), (
            f"section {name!r} does not say which command measured it and when"
        )
        command = re.search(r"Written by `python ([^` ]+)", body).group(1)
        if command.endswith(".py"):
            assert (ROOT / command).is_file(), f"section {name!r} names a missing script {command}"


# ----------------------------------------------------------------------------- figures in prose
# Every user document states measured figures only inside a section that a script wrote (with
# its command, date and machine) or not at all: prose describes the finding and names where it
# is measured (a benchmark section, a test, a notebook's stored output).
USER_DOCS = sorted(
    {
        ROOT / "README.md",
        ROOT / "scale" / "README.md",
        ROOT / "notebooks" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "benchmarks").glob("README*"),
        *(ROOT / "examples").iterdir(),
    }
)
# A generated section: docs_writer's markers, or the "<!-- name:start ... -->" / "<!-- name:end
# -->" pair that scripts/execute_notebooks.py and scripts/scale_memory_table.py write.
GENERATED = re.compile(
    r"<!-- BEGIN ([\w-]+) -->\n.*?\n<!-- END \1 -->|<!-- ([\w-]+):start\b.*?<!-- \2:end -->", re.S
)
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"``.*?``|`[^`\n]*`")  # code, commands, config values as typed
LINK = re.compile(r"\]\([^)]*\)|https?://\S+")
# a figure: 0.13, .5, 2.6e-5, 6e-6, 1.6x, or one ending a sentence ("... 0.13.")
FIGURE = re.compile(r"(?<![\w.])(?:\d+\.\d+|\.\d+|\d+)(?:e-?\d+)?(?!\d|\.\d|[A-Za-wyz_])")
# Numbers that are not measurements, each with why. Matched against the line around a figure,
# with {n} standing for the figure.
ALLOWED = [
    # a setting or an equation constant written as an assignment or a bound of a named quantity,
    # or a list of settings after it (kappa = 0.5, t_0 = 0.999, c = 1e-3, c = 0.8, 1, 1.2)
    r"\b(?:kappa|rho|zeta|lambda|epsilon|eps|t|t_0|t_i|c|p|w|s|g0|g1|sigma|theta1|theta2|mu)"
    r"\s*(?:=|<=|>=|<|>)\s*(?:-?[\d.e-]+,\s*)*-?{n}",
    # an argument of a formula, distribution or constructor: sin(1.57 t), Beta(2.4, 2.4),
    # K(1, 1, 0.7), min(0.999, ...), round(0.1 B)
    r"\b[A-Za-z_]\w*\([^()]*(?<![\w.]){n}(?![\w.])[^()]*\)",
    # an interval of times or a pair of settings: [0.125, 1.0], (0.2, 0.8), betas (0.9, 0.95);
    # a set of time points {0.999, 0.5}
    r"[\[({]\s*-?[\d.e-]+,\s*-?{n}\s*[\])}]",
    r"[\[({]\s*-?{n},\s*-?[\d.e-]+\s*[\])}]",
    # the steps and scales a search tries (steps 0.1, 0.03; guidance scales 1, 1.5, 2)
    r"\b(?:steps?|scales)\s+(?:of\s+)?(?:[\d.e-]+(?:,| to)\s+)*{n}",
    # a test tolerance: "agree to 1e-13", "equal one full batch's to 1e-5 relative"
    r"\b(?:agree|agrees|equal|equals)\b[^.;]*?\bto {n}",
    # section numbers of a cited paper
    r"\b(?:section|sections|Sec\.)\s+{n}",
    # versions
    r"(?:Python|torch|plotly|version)\s*(?:>=|==|<)?\s*{n}",
    r"arXiv:?\s*{n}",
]
# Values that are settings or constants wherever they appear, each with its reason.
ALLOWED_VALUES = {
    "0.999": "the first time point of the sampling grid (noise-end gap 0.001) and EMA decays",
    "0.4995": "the even grid's second point at 2 NFE, 0.999 / 2 (a setting, not a measurement)",
    "0.001": "the gaps of the reference's and our grids at both ends",
    "0.005": "epsilon of the few-step central difference (Alg. 1, reference setting)",
    "1.57": "the reference implementation's typed value of pi / 2",
    "0.18215": "the SD-VAE latent scaling factor of the reference code",
    "0.995": "the recipes' fixed EMA decay",
    "2e-4": "learning rates of Tab. 6 and the recipes (settings)",
    "1e-4": "a learning rate (Tab. 6) and the clamp of t near 0 (settings)",
    "0.03": "the TimeScaled factor 30 / 1000 that the docs tell users to type",
    "0.5": "the grid point {0.999, 0.5} and kappa = 1/2, the settings the docs discuss",
}
# Blocks that quote the paper's own printed settings or results (not measured here) sit between
# these comments.
QUOTE = re.compile(r"<!-- quoted from the paper\b.*?<!-- end of quote -->", re.S)


def _prose(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":  # comments and docstrings only: the code's numbers are settings
        import io
        import tokenize

        parts = []
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT or (
                token.type == tokenize.STRING and token.string.lstrip("rbuRBU").startswith('"""')
            ):
                parts.append(token.string)
        text = "\n".join(parts)
    text = GENERATED.sub("", text)
    text = QUOTE.sub("", text)
    text = FENCED.sub("", text)
    # code spans go, except the notebook files they name (a citation, see CITED_NOTEBOOK)
    text = INLINE_CODE.sub(
        lambda m: " ".join(f"{x}.ipynb" for x in CITED_NOTEBOOK.findall(m.group(0))), text
    )
    return LINK.sub("]", text)


# A notebook cited as a notebooks/ path or a bare NN_name.ipynb: a figure of the same block
# (paragraph or list item) that its stored outputs print is backed by that run.
CITED_NOTEBOOK = re.compile(r"\b(\d\d_\w+)\.ipynb\b")


def _blocks(text: str) -> list[list[str]]:
    """Paragraphs and list items (a table row is a block of its own)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.strip() or re.match(r"\s*(?:[-*] |\|)", line):
            blocks.append([])
        if line.strip():
            blocks[-1].append(line)
    return [b for b in blocks if b]


def _printed_in(notebooks: list[str], number: str) -> bool:
    """Whether one of these notebooks' stored outputs prints ``number`` (to its decimals)."""
    import json

    from tests.test_notebook_claims import is_printed, printed_numbers

    for name in notebooks:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        if path.is_file():
            nb = json.loads(path.read_text(encoding="utf-8"))
            if "e" not in number and is_printed(number, printed_numbers(nb)):
                return True
    return False


def stray_figures(path: Path) -> list[str]:
    """Decimal figures of ``path`` outside generated sections, code and allowed settings.

    A figure is allowed when it is a setting (``ALLOWED``, ``ALLOWED_VALUES``) or when a
    notebook named in its block prints it in its stored outputs.
    """
    found = []
    for block in _blocks(_prose(path)):
        text = "\n".join(block)
        cited = CITED_NOTEBOOK.findall(text)
        for line in block:
            for match in FIGURE.finditer(line):
                number = match.group(0)
                if "." not in number and "e" not in number:
                    continue  # integers: step counts, NFE, sizes (measured ones audited by hand)
                if number in ALLOWED_VALUES:
                    continue
                n = re.escape(number)
                if any(re.search(pattern.replace("{n}", n), line) for pattern in ALLOWED):
                    continue
                if cited and _printed_in(cited, number):
                    continue
                found.append(f"{number}: {line.strip()[:120]}")
    return found


def test_user_documents_quote_no_figure_outside_generated_sections():
    strays = {str(p.relative_to(ROOT)): stray_figures(p) for p in USER_DOCS if p.is_file()}
    strays = {k: v for k, v in strays.items() if v}
    assert not strays, (
        "decimal figures outside a section written by a script (move them into the script's "
        "section, point to the notebook output or test that shows them, or state the fact "
        f"without the number): {strays}"
    )


def test_the_figure_check_catches_a_quoted_measurement(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "With kappa = 0.5 and t_0 = 0.999 the W2 is 0.139 (`steps=0.25`).\n"
        "```\nx = 0.7\n```\n<!-- BEGIN s -->\nW2 0.42\n<!-- END s -->\n",
        encoding="utf-8",
    )
    assert [s.split(":")[0] for s in stray_figures(doc)] == ["0.139"]


def test_the_allow_list_lets_settings_through_but_not_results(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Settings: c = 0.8, 1, 1.2; Beta(2.4, 2.4); betas (0.9, 0.95); steps 0.1, 0.03; "
        "Python >= 3.10; agree to 1e-5 relative.\n"
        "Results: (0.0147 against 0.0159), r = 0.85, 1.6x, 2.6e-5.\n"
        "<!-- quoted from the paper: its FIDs -->\nFID 1.41\n<!-- end of quote -->\n"
        "<!-- times:start -->\n| 42 s | 2.3 |\n<!-- times:end -->\n",
        encoding="utf-8",
    )
    assert [s.split(":")[0] for s in stray_figures(doc)] == [
        "0.0147",
        "0.0159",
        "0.85",
        "1.6",
        "2.6e-5",
    ]


def test_a_figure_is_backed_by_the_stored_output_of_the_notebook_its_block_cites(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "- Orders: notebook `03_sampler_derivations.ipynb` prints 2.1 and 9.87.\n"
        "- The same 2.1 without a notebook.\n",
        encoding="utf-8",
    )
    assert [s.split(":")[0] for s in stray_figures(doc)] == ["9.87", "2.1"]
