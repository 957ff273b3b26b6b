"""Build the static site: the notebooks as pages, the kernel-free explorers, a landing page.

``python -m ucgm_lab.site build --out site`` (``bash scripts/build_site.sh``) writes::

    site/index.html              the learning path and the glossary (from README.md and
                                 notebooks/README.md, read at build time)
    site/notebooks/<stem>.html   every notebook with its stored outputs (nbconvert, lab template)
    site/explorers/<name>.html   the kernel-free explorers (ucgm_lab.widgets.twin)
    site/plotly.min.js           plotly.js from the installed plotly package (no CDN)
    site/mathjax/                MathJax 2.7 from the jupyter-server-mathjax package (no CDN)

The notebook pages show the stored outputs: every plotly figure through its stored PNG, every
widget explorer through its stored PNG and, right below, its kernel-free twin in a frame. Other
widget outputs (progress bars) are dropped: a static page cannot draw them.

Math on the notebook pages is typeset by the site's own copy of MathJax
(:mod:`~ucgm_lab.site.mathjax`), and the pages leave out nbconvert's require.js, which no stored
output uses: the site needs nothing from the network (file:// works, offline too).
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..widgets.twin import write_twin_page
from .explorers import TWINS, TwinSpec, build_twin
from .mathjax import copy_mathjax, mathjax_source, mathjax_url

__all__ = [
    "SITE_MARKER",
    "BuildReport",
    "build_site",
    "landing_markdown",
    "landing_parts",
    "notebook_page",
]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SITE_MARKER = ".ucgm-lab-site"
"""File that marks a folder as a built site: only such a folder is emptied by a rebuild."""

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BuildReport:
    """What a build wrote.

    Attributes:
        out: The site folder.
        pages: Notebook pages written.
        frames: Explorer name -> precomputed frames.
        seconds: Explorer name (and ``"notebooks"``, ``"total"``) -> build seconds.
        bytes: Total size of the site.
        mathjax_bytes: Size of its copy of MathJax (``site/mathjax/``).
    """

    out: Path
    pages: list[str] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: int = 0
    mathjax_bytes: int = 0

    def summary(self) -> str:
        """A few lines: the size, each explorer's frames and seconds, the total time."""
        lines = [
            f"site: {self.out} ({self.bytes / 2**20:.1f} MiB), {len(self.pages)} notebook pages",
            f"  mathjax: {self.mathjax_bytes / 2**20:.1f} MiB",
        ]
        for name, frames in self.frames.items():
            lines.append(f"  explorer {name}: {frames} frames in {self.seconds[name]:.0f} s")
        lines.append(f"  notebooks: {self.seconds.get('notebooks', 0):.0f} s")
        lines.append(f"  total: {self.seconds.get('total', 0):.0f} s")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- landing page
