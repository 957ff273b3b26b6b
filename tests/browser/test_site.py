"""The static site in headless Chromium, opened from disk: no server, no kernel, no network.

Every request that is not file:// is blocked (``page.route``): a page that needs the network
fails. The notebook pages must typeset their formulas with the site's own MathJax.

Uses ``site/`` when it holds a build (``bash scripts/build_site.sh``) or ``UCGM_LAB_SITE``;
otherwise builds a test-sized site (``--quick`` grids, the explorer notebooks) in a temporary
folder first. Every control of every kernel-free explorer is moved with the keyboard: the
figure's data and its pixels must change, with no page error. The time from the key press to
the redrawn figure on screen is printed (median, p90), not asserted. Screenshots go to
``artifacts/browser/site_*.png``.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LATENCY
from .lab import ROOT, percentile

pytestmark = pytest.mark.browser

_ALL: list[float] = []  # every explorer's latencies, for the line over all of them
EXPLORER_NOTEBOOKS = ["10_transports", "11_consistency_ratio", "12_sampler", "30_images"]
LATENCY_MOVES = 4  # extra moves per control, back and forth, for the latency figures
# A fixed piece of JavaScript timed in the same page: the baseline that says how fast this
# machine ran JavaScript at the time (a shared, loaded machine runs it several times slower).
_BASELINE = """() => { const t = performance.now(); let s = 0;
  for (let i = 0; i < 2e7; i++) s += Math.sqrt(i);
  return [performance.now() - t, s]; }"""
_SIGNATURE = """() => {
  const gd = document.getElementById('twin-figure');
  const img = document.getElementById('twin-image');
  let text = img ? img.src : JSON.stringify([
    (gd.data || []).map(t => [t.x, t.y, t.marker && t.marker.color]),
    (gd.layout.annotations || []).map(a => a.text), gd.layout.title && gd.layout.title.text]);
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return text.length + ':' + h;
}"""


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built site: UCGM_LAB_SITE, else site/ if built, else a test-sized build."""
    explicit = os.environ.get("UCGM_LAB_SITE")
    if explicit:
        path = Path(explicit)
        if not (path / "index.html").exists():
            raise FileNotFoundError(f"UCGM_LAB_SITE={explicit} holds no index.html.")
        return path
    if (ROOT / "site" / "index.html").exists() and (ROOT / "site" / "explorers").exists():
        return ROOT / "site"
    from ucgm_lab.site import build_site

    out = tmp_path_factory.mktemp("site") / "site"
    report = build_site(out, quick=True, notebooks=EXPLORER_NOTEBOOKS, log=lambda _: None)
    print(report.summary())
    return out


# MathJax 2's blank font (url('about:blank'), for its font checks), refused from a file:// page
_BENIGN_CONSOLE = re.compile(r"Failed to load resource|ERR_|Access to font at 'about:blank'")


