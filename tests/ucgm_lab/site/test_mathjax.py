"""The site's own MathJax: what is copied, the page's URL, the errors (the browser test typesets)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from ucgm_lab.site.build import build_site
from ucgm_lab.site.mathjax import CONFIG, FOLDER, copy_mathjax, mathjax_source, mathjax_url


def test_the_copy_has_what_the_pages_load_and_not_the_rest(tmp_path: Path) -> None:
    source = mathjax_source()
    written = copy_mathjax(tmp_path)
    copy = tmp_path / FOLDER
    files = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    assert written == sum((copy / f).stat().st_size for f in files)
    # loaded at start by every page: the core and the configuration files of the URL
    for name in ["MathJax.js", *(f"config/{c}.js" for c in CONFIG.split(","))]:
        assert name in files, name
    # the HTML-CSS output and the web fonts it is configured with, the TeX extensions
    # that macros load on demand, the English strings of the menu
    for folder in [
        "jax/output/HTML-CSS/fonts/STIX-Web/",
        "fonts/HTML-CSS/STIX-Web/woff/",
        "extensions/TeX/",
        "jax/element/mml/optable/",
        "localization/en/",
    ]:
        assert any(f.startswith(folder) for f in files), folder
    assert {f for f in files if "/" not in f} == {"MathJax.js", "LICENSE"}
    # every file of the source under a kept folder was copied, byte for byte
    kept = [f for f in files if f.startswith("jax/output/HTML-CSS/")]
    everything = [
        p.relative_to(source).as_posix()
        for p in (source / "jax/output/HTML-CSS").rglob("*")
        if p.is_file()
    ]
    assert sorted(kept) == sorted(everything)
    assert (copy / "MathJax.js").read_bytes() == (source / "MathJax.js").read_bytes()
    # left out: the SVG output, other languages, the accessibility explorer
    assert not any(f.startswith(("jax/output/SVG", "extensions/a11y")) for f in files)
    assert not any(f.startswith("localization/") and "/en/" not in f for f in files)
    source_bytes = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    assert written < source_bytes / 3, (written, source_bytes)


def test_the_site_config_chooses_fonts_that_are_copied(tmp_path: Path) -> None:
    copy_mathjax(tmp_path)
    config = (tmp_path / FOLDER / "config" / "ucgm-site.js").read_text()
    font = re.search(r'webFont:\s*"([^"]+)"', config).group(1)
    assert (tmp_path / FOLDER / "fonts" / "HTML-CSS" / font / "woff").is_dir()
    assert (tmp_path / FOLDER / "jax/output/HTML-CSS/fonts" / font / "fontdata.js").is_file()
    assert 'loadComplete("[MathJax]/config/ucgm-site.js")' in config  # else MathJax waits


def test_a_notebook_page_loads_mathjax_from_the_site_and_nothing_from_the_network(
    tmp_path: Path,
) -> None:
    out = tmp_path / "site"
    report = build_site(out, notebooks=["05_gaussian_optimum"], explorers=[], log=lambda _: None)
    page = (out / "notebooks" / "05_gaussian_optimum.html").read_text()
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]*)"', page)
    assert scripts == [mathjax_url("..")], scripts
    assert (out / "notebooks" / scripts[0].split("?")[0]).resolve() == (
        out / FOLDER / "MathJax.js"
    ).resolve()
    assert "require.min.js" not in page
    assert 0 < report.mathjax_bytes < 4 * 2**20
    assert "mathjax" in report.summary()


def test_a_missing_package_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "jupyter_server_mathjax", None)  # import fails
    with pytest.raises(RuntimeError, match="pip install"):
        mathjax_source()
    with pytest.raises(RuntimeError, match="jupyter-server-mathjax"):
        build_site(tmp_path / "site", notebooks=[], explorers=[], log=lambda _: None)
    assert not (tmp_path / "site").exists()  # checked before anything is written


def test_a_copy_without_the_combined_configuration_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "static"
    (source / "config").mkdir(parents=True)
    (source / "MathJax.js").write_text("//")
    with pytest.raises(RuntimeError, match="TeX-AMS-MML_HTMLorMML-full"):
        copy_mathjax(tmp_path / "site", source)