def _sections(markdown: str, pattern: str) -> list[str]:
    """Markdown sections whose heading matches ``pattern`` (with their subsections)."""
    lines = markdown.splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^(#{1,6})\s+(.*)$", lines[i])
        if m and re.search(pattern, m.group(2), re.IGNORECASE):
            level, j = len(m.group(1)), i + 1
            while j < len(lines):
                n = re.match(r"^(#{1,6})\s", lines[j])
                if n and len(n.group(1)) <= level:
                    break
                j += 1
            found.append("\n".join(lines[i:j]))
            i = j
        else:
            i += 1
    return found


def landing_parts(root: Path = ROOT) -> tuple[str, str]:
    """The landing page's markdown, read at build time: two parts.

    The learning path and the glossary (README.md), and the suggested order of the notebooks
    (notebooks/README.md).

    Raises:
        ValueError: When README.md has no section about learning and no glossary.
    """
    readme = (root / "README.md").read_text(encoding="utf-8")
    notebooks = (root / "notebooks" / "README.md").read_text(encoding="utf-8")
    learn = _sections(readme, r"\blearn")
    glossary = _sections(readme, r"glossary")
    if not learn and not glossary:
        raise ValueError(
            "README.md has no section whose heading mentions 'learn' or 'glossary': the "
            "landing page takes the learning path and the glossary from there."
        )
    parts = list(learn)
    if glossary and not any(glossary[0] in p for p in parts):
        parts += glossary
    order = _sections(notebooks, r"order|path") or [notebooks]
    return "\n\n".join(parts), "\n\n".join(order)


def landing_markdown(root: Path = ROOT) -> str:
    """The landing page's markdown in one piece (see :func:`landing_parts`)."""
    return "\n\n".join(landing_parts(root))


def _markdown_html(markdown: str) -> str:
    from nbconvert.filters import markdown2html_mistune

    return markdown2html_mistune(markdown)


def _fix_links(
    text: str, here: str, repo_url: str | None = None, source_dir: str | None = None
) -> str:
    """Links to notebooks point to their pages (``here``: the page's folder, "" or "notebooks").

    Links to other repository files (docs, README) are not part of the site: with
    ``repo_url`` (e.g. ``https://github.com/OWNER/REPO/blob/main``) they point there, else they
    are left as they are. ``source_dir``: the folder, in the repository, of the markdown the
    links were written in (default: ``here``).
    """
    base = here if source_dir is None else source_dir

    def notebook(m: re.Match) -> str:
        stem = m.group(2)
        target = f"{stem}.html" if here == "notebooks" else f"notebooks/{stem}.html"
        return f'{m.group(1)}"{target}{m.group(3) or ""}"'

    text = re.sub(
        r'(href=)"(?:\.\./)?(?:notebooks/)?([0-9][0-9A-Za-z_]*)\.ipynb(#[^"]*)?"', notebook, text
    )
    if repo_url:

        def repository(m: re.Match) -> str:
            target = posixpath.normpath(posixpath.join(base, m.group(1)))
            if target.startswith(".."):
                return m.group(0)
            return f'href="{repo_url.rstrip("/")}/{target}{m.group(2) or ""}"'

        text = re.sub(
            r'href="(?!https?:|mailto:|#|data:)([^"#]+?\.(?:md|py|sh|toml|yml|yaml|txt))(#[^"]*)?"',
            repository,
            text,
        )
    # `code` names of notebooks in the tables become links as well
    prefix = "" if here == "notebooks" else "notebooks/"
    return re.sub(
        r"<code>([0-9][0-9A-Za-z_]*)\.ipynb</code>",
        lambda m: f'<a href="{prefix}{m.group(1)}.html"><code>{m.group(1)}.ipynb</code></a>',
        text,
    )


_LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ucgm-lab: learn UCGM without installing</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       line-height: 1.5; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
code {{ background: #f4f4f4; padding: 0 0.2em; }}
</style></head><body>
<h1>ucgm-lab: Unified Continuous Generative Models, explained in notebooks</h1>
<p>Every notebook below is shown with the outputs of its full run. The explorers move without a
kernel: their figures were computed in advance from the same models.</p>
<h2>Explorers (no install)</h2>
<ul>
{explorers}
</ul>
<h2>Notebooks</h2>
<ul>
{notebooks}
</ul>
{body}
</body></html>
"""


# ----------------------------------------------------------------------------- notebook pages
def _twin_for(cell_source: str, stem: str, specs: Sequence[TwinSpec]) -> TwinSpec | None:
    for spec in specs:
        if spec.notebook == stem and spec.marker in cell_source:
            return spec
    return None


def _static_outputs(outputs: list[dict[str, Any]], twin: TwinSpec | None) -> list[dict[str, Any]]:
    """Outputs a static page can show: widget views become their PNG (and the twin's frame)."""
    shown: list[dict[str, Any]] = []
    for out in outputs:
        data = out.get("data", {})
        if (
            out.get("output_type") not in ("display_data", "execute_result")
            or WIDGET_MIME not in data
        ):
            shown.append(out)
            continue
        rest = {k: v for k, v in data.items() if k not in (WIDGET_MIME, "text/plain")}
        if rest:
            shown.append({"output_type": "display_data", "data": rest, "metadata": {}})
        if twin is not None:
            shown.append(_twin_output(twin))
            twin = None  # once per cell
    if twin is not None:
        shown.append(_twin_output(twin))
    return shown


def _twin_output(spec: TwinSpec) -> dict[str, Any]:
    src = f"../explorers/{spec.name}.html"
    height = 640 if spec.kind == "plotly" else 480
    block = (
        f'<div class="ucgm-twin"><p><b>Move it without a kernel:</b> '
        f'<a href="{src}">{html.escape(spec.title)}</a> (precomputed)</p>'
        f'<iframe src="{src}" title="{html.escape(spec.title)}" loading="lazy" '
        f'style="width:100%;height:{height}px;border:1px solid #ddd"></iframe></div>'
    )
    return {"output_type": "display_data", "data": {"text/html": block}, "metadata": {}}


# nbconvert's lab template, less its <script> for require.js from a CDN (no stored output uses it)
_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
"""


def notebook_page(
    path: Path, specs: Sequence[TwinSpec] = TWINS, repo_url: str | None = None
) -> str:
    """One notebook as HTML (nbconvert, lab template) with the widget outputs made static.

    The page loads MathJax from the site (``../mathjax/``, see :func:`copy_mathjax`) and
    nothing from the network.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)  # no widget manager on a static page
    for cell in nb.cells:
        if cell.cell_type == "code":
            twin = _twin_for(cell.source, path.stem, specs)
            cell.outputs = [nbformat.from_dict(o) for o in _static_outputs(cell.outputs, twin)]
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"ucgm_site.html.j2": _PAGE_TEMPLATE})],
        template_file="ucgm_site.html.j2",
        mathjax_url=mathjax_url(".."),
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    return _fix_links(body, "notebooks", repo_url)


