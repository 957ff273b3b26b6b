"""benchmarks/docs_writer.py: sections between markers, with when, where, load and command."""

import importlib
import sys

import pytest

from tests.scale.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
docs_writer = importlib.import_module("docs_writer")


def test_a_new_section_is_appended_and_an_old_one_replaced(tmp_path):
    path = tmp_path / "bench.md"
    path.write_text("# Benchmarks\n\nhand-written intro\n")
    docs_writer.write_section("alpha", "| a |\n|---|\n| 1 |", path, command="python x.py")
    docs_writer.write_section("beta", "beta body", path, command="python y.py")
    first = path.read_text()
    assert first.startswith("# Benchmarks\n\nhand-written intro\n\n<!-- BEGIN alpha -->\nMeasured ")
    assert "command: `python x.py`." in first and "| 1 |\n<!-- END alpha -->" in first
    assert first.index("<!-- END alpha -->") < first.index("<!-- BEGIN beta -->")
    docs_writer.write_section("alpha", "| a |\n|---|\n| 2 |", path, command="python x.py")
    second = path.read_text()
    assert "| 2 |" in second and "| 1 |" not in second
    assert second.count("<!-- BEGIN alpha -->") == 1 and "beta body" in second
    assert second.startswith("# Benchmarks\n\nhand-written intro\n\n")


def test_the_provenance_line_names_the_machine_and_load(tmp_path):
    machine = docs_writer.machine_info()
    line = docs_writer.provenance_line(machine, command="python b.py --seeds 0")
    assert machine.cpu in line and "load average before the run" in line and ", after " in line
    assert line.endswith("command: `python b.py --seeds 0`.")
    path = docs_writer.write_section("fresh", "x", tmp_path / "new" / "b.md", machine=machine)
    assert path.read_text().startswith("<!-- BEGIN fresh -->\nMeasured ")


def test_bad_names_and_broken_markers_are_refused(tmp_path):
    path = tmp_path / "b.md"
    for bad in ("", "a b", "x-->", "-lead"):
        with pytest.raises(ValueError, match="section name"):
            docs_writer.write_section(bad, "x", path)
    path.write_text("<!-- END gamma -->\n<!-- BEGIN gamma -->\n")
    with pytest.raises(ValueError, match="fix the markers by hand"):
        docs_writer.write_section("gamma", "x", path)
    assert path.read_text() == "<!-- END gamma -->\n<!-- BEGIN gamma -->\n"  # left as it was
