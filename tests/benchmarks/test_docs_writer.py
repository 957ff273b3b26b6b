import importlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
docs_writer = importlib.import_module("docs_writer")
harness = importlib.import_module("harness")


def test_sections_are_appended_then_replaced_and_other_text_kept(tmp_path):
    doc = tmp_path / "bench.md"
    docs_writer.write_section("a", "## Table A\n\n| x |\n|---|\n| 1 |", doc, command="python a.py")
    docs_writer.write_section("b", "| y |\n|---|\n| 2 |", doc)
    text = doc.read_text()
    assert text.startswith("# Measurements")
    assert text.index("<!-- BEGIN a -->") < text.index("<!-- BEGIN b -->")
    # the provenance line sits under the title and names the command and the machine
    lines = text.split("<!-- BEGIN a -->")[1].split("\n")
    assert lines[2] == "## Table A" and lines[4].startswith("Written by `python a.py`, measured ")
    assert harness.machine_info().cpu in text
    doc.write_text(doc.read_text().replace("# Measurements", "# Measurements (kept)"))
    docs_writer.write_section("a", "## Table A\n\n| x |\n|---|\n| 3 |", doc)
    text = doc.read_text()
    assert "| 1 |" not in text and "| 3 |" in text and "| 2 |" in text
    assert text.startswith("# Measurements (kept)") and text.count("<!-- BEGIN a -->") == 1
    assert oct(os.stat(doc).st_mode & 0o777) == "0o644"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", ["", "A", "x y", "../x", "a" * 65])
def test_bad_section_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="section name"):
        docs_writer.write_section(name, "x", tmp_path / "d.md")


def test_markdown_holding_its_own_markers_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must not contain its own markers"):
        docs_writer.write_section("a", "<!-- END a -->", tmp_path / "d.md")


def test_a_failed_write_leaves_the_old_document(tmp_path, monkeypatch):
    doc = tmp_path / "d.md"
    docs_writer.write_section("a", "| old |", doc)
    before = doc.read_text()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(docs_writer.os, "replace", boom)
    with pytest.raises(OSError):
        docs_writer.write_section("a", "| new |", doc)
    assert doc.read_text() == before and not list(tmp_path.glob("*.tmp"))