@pytest.fixture
def site_page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page offline: every request that leaves the disk is blocked and listed as an error;
    page errors and script errors are errors too (failed loads of the site's own files are
    not: :func:`test_notebook_pages_typeset_math_offline` checks those)."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))

    def offline(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            errors.append(f"network request: {route.request.url}")
            route.abort()

    def console(msg: Any) -> None:
        if msg.type == "error" and not _BENIGN_CONSOLE.search(msg.text):
            errors.append(f"console: {msg.text}")

    page.route("**/*", offline)
    page.on("console", console)
    try:
        yield page, errors
    finally:
        context.close()


def _explorers(site: Path) -> list[Path]:
    return sorted((site / "explorers").glob("*.html"))


def _press(page: Any, control: dict[str, Any], forward: bool = True) -> str:
    """Move one control by one step with the keyboard; returns the key pressed."""
    page.focus(f"#{control['id']}")
    if control["type"] == "checkbox":
        key = "Space"
    elif control["type"] == "range":
        at_end = control["value"] >= control["max"] if forward else control["value"] <= 0
        key = "ArrowRight" if forward != at_end else "ArrowLeft"
    else:
        at_end = control["value"] >= control["max"] if forward else control["value"] <= 0
        key = "ArrowDown" if forward != at_end else "ArrowUp"
    page.keyboard.press(key)
    return key


# Every trace with points is drawn (a scatter trace as one ".trace" group, a heatmap as one
# image): [scatter groups drawn, scatter traces with points, heatmap images, heatmap traces]
_DRAWN = """() => { const gd = document.getElementById('twin-figure');
  const data = gd.data || [];
  const heat = data.filter(t => t.type === 'heatmap').length;
  const full = data.filter(t => t.type !== 'heatmap' && t.x && t.x.length > 0).length;
  return [document.querySelectorAll('#twin-figure .scatterlayer .trace').length, full,
          document.querySelectorAll('#twin-figure .hm image').length, heat]; }"""


def _all_drawn(page: Any) -> bool:
    scatter, full, images, heatmaps = page.evaluate(_DRAWN)
    return scatter >= full and images == heatmaps


_CONTROLS = """() => [...document.querySelectorAll('[data-control]')].map(e => ({
  id: e.id, type: e.type === 'select-one' ? 'select' : e.type,
  value: e.type === 'checkbox' ? (e.checked ? 1 : 0) : Number(e.value),
  max: e.type === 'range' ? Number(e.max) : (e.options ? e.options.length - 1 : 1)}))"""


def _move_and_wait(page: Any, control: dict[str, Any], forward: bool = True) -> float:
    """Press a key on a control and wait for the redraw; returns the latency in seconds."""
    before = page.evaluate("window.__twin.redraws")
    _press(page, control, forward)
    page.wait_for_function(f"window.__twin.redraws > {before}", timeout=15000)
    return page.evaluate("window.__twin.latencies.at(-1)") / 1000


def test_site_has_pages(site: Path) -> None:
    assert (site / "index.html").exists()
    assert (site / "plotly.min.js").exists()
    assert len(_explorers(site)) >= 6, [p.name for p in _explorers(site)]
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    print(f"site {site}: {size / 2**20:.1f} MiB")
    assert size <= 80 * 2**20


@pytest.mark.parametrize(
    "name", ["transports", "transport_editor", "consistency", "sampler", "guidance", "kappa_rho"]
)
def test_every_control_moves_its_figure(
    site: Path, site_page: tuple[Any, list[str]], artifacts: Path, name: str
) -> None:
    page, errors = site_page
    path = site / "explorers" / f"{name}.html"
    assert path.exists(), f"{path} was not built"
    page.goto(path.as_uri())
    page.wait_for_function("window.__twin && window.__twin.redraws > 0", timeout=30000)
    figure = page.locator("#twin-figure")
    controls = page.evaluate(_CONTROLS)
    assert controls, "the page has no controls"
    assert _all_drawn(page), page.evaluate(_DRAWN)
    latencies = []
    for control in page.evaluate(_CONTROLS):
        key_before = page.evaluate("window.__twin.key")
        data_before = page.evaluate(_SIGNATURE)
        pixels_before = figure.screenshot()
        latencies.append(_move_and_wait(page, control))
        assert page.evaluate("window.__twin.key") != key_before, f"{control['id']}: same frame"
        assert page.evaluate(_SIGNATURE) != data_before, f"{control['id']}: same data"
        assert figure.screenshot() != pixels_before, f"{control['id']}: same pixels"
        assert page.evaluate("window.__twin.error") is None
        assert _all_drawn(page), f"{control['id']}: traces lost {page.evaluate(_DRAWN)}"
    # more moves for the latency figures: each control back and forth
    for control in page.evaluate(_CONTROLS):
        for k in range(LATENCY_MOVES):
            current = next(c for c in page.evaluate(_CONTROLS) if c["id"] == control["id"])
            latencies.append(_move_and_wait(page, current, forward=k % 2 == 0))
            assert _all_drawn(page), f"{control['id']}: traces lost {page.evaluate(_DRAWN)}"
    page.screenshot(path=str(artifacts / f"site_{name}.png"), full_page=True)
    assert not errors, errors
    median = statistics.median(latencies)
    baseline = statistics.median(page.evaluate(_BASELINE)[0] for _ in range(3))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = (
        f"site explorer {name:12s} {len(latencies):3d} moves: median {median * 1000:5.0f} ms, "
        f"p90 {percentile(latencies, 90) * 1000:5.0f} ms (key press to redrawn figure); "
        f"baseline loop {baseline:4.0f} ms, load {load:.1f}"
    )
    LATENCY.append(line)
    print(line)
    _ALL.extend(latencies)
    overall = (
        f"site explorers, all {len(_ALL):3d} moves: median "
        f"{statistics.median(_ALL) * 1000:5.0f} ms, p90 {percentile(_ALL, 90) * 1000:5.0f} ms"
    )
    LATENCY[:] = [x for x in LATENCY if not x.startswith("site explorers, all")] + [overall]


def test_notebook_pages_show_figures_and_explorers(
    site: Path, site_page: tuple[Any, list[str]], artifacts: Path
) -> None:
    page, errors = site_page
    page.goto((site / "index.html").as_uri())
    links = page.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.href)")
    assert any("explorers/" in h for h in links) and any("notebooks/" in h for h in links)
    assert page.locator("text=Glossary").count() > 0, "the landing page has no glossary"
    pages = sorted((site / "notebooks").glob("*.html"))
    assert pages
    for path in pages:
        page.goto(path.as_uri(), wait_until="load")
        broken = page.evaluate(
            "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length"
        )
        assert broken == 0, f"{path.name}: {broken} images not shown"
        text = page.inner_text("body")
        assert "VBox(" not in text and "HBox(" not in text, f"{path.name}: a widget as text"
        frames = page.locator("iframe").count()
        if path.stem in EXPLORER_NOTEBOOKS:
            assert frames >= 1, f"{path.name}: no kernel-free explorer"
    page.goto((site / "notebooks" / "12_sampler.html").as_uri(), wait_until="load")
    page.screenshot(path=str(artifacts / "site_notebook_12.png"))
    assert not errors, errors


