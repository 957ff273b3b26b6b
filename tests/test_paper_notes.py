"""docs/paper-notes.md is the project's record of errata (E), reference facts (R), findings (F).

The README and the docs name its items ("paper-notes E1", "F1-F7"); these tests keep the names
and ranges in step with the headings, so a new finding cannot go unlisted and a citation cannot
point at an item that does not exist.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "paper-notes.md"
HEADING = re.compile(r"^### ([ERF])(\d+) · ", re.MULTILINE)
RANGE = re.compile(r"\b([ERF])1-([ERF])(\d+)\b")
CITATION = re.compile(r"paper-notes(?:\.md)?[`,\s(]{0,4}([ERF])(\d+)\b")
CITING_FILES = ("README.md", "docs", "notebooks", "ucgm_lab", "scale", "benchmarks", "tests")


def items() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {"E": [], "R": [], "F": []}
    for kind, number in HEADING.findall(NOTES.read_text(encoding="utf-8")):
        found[kind].append(int(number))
    return found


def citing_texts() -> dict[Path, str]:
    texts = {}
    for name in CITING_FILES:
        path = ROOT / name
        paths = [path] if path.is_file() else sorted(path.rglob("*"))
        for p in paths:
            if p.suffix in {".md", ".py", ".ipynb"} and p != Path(__file__).resolve():
                texts[p] = p.read_text(encoding="utf-8")
    return texts


def test_items_are_numbered_one_to_n_without_gaps():
    for kind, numbers in items().items():
        assert numbers == list(range(1, len(numbers) + 1)), (kind, numbers)


def test_ranges_name_the_last_item():
    last = {kind: len(numbers) for kind, numbers in items().items()}
    wrong = []
    for path in (ROOT / "README.md", ROOT / "docs" / "architecture.md"):
        for first, second, number in RANGE.findall(path.read_text(encoding="utf-8")):
            if first == second and int(number) != last[first]:
                wrong.append(
                    f"{path.name}: {first}1-{second}{number} (the notes have {first}1-{first}{last[first]})"
                )
    assert not wrong, "\n".join(wrong)


def test_every_cited_item_exists():
    have = {f"{kind}{n}" for kind, numbers in items().items() for n in numbers}
    missing = sorted(
        f"{path.relative_to(ROOT)}: {kind}{number}"
        for path, text in citing_texts().items()
        for kind, number in CITATION.findall(text)
        if f"{kind}{number}" not in have
    )
    assert not missing, "cited but not in docs/paper-notes.md:\n" + "\n".join(missing)


def test_the_patterns_find_what_they_check():
    assert RANGE.findall("our findings (F1-F7)") == [("F", "F", "7")]
    assert CITATION.findall("see docs/paper-notes.md, E1 and paper-notes F12") == [
        ("E", "1"),
        ("F", "12"),
    ]
    assert HEADING.findall("### F7 · A second-order ...\n### R10 · x") == [("F", "7"), ("R", "10")]
