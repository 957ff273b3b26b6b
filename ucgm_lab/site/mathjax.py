"""MathJax served by the site itself, so that the notebook pages typeset their formulas offline.

nbconvert's ``lab`` template loads MathJax 2 and configures it in the page (``MathJax.Hub``,
``tex2jax`` with ``$...$`` and ``$$...$$``); by default from a CDN. The site copies MathJax 2.7
from the ``jupyter-server-mathjax`` wheel (the Jupyter project's own copy, the one Jupyter
servers hand out) into ``site/mathjax/`` and points the pages there (:func:`mathjax_url`).

The wheel ships one combined configuration, ``TeX-AMS-MML_HTMLorMML-full`` (TeX and MathML
input, the HTML-CSS output), and the STIX-Web fonts only (no TeX fonts). The site adds its own
small configuration file, ``config/ucgm-site.js`` (:data:`SITE_CONFIG`), that makes HTML-CSS
use the STIX-Web web fonts, as Jupyter's classic notebook does with this copy.

Only what TeX on these pages can load is copied (:data:`KEEP`, about 2.3 MiB): the core, the
configuration, the TeX extensions that macros load on demand, the HTML-CSS output with its
STIX-Web font data and woff fonts, the MathML element tables, the menu and zoom extensions
and the English strings. Left out: the SVG output, the other languages and the accessibility
explorer (``extensions/a11y``: speech rules, loaded only when a reader turns on the explorer,
which this configuration's menu does not offer).

Known gap: MathJax also registers its "MathML" renderer (a choice in its right-click menu),
whose styles name MathJax's TeX fonts in ``fonts/HTML-CSS/TeX/otf``; the wheel has none, so a
browser asks for two or three of them (for the hidden MathML kept for screen readers) and
falls back to its own fonts. Nothing visible depends on them.
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

__all__ = [
    "CONFIG",
    "FOLDER",
    "KEEP",
    "SITE_CONFIG",
    "copy_mathjax",
    "mathjax_source",
    "mathjax_url",
]

FOLDER = "mathjax"
"""The site's folder for MathJax (``site/mathjax/``)."""

CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,ucgm-site"
"""MathJax configuration files the pages load, in order (``config/<name>.js``)."""

SITE_CONFIG = """\
/* ucgm-lab site: HTML-CSS output with the STIX-Web web fonts (the only fonts this copy of
   MathJax ships), line breaks as nbconvert asks for its CommonHTML output. */
MathJax.Hub.Config({
  "HTML-CSS": {
    availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
    linebreaks: { automatic: true }
  }
});
MathJax.Ajax.loadComplete("[MathJax]/config/ucgm-site.js");
"""
"""``config/ucgm-site.js``: written by the build (it is not in the wheel)."""

KEEP = (
    "LICENSE",
    "MathJax.js",
    "config/TeX-AMS-MML_HTMLorMML-full.js",
    "config/Safe.js",
    "extensions/*.js",
    "extensions/TeX/**",
    "extensions/HTML-CSS/**",
    "jax/element/**",
    "jax/input/TeX/**",
    "jax/output/HTML-CSS/**",
    "fonts/HTML-CSS/STIX-Web/woff/**",
    "localization/en/**",
)
"""The files copied from the wheel: ``folder/**`` is a whole folder, other patterns are
``fnmatch`` patterns within one folder."""


def mathjax_source() -> Path:
    """The folder of MathJax 2.7 in the installed ``jupyter-server-mathjax`` package.

    Raises:
        RuntimeError: When the package is missing (it comes with the ``notebooks`` extra).
    """
    try:
        import jupyter_server_mathjax
    except ImportError as exc:
        raise RuntimeError(
            "the site serves MathJax from the jupyter-server-mathjax package, which is not "
            "installed: pip install -e '.[notebooks]' (or pip install 'jupyter-server-mathjax')."
        ) from exc
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise RuntimeError(f"{static} holds no MathJax.js: reinstall jupyter-server-mathjax.")
    return static


def _kept(relative: str) -> bool:
    """Whether the file at ``relative`` (a POSIX path in MathJax's folder) is copied."""
    for pattern in KEEP:
        if pattern.endswith("/**"):
            if relative.startswith(pattern[:-2]):
                return True
        elif relative.count("/") == pattern.count("/") and fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def copy_mathjax(site: Path, source: Path | None = None) -> int:
    """Copy what the pages need of MathJax into ``site/mathjax/`` and add the site's config.

    Args:
        site: The site folder.
        source: MathJax's folder (default: :func:`mathjax_source`).

    Returns:
        The bytes written.

    Raises:
        RuntimeError: When the package is missing or lacks one of the files the pages load
            at start (then the pages would show LaTeX source).
    """
    source = mathjax_source() if source is None else source
    needed = ["MathJax.js"] + [f"config/{name}.js" for name in CONFIG.split(",")[:-1]]
    missing = [name for name in needed if not (source / name).is_file()]
    if missing:
        raise RuntimeError(
            f"{source} lacks {missing}: this jupyter-server-mathjax is not the MathJax 2.7 "
            "copy the site expects (0.2.x)."
        )
    target = site / FOLDER
    written = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and _kept(relative):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / relative)
            written += path.stat().st_size
    config = target / "config" / "ucgm-site.js"
    config.write_text(SITE_CONFIG, encoding="utf-8")
    return written + config.stat().st_size


def mathjax_url(prefix: str = "..") -> str:
    """The ``mathjax_url`` of nbconvert's HTML exporter for a page ``prefix`` below the root.

    Args:
        prefix: The path from the page's folder to the site's root (``".."`` for
            ``notebooks/<stem>.html``).
    """
    return f"{prefix}/{FOLDER}/MathJax.js?config={CONFIG}"
