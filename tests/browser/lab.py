"""Drive JupyterLab in headless Chromium: open a notebook, Run All, find errors, move controls.

Used by the browser tests (``tests/browser``). JupyterLab runs from this Python environment on
127.0.0.1 (a free port, a random token, its own config, data, runtime, settings and workspace
folders in a temporary directory, autosave off) and serves a temporary root into which the
tests copy the notebooks, so nothing in the repository is ever written. Chromium is the
system's (``/usr/bin/chromium``, or ``UCGM_LAB_CHROMIUM``), driven by Playwright for Python.

An *explorer* is one widget output of a notebook (an ipywidgets box); its *controls* are the
sliders, check boxes, toggle buttons, drop-downs and text boxes inside it, and its *figure* is
the plotly plot (or image) inside its ``Output`` area. Moving a control must replace the figure
by one with other data and other pixels; :meth:`NotebookPage.move` waits for that and returns
the key-press-to-figure time measured in the page and the kernel-side time printed in the
explorer's status line.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import children

ROOT = Path(__file__).resolve().parents[2]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Console messages that mean a widget or a figure is broken.
BAD_CONSOLE = re.compile(
    r"Error displaying widget|model not found|Too many active WebGL contexts|CONTEXT_LOST"
    r"|context lost|Could not create a renderer|Class .* not found",
    re.I,
)
# Console errors that say nothing about the notebook (the network is closed in CI).
BENIGN_CONSOLE = re.compile(
    r"Failed to load resource|net::ERR_|favicon|/api/(news|update)|lab/api/translations",
    re.I,
)

INIT_SCRIPT = """
(() => {
  const state = {webgl: 0, lost: 0, t0: null, armed: false};
  window.__ucgm = state;
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
    const ctx = getContext.call(this, type, ...rest);
    if (ctx && /webgl/i.test(String(type)) && !this.__ucgmCounted) {
      this.__ucgmCounted = true;
      state.webgl += 1;
      this.addEventListener('webglcontextlost', () => { state.lost += 1; });
    }
    return ctx;
  };
  const arm = () => { if (state.armed) { state.t0 = performance.now(); state.armed = false; } };
  for (const type of ['keydown', 'mousedown', 'change']) {
    document.addEventListener(type, arm, true);
  }
})();
"""

# Page-side helpers, installed once per page (window.__ucgmLab).
PAGE_HELPERS = """
(() => {
  if (window.__ucgmLab) return;
  const hash = (s) => { let h = 5381; for (let i = 0; i < s.length; i++) h = ((h << 5) + h + s.charCodeAt(i)) | 0; return h; };
  const arr = (v) => (v && v.length !== undefined && typeof v !== 'string') ? Array.from(v) : v;
  const figureOf = (root) => {
    const out = root.querySelector('.widget-output');
    if (!out) return null;
    return out.querySelector('.js-plotly-plot') || out.querySelector('.jp-RenderedImage img');
  };
  const drawn = (el) => {
    if (!el) return false;
    if (el.tagName === 'IMG') return el.complete && el.naturalWidth > 0;
    const container = el.querySelector('.plot-container');
    return !!(el._fullLayout && el._fullData && container && container.style.display !== 'none'
              && el.querySelector('.main-svg .cartesianlayer, .main-svg .polarlayer, .main-svg .infolayer'));
  };
  const signature = (el) => {
    if (!el) return null;
    if (el.tagName === 'IMG') return 'img:' + hash(el.src);
    const data = (el.data || []).map((t) => [t.type, arr(t.x), arr(t.y), arr(t.z), t.visible]);
    const title = el.layout && el.layout.title;
    return 'plotly:' + hash(JSON.stringify([data, title && (title.text || title)]));
  };
  const statusTime = (root) => {
    const html = root.querySelectorAll('.widget-html');
    for (const h of html) {
      const m = /\\(([0-9.]+) s\\)\\s*$/.exec(h.innerText.trim());
      if (m) return parseFloat(m[1]);
    }
    return null;
  };
  // Widget outputs of notebook cells (not the outputs nested inside an Output widget).
  const widgetOutputs = () => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell .jp-OutputArea-output'))
    .filter((o) => !o.parentElement.closest('.widget-output')
                   && (o.querySelector('.jupyter-widgets') || /Error displaying widget|model not found/i.test(o.innerText || '')));
  window.__ucgmLab = {figureOf, drawn, signature, statusTime, widgetOutputs};
})();
"""


class BrowserTestError(AssertionError):
    """A notebook failed in the browser (an error output, a broken widget, a dead control)."""


@dataclass
class Move:
    """One control change and what it did."""

    explorer: int
    control: str
    kind: str
    seconds: float
    kernel_seconds: float | None
    pixels_changed: int


@dataclass
class Control:
    """A control of an explorer, as found in the page."""

    index: int
    kind: str  # slider, checkbox, toggle, dropdown, text
    label: str


@dataclass
class RunReport:
    """What Run All left in the page."""

    errors: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    widget_outputs: int = 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    """The system Chromium (``UCGM_LAB_CHROMIUM`` or the first of the usual names on PATH)."""
    explicit = os.environ.get("UCGM_LAB_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserTestError(
        "No Chromium found: install it (`apt-get install -y --no-install-recommends chromium "
        "fonts-dejavu-core`, as scripts/test.sh does) or set UCGM_LAB_CHROMIUM, or skip these "
        "tests locally with -m 'not browser'."
    )


class LabServer:
    """JupyterLab on 127.0.0.1 serving ``root`` with its own folders under ``home``.

    Args:
        root: The folder served (the tests copy notebooks into it).
        home: A temporary folder for the server's config, data, runtime, settings, workspaces.
        env: Extra environment variables for the server and its kernels.
    """

    def __init__(self, root: Path, home: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.home = home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        # A student's kernel draws matplotlib figures inline; the test command's MPLBACKEND=Agg
        # (for headless unit tests) would make them print as text inside the widgets.
        self.env.pop("MPLBACKEND", None)
        for name in ("config", "data", "runtime", "ipython", "settings", "workspaces"):
            (home / name).mkdir(parents=True, exist_ok=True)
        self.env.update(
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            IPYTHONDIR=str(home / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        self.env.update(env or {})
        self._write_settings(home / "settings")
        self.log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _write_settings(folder: Path) -> None:
        settings = {
            # Never write into the served files; every cell stays in the page (no windowing).
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
        }
        for plugin, values in settings.items():
            path = folder / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 90.0) -> LabServer:
        """Start the server and wait until it answers."""
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={self.home / 'settings'}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            "--LabServerApp.news_url=",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            "--allow-root",
        ]
        # Its own process group, SIGTERM when this thread dies (even by SIGKILL), stopped on
        # SIGTERM / SIGHUP of the tests and at exit: a killed test run leaves no server behind.
        self.process = children.start(
            cmd, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserTestError(f"JupyterLab exited at start; see {self.home}/server.log.")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=2
                ) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise BrowserTestError(f"JupyterLab did not answer in {timeout:.0f} s.")

    def trust(self, paths: list[Path]) -> None:
        """``jupyter trust`` these notebooks in this server's data folder (as setup_env.sh does)."""
        subprocess.run(
            [sys.executable, "-m", "jupyter", "trust", *map(str, paths)],
            env=self.env,
            check=True,
            capture_output=True,
        )

    def lab_url(self, path: str) -> str:
        """The URL that opens ``path`` (relative to the root) in a fresh workspace."""
        workspace = "w" + secrets.token_hex(4)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def stop(self) -> None:
        """Stop the server (and its kernels)."""
        if self.process is not None:
            children.stop(self.process, timeout=20)
        self.log.close()


