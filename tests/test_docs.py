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