# ----------------------------------------------------------------------------- the build
def _clear(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{out} is a file; give a folder for the site.")
        if any(out.iterdir()) and not (out / SITE_MARKER).exists():
            raise ValueError(
                f"{out} is not empty and was not built by ucgm-lab (no {SITE_MARKER}); "
                "give an empty or new folder."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / SITE_MARKER).write_text("built by python -m ucgm_lab.site\n", encoding="utf-8")


def build_site(
    out: str | Path = "site",
    quick: bool = False,
    notebooks: Sequence[str] | None = None,
    explorers: Sequence[str] | None = None,
    root: Path = ROOT,
    log: Callable[[str], None] = print,
    repo_url: str | None = None,
) -> BuildReport:
    """Build the static site.

    Args:
        out: The site folder (emptied first if it holds an earlier build; another non-empty
            folder is refused).
        quick: Test-sized explorer grids (a few values per control).
        notebooks: Notebook stems to render (default: every ``notebooks/*.ipynb``).
        explorers: Explorer names to build (default: all of :data:`TWINS`).
        root: The repository root.
        log: Progress messages.
        repo_url: Where links to repository files (docs, README) point, e.g.
            ``https://github.com/OWNER/REPO/blob/main`` (default: left relative).

    Returns:
        A :class:`BuildReport`.

    Raises:
        ValueError: For an unknown notebook or explorer name, or an ``out`` folder that holds
            something else.
    """
    import plotly

    start = time.perf_counter()
    all_notebooks = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
    wanted_nb = list(notebooks) if notebooks is not None else all_notebooks
    unknown = sorted(set(wanted_nb) - set(all_notebooks))
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; the notebooks are {all_notebooks}.")
    names = [s.name for s in TWINS]
    wanted_ex = list(explorers) if explorers is not None else names
    unknown = sorted(set(wanted_ex) - set(names))
    if unknown:
        raise ValueError(f"unknown explorers {unknown}; the explorers are {names}.")
    specs = [s for s in TWINS if s.name in wanted_ex]
    landing = landing_parts(root)  # checked before the long work
    mathjax = mathjax_source()

    out = Path(out)
    _clear(out)
    report = BuildReport(out=out)
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copyfile(js, out / "plotly.min.js")
    report.mathjax_bytes = copy_mathjax(out, mathjax)

    for spec in specs:
        t0 = time.perf_counter()
        twin = build_twin(spec, quick=quick)
        write_twin_page(twin, out / "explorers" / f"{spec.name}.html", "../plotly.min.js")
        report.frames[spec.name] = len(twin.frames)
        report.seconds[spec.name] = time.perf_counter() - t0
        log(f"explorer {spec.name}: {len(twin.frames)} frames, {report.seconds[spec.name]:.0f} s")

    t0 = time.perf_counter()
    (out / "notebooks").mkdir()
    for stem in wanted_nb:
        page = notebook_page(root / "notebooks" / f"{stem}.ipynb", specs, repo_url)
        (out / "notebooks" / f"{stem}.html").write_text(page, encoding="utf-8")
        report.pages.append(stem)
        log(f"notebook {stem}")
    report.seconds["notebooks"] = time.perf_counter() - t0

    explorer_items = "\n".join(
        f'<li><a href="explorers/{s.name}.html">{html.escape(s.title)}</a></li>' for s in specs
    )
    notebook_items = "\n".join(
        f'<li><a href="notebooks/{stem}.html">{stem}</a></li>' for stem in report.pages
    )
    body = _fix_links(_markdown_html(landing[0]), "", repo_url) + _fix_links(
        _markdown_html(landing[1]), "", repo_url, source_dir="notebooks"
    )
    (out / "index.html").write_text(
        _LANDING.format(explorers=explorer_items, notebooks=notebook_items, body=body),
        encoding="utf-8",
    )
    (out / "build.json").write_text(
        json.dumps({"frames": report.frames, "seconds": report.seconds, "quick": quick}, indent=1),
        encoding="utf-8",
    )
    report.seconds["total"] = time.perf_counter() - start
    report.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return report