# Resolves when MathJax has typeset the page (its startup and the typeset nbconvert queues),
# false when MathJax is missing; then the source element of every formula must have MathJax's
# output right before it (not its fast preview).
_TYPESET = """() => new Promise(resolve => {
  if (!window.MathJax || !MathJax.Hub) { resolve(false); return; }
  // the hook returns nothing: a returned callback would hold MathJax's startup
  MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => resolve(true)); });
})"""
_MATH = """() => MathJax.Hub.getAllJax().map(jax => {
  const out = jax.SourceElement().previousSibling;
  return out && /\\bMathJax(_Display)?\\b/.test(out.className || '') &&
    out.getBoundingClientRect().width > 0; })"""
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_INLINE_MATH = re.compile(r"(?<![$\\])\$([^$\n]+?)\$(?!\$)")


def _inline_math(notebook: Path, count: int = 5) -> list[str]:
    """The first ``count`` inline formulas ``$...$`` of a notebook's markdown, with their $."""
    import nbformat

    found: list[str] = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for tex in _INLINE_MATH.findall(_CODE.sub("", cell.source)):
                if f"${tex}$" not in found:
                    found.append(f"${tex}$")
    return found[:count]


def test_notebook_pages_typeset_math_offline(
    site: Path, site_page: tuple[Any, list[str]], artifacts: Path
) -> None:
    """Every notebook page typesets its formulas with the site's MathJax, the network blocked.

    The first inline formulas of each notebook's markdown must not be left as LaTeX source,
    and every file the page asks the site for must be there (except MathJax's TeX fonts of its
    MathML renderer, which its package does not ship: ucgm_lab/site/mathjax.py).
    """
    page, errors = site_page
    missing: list[str] = []

    def failed(request: Any) -> None:
        if (
            request.url.startswith("file:")
            and "/mathjax/fonts/HTML-CSS/TeX/otf/" not in request.url
        ):
            missing.append(request.url)

    page.on("requestfailed", failed)
    pages = sorted((site / "notebooks").glob("*.html"))
    assert pages
    checked, seconds = 0, []
    for path in pages:
        formulas = _inline_math(ROOT / "notebooks" / f"{path.stem}.ipynb")
        start = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load")
        assert page.evaluate(_TYPESET), f"{path.name}: MathJax did not load (window.MathJax)"
        seconds.append(time.perf_counter() - start)
        typeset = page.evaluate(_MATH)
        assert all(typeset), f"{path.name}: {typeset.count(False)} of {len(typeset)} not shown"
        text = page.inner_text("body")
        raw = [tex for tex in formulas if tex in text]
        assert not raw, f"{path.name}: formulas left as LaTeX source: {raw}"
        if formulas:
            assert typeset, f"{path.name}: no formula typeset"
            checked += 1
    assert checked, "no notebook page has inline formulas to check"
    assert not missing, f"files the pages ask for are not in the site: {missing}"
    assert not errors, errors
    page.goto(pages[0].as_uri(), wait_until="load")
    page.evaluate(_TYPESET)
    page.screenshot(path=str(artifacts / "site_math.png"))
    line = (
        f"site notebook pages offline: {len(pages)} pages ({checked} with formulas), load and "
        f"typeset median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
    )
    LATENCY.append(line)
    print(line)