def pixel_difference(before: bytes, after: bytes) -> int:
    """Number of pixels that differ between two PNG screenshots (different sizes: all)."""
    from PIL import Image, ImageChops

    a = Image.open(io.BytesIO(before)).convert("RGB")
    b = Image.open(io.BytesIO(after)).convert("RGB")
    if a.size != b.size:
        return max(a.size[0] * a.size[1], b.size[0] * b.size[1])
    import numpy as np

    diff = np.asarray(ImageChops.difference(a, b).convert("L"))
    return int((diff > 8).sum())


class NotebookPage:
    """One notebook open in JupyterLab in a Chromium page.

    Args:
        page: A Playwright page (with :data:`INIT_SCRIPT` added to its context).
        server: The server.
        path: The notebook, relative to the server's root.
        artifacts: Folder for screenshots.
    """

    def __init__(self, page: Any, server: LabServer, path: str, artifacts: Path) -> None:
        self.page = page
        self.server = server
        self.path = path
        self.name = Path(path).stem
        self.artifacts = artifacts
        self.console: list[str] = []
        self.expected_widgets = 0
        self.page_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _on_console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"{msg.type}: {msg.text}")

    # ------------------------------------------------------------------ opening and running
    def open(self, timeout: float = 120.0) -> None:
        """Open the notebook and wait until its kernel is idle."""
        self.page.goto(self.server.lab_url(self.path))
        self.page.wait_for_function(
            """() => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
                 const k = w && w.sessionContext && w.sessionContext.session
                           && w.sessionContext.session.kernel;
                 return !!(w && w.content && w.context.isReady && k && k.status === 'idle'); }""",
            timeout=timeout * 1000,
        )
        self.page.evaluate(PAGE_HELPERS)

    def close(self) -> None:
        """Shut the notebook's kernel down (kernels outlive the page otherwise)."""
        try:
            self.page.evaluate(
                "async () => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " if (w && w.sessionContext) await w.sessionContext.shutdown(); }"
            )
        except Exception:  # noqa: BLE001 - a page that is already gone has no kernel to stop
            pass

    def run_all(self, timeout: float = 300.0) -> RunReport:
        """Run All, wait for the kernel and the widgets, and collect error outputs."""
        # Clear every output and execution count first, so that "every code cell has run"
        # can only become true after this Run All.
        self.page.evaluate(
            """async () => { const c = window.jupyterapp.commands;
                 await c.execute('notebook:clear-all-cell-outputs');
                 window.jupyterapp.shell.currentWidget.content.widgets
                   .filter((x) => x.model.type === 'code').forEach((x) => { x.model.executionCount = null; });
                 await c.execute('notebook:run-all-cells'); }"""
        )
        self.page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                 if (w.sessionContext.session.kernel.status !== 'idle') return false;
                 const cells = w.content.widgets.filter((c) => c.model.type === 'code');
                 if (cells.some((c) => /\\*/.test(c.promptNode ? c.promptNode.textContent : ''))) return false;
                 const failed = cells.some((c) => c.model.outputs.toJSON().some((o) => o.output_type === 'error'));
                 return failed || cells.every((c) => c.model.executionCount !== null); }""",
            timeout=timeout * 1000,
            polling=250,
        )
        report = self.outputs()
        self.expected_widgets = report.widget_outputs
        self.wait_for_widgets(report.widget_outputs)
        return report

    def outputs(self) -> RunReport:
        """The error outputs, stderr text and number of widget outputs of every cell."""
        cells = self.page.evaluate(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                 return w.content.widgets.filter((c) => c.model.type === 'code')
                   .map((c) => c.model.outputs.toJSON()); }"""
        )
        report = RunReport()
        for i, outputs in enumerate(cells):
            for out in outputs:
                kind = out.get("output_type")
                if kind == "error":
                    report.errors.append(f"code cell {i}: {out.get('ename')}: {out.get('evalue')}")
                elif kind == "stream" and out.get("name") == "stderr":
                    text = "".join(out.get("text", ""))
                    report.stderr.append(f"code cell {i}: {text.strip()[:500]}")
                    if re.search(r"Traceback|Error\b|Exception\b", text):
                        report.errors.append(
                            f"code cell {i} wrote an error to stderr: {text[:500]}"
                        )
                if WIDGET_MIME in out.get("data", {}):
                    report.widget_outputs += 1
        return report

    def wait_for_widgets(self, expected: int, timeout: float = 60.0) -> None:
        """Wait until every widget output shows a rendered widget with a drawn figure."""
        try:
            self.page.wait_for_function(
                """(expected) => {
                     const outs = window.__ucgmLab.widgetOutputs();
                     if (outs.length < expected) return false;
                     for (const o of outs) {
                       if (/Error displaying widget|model not found/i.test(o.innerText)) return true;
                       const fig = window.__ucgmLab.figureOf(o);
                       if (o.querySelector('.widget-output') && !window.__ucgmLab.drawn(fig)) return false;
                     }
                     return true; }""",
                arg=expected,
                timeout=timeout * 1000,
                polling=200,
            )
        except Exception as exc:  # playwright's TimeoutError
            raise BrowserTestError(
                f"{self.name}: the widgets did not render within {timeout:.0f} s "
                f"({type(exc).__name__}); {self.describe_widgets()}"
            ) from None

    def describe_widgets(self) -> str:
        """A short text of what each widget output shows (for error messages)."""
        return self.page.evaluate(
            """() => window.__ucgmLab.widgetOutputs()
                 .map((o, i) => `widget ${i}: ${o.innerText.slice(0, 200).replace(/\\s+/g, ' ')}`).join(' | ')"""
        )

    def problems(self) -> list[str]:
        """Broken widgets, lost WebGL contexts, page errors and bad console messages so far."""
        found = list(self.page_errors)
        found += [m for m in self.console if BAD_CONSOLE.search(m)]
        found += [
            m for m in self.console if m.startswith("error:") and not BENIGN_CONSOLE.search(m)
        ]
        page = self.page.evaluate(
            """() => {
                 const bad = [];
                 document.querySelectorAll('.jp-OutputArea-output').forEach((o, i) => {
                   const text = o.innerText || '';
                   if (/Error displaying widget|model not found/i.test(text)) bad.push(`output ${i}: ${text.slice(0, 200)}`);
                 });
                 if (window.__ucgm.lost > 0) bad.push(`${window.__ucgm.lost} WebGL context(s) lost`);
                 return bad; }"""
        )
        shown = self.page.evaluate("() => window.__ucgmLab.widgetOutputs().length")
        if shown < self.expected_widgets:
            page.append(
                f"{self.expected_widgets} widget outputs, but only {shown} show a widget: "
                + self.describe_widgets()
            )
        return list(dict.fromkeys(found + page))

    def undrawn_figures(self) -> list[str]:
        """Plotly figures anywhere in the page that are not drawn (blank, or swapped for an image)."""
        return self.page.evaluate(
            """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                 .map((el, i) => [i, window.__ucgmLab.drawn(el), el.innerText.slice(0, 80)])
                 .filter((x) => !x[1]).map((x) => `figure ${x[0]} (${x[2]})`)"""
        )

    def webgl_contexts(self) -> int:
        """WebGL contexts created by the page so far."""
        return int(self.page.evaluate("() => window.__ucgm.webgl"))

    def screenshot(self, label: str) -> Path:
        """A full-page screenshot of the notebook into the artifacts folder."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        explorers = self.page.locator("[data-ucgm-explorer]")
        for e in range(explorers.count()):
            explorer = explorers.nth(e)
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(self.artifacts / f"{self.name}-{label}-explorer{e}.png"))
        return path

    # ------------------------------------------------------------------ explorers
    def explorers(self) -> list[list[Control]]:
        """Mark every explorer and its controls in the page and describe them."""
        return [
            [Control(**c) for c in controls]
            for controls in self.page.evaluate(
                """() => {
                 const outs = window.__ucgmLab.widgetOutputs()
                   .filter((o) => o.querySelector('.widget-output'));
                 return outs.map((o, e) => {
                   o.setAttribute('data-ucgm-explorer', String(e));
                   const controls = [];
                   const add = (el, kind, box) => {
                     el.setAttribute('data-ucgm-control', String(controls.length));
                     const clean = (t) => (t || '').replace(/\u200b/g, '').trim();
                     const label = box && box.querySelector('.widget-label');
                     controls.push({index: controls.length, kind,
                                    label: clean(label && label.innerText) || clean(box && box.innerText) || clean(el.innerText)});
                   };
                   o.querySelectorAll('.widget-slider, .widget-checkbox, .widget-toggle-buttons, .widget-dropdown, .widget-text').forEach((box) => {
                     if (box.classList.contains('widget-slider')) add(box.querySelector('.noUi-handle'), 'slider', box);
                     else if (box.classList.contains('widget-checkbox')) add(box.querySelector('input'), 'checkbox', box);
                     else if (box.classList.contains('widget-toggle-buttons')) add(box, 'toggle', box);
                     else if (box.classList.contains('widget-dropdown')) add(box.querySelector('select'), 'dropdown', box);
                     else add(box.querySelector('input'), 'text', box);
                   });
                   return controls;
                 }); }"""
            )
        ]

    def _explorer(self, e: int) -> Any:
        return self.page.locator(f'[data-ucgm-explorer="{e}"]')

    def _figure_locator(self, e: int) -> Any:
        return (
            self._explorer(e)
            .locator(".widget-output .js-plotly-plot, .widget-output .jp-RenderedImage img")
            .first
        )

    def slider_at_bound(self, e: int, control: Control, direction: int) -> bool:
        """True when a slider cannot move further in ``direction`` (+1 right, -1 left)."""
        handle = self._explorer(e).locator(f'[data-ucgm-control="{control.index}"]')
        now = float(handle.get_attribute("aria-valuenow"))
        bound = float(handle.get_attribute("aria-valuemax" if direction > 0 else "aria-valuemin"))
        return abs(now - bound) < 1e-12

    def move(self, e: int, control: Control, direction: int = 1, timeout: float = 20.0) -> Move:
        """Change one control as a learner would and wait for a new, different figure.

        Raises:
            BrowserTestError: If no new figure appears, or it has the same data or pixels.
        """
        explorer = self._explorer(e)
        figure = self._figure_locator(e)
        figure.scroll_into_view_if_needed()
        before_png = figure.screenshot()
        before = self.page.evaluate(
            """(e) => { const root = document.querySelector(`[data-ucgm-explorer="${e}"]`);
                 const fig = window.__ucgmLab.figureOf(root);
                 fig.setAttribute('data-ucgm-old', '1');
                 window.__ucgm.t0 = null; window.__ucgm.armed = true;
                 return window.__ucgmLab.signature(fig); }""",
            e,
        )
        target = explorer.locator(f'[data-ucgm-control="{control.index}"]')
        if control.kind == "slider":
            target.focus()
            target.press("ArrowRight" if direction > 0 else "ArrowLeft")
        elif control.kind == "checkbox":
            target.click()
        elif control.kind == "toggle":
            target.locator(".widget-toggle-button:not(.mod-active)").first.click()
        elif control.kind == "dropdown":
            options = target.evaluate("(s) => Array.from(s.options).map((o) => o.value)")
            current = target.evaluate("(s) => s.value")
            others = [o for o in options if o != current]
            target.select_option(others[-1])
        elif control.kind == "text":
            value = target.input_value()
            target.fill(_new_text(value))
            target.press("Enter")
        else:  # pragma: no cover
            raise ValueError(control.kind)
        try:
            handle = self.page.wait_for_function(
                """(e) => { const root = document.querySelector(`[data-ucgm-explorer="${e}"]`);
                     const fig = window.__ucgmLab.figureOf(root);
                     if (!fig || fig.hasAttribute('data-ucgm-old') || !window.__ucgmLab.drawn(fig)) return null;
                     return {t: performance.now() - window.__ucgm.t0,
                             signature: window.__ucgmLab.signature(fig)}; }""",
                arg=e,
                timeout=timeout * 1000,
                polling="raf",
            )
        except Exception:  # playwright's TimeoutError
            html = self._explorer(e).locator(".widget-html")
            status = html.last.inner_text() if html.count() else ""
            raise BrowserTestError(
                f"{self.name}: moving {control.kind} '{control.label}' of explorer {e} "
                f"drew no new figure within {timeout:.0f} s (the control changes nothing); "
                f"the status line says: {status!r}"
            ) from None
        result = handle.json_value()
        # The status line arrives with the figure; give it a moment to settle.
        self.page.wait_for_timeout(30)
        kernel = self.page.evaluate(
            '(e) => window.__ucgmLab.statusTime(document.querySelector(`[data-ucgm-explorer="${e}"]`))',
            e,
        )
        after_png = self._figure_locator(e).screenshot()
        if result["signature"] == before:
            raise BrowserTestError(
                f"{self.name}: moving {control.kind} '{control.label}' of explorer {e} redrew "
                "the same figure data (the control changes nothing)."
            )
        changed = pixel_difference(before_png, after_png)
        if changed == 0:
            raise BrowserTestError(
                f"{self.name}: moving {control.kind} '{control.label}' of explorer {e} left "
                "every pixel of the figure unchanged."
            )
        return Move(e, control.label, control.kind, result["t"] / 1000.0, kernel, changed)


def _new_text(value: str) -> str:
    """Another valid value for a text box: numbers get their last one scaled, formulas a factor."""
    parts = [p for p in value.replace(",", " ").split() if p]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return f"({value}) * (1 + t / 2)"
    numbers[-1] = round(numbers[-1] * 0.8, 6)
    return ", ".join(f"{n:g}" for n in numbers)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
