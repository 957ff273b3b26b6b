"""The page of a kernel-free twin: one self-contained HTML file and its script.

The script (:data:`TWIN_SCRIPT`) reads the twin's JSON (format: :mod:`ucgm_lab.widgets.twin`),
builds the controls and redraws the figure of the chosen grid point with plotly.js (a local
copy, no CDN). A redraw where only points of traces on fixed-range axes and plain texts change
moves the points with ``Plotly.animate`` (no full redraw) and writes the texts in place; any
other change goes through ``Plotly.react``. ``window.__twin`` exposes the number of redraws,
the frame shown and the time from each key press or pointer press to the redrawn frame (for
the browser test).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .twin import Twin

__all__ = ["TWIN_SCRIPT", "write_twin_page"]

TWIN_SCRIPT = r"""
(() => {
  const D = JSON.parse(document.getElementById("twin-data").textContent);
  const state = {redraws: 0, latencies: [], key: null, t0: null, error: null};
  window.__twin = state;
  const decoded = new Map();
  function array(ref) {
    if (decoded.has(ref.$)) return decoded.get(ref.$);
    const e = D.pool[ref.$];
    const bin = atob(e.b);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    let out;
    if (e.t === "i8") {
      out = Array.from(new Int8Array(bytes.buffer));
    } else if (e.t === "i16") {
      const q = new Int16Array(bytes.buffer);
      out = new Array(q.length);
      for (let i = 0; i < q.length; i++) out[i] = q[i] === -32768 ? NaN : q[i] * e.s;
    } else {
      out = "data:image/png;base64," + e.b;
    }
    if (ref.shape && ref.shape.length === 2) {
      const [r, c] = ref.shape, rows = [];
      for (let i = 0; i < r; i++) rows.push(out.slice(i * c, (i + 1) * c));
      out = rows;
    }
    decoded.set(ref.$, out);
    return out;
  }
  function build(flat) {
    const root = {};
    for (const [path, raw] of Object.entries(flat)) {
      if (raw === null) continue;
      const value = raw && typeof raw === "object" && "$" in raw ? array(raw) : raw;
      const parts = path.split(".");
      let node = root;
      for (let i = 0; i < parts.length - 1; i++) {
        const p = parts[i];
        if (node[p] === undefined || node[p] === null) node[p] = /^\d+$/.test(parts[i + 1]) ? [] : {};
        node = node[p];
      }
      node[parts[parts.length - 1]] = value;
    }
    return root;
  }
  const inputs = [];
  const box = document.getElementById("twin-controls");
  D.controls.forEach((c, k) => {
    const wrap = document.createElement("label");
    wrap.className = "twin-control";
    wrap.append(c.label + " ");
    let input;
    const shown = document.createElement("output");
    if (c.kind === "range") {
      input = document.createElement("input");
      input.type = "range"; input.min = 0; input.max = c.labels.length - 1; input.step = 1;
      input.value = c.default;
    } else if (c.kind === "select") {
      input = document.createElement("select");
      c.labels.forEach((lab, i) => { const o = document.createElement("option"); o.value = i; o.textContent = lab; input.append(o); });
      input.value = c.default;
    } else {
      input = document.createElement("input");
      input.type = "checkbox"; input.checked = c.default === 1;
    }
    input.id = "control-" + c.name;
    input.dataset.control = c.name;
    wrap.append(input);
    if (c.kind === "range") wrap.append(shown);
    box.append(wrap);
    inputs.push({c, input, shown});
  });
  function index({c, input}) {
    return c.kind === "checkbox" ? (input.checked ? 1 : 0) : Number(input.value);
  }
  const plot = document.getElementById("twin-figure");
  const status = document.getElementById("twin-status");
  const config = {displaylogo: false, responsive: false};
  const ANIMATE = {transition: {duration: 0}, frame: {duration: 0, redraw: false}, mode: "immediate"};
  let shownFlat = null, busy = false, pending = false;
  function done(key) {
    requestAnimationFrame(() => {
      state.key = key;
      plot.dataset.frame = key;
      if (state.t0 !== null) state.latencies.push(performance.now() - state.t0);
      state.t0 = null;
      state.redraws += 1;
    });
  }
  function same(a, b) { return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b); }
  function value(raw) { return raw && typeof raw === "object" && "$" in raw ? array(raw) : raw; }
  function fixedAxes(flat, i) {
    // a trace may move without a full redraw only when both of its axes have fixed ranges
    return ["x", "y"].every((a) => {
      const ref = flat["data." + i + "." + a + "axis"] || a;
      const name = a + "axis" + ref.slice(1);
      return Array.isArray(flat["layout." + name + ".range"]);
    });
  }
  // The quick path: only x / y / marker colours of traces on fixed axes and texts changed -> Plotly.animate
  // without a redraw (what plotly's own animation sliders do) and a relayout of the texts.
  // Anything else -> Plotly.react with the whole figure.
  function quickPlan(before, after) {
    const traces = new Set(), texts = {};
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const k of keys) {
      if (same(before[k], after[k])) continue;
      let m = k.match(/^data\.(\d+)\.(x|y|marker\.color)$/);
      if (m && fixedAxes(after, +m[1]) && after[k] !== null && after[k] !== undefined) { traces.add(+m[1]); continue; }
      m = k.match(/^layout\.(title\.text|annotations\.(\d+)\.text)$/);
      if (m) { texts[m[2] === undefined ? "title.text" : "annotations[" + m[2] + "].text"] = after[k]; continue; }
      return null;
    }
    const types = new Set(Object.entries(after).filter(([k]) => /^data\.\d+\.type$/.test(k)).map(([, v]) => v));
    if ([...types].some((t) => t !== "scatter" && t !== "heatmap")) return null;
    return {traces: [...traces], texts};
  }
  // A title or panel title whose new text is plain (lines, no other markup) is written into the
  // SVG text plotly drew, and into plotly's layout, instead of a relayout: plotly relayouts
  // every annotation again for one changed text, the slowest part of a quick redraw.
  function setText(path, text) {
    if (typeof text !== "string") return false;
    const lines = text.split(/<br\s*\/?>/i);
    if (lines.some((l) => /[<>&]/.test(l))) return false;
    const m = path.match(/^annotations\[(\d+)\]\.text$/);
    const el = m
      ? plot.querySelector('.annotation[data-index="' + m[1] + '"] text.annotation-text')
      : plot.querySelector("text.gtitle");
    if (!el) return false;
    const spans = el.querySelectorAll("tspan.line");
    if (spans.length !== (lines.length > 1 ? lines.length : 0)) return false;
    if (spans.length) lines.forEach((l, k) => { spans[k].textContent = l; });
    else el.textContent = lines[0];
    if (m) {
      plot.layout.annotations[+m[1]].text = text;
      plot._fullLayout.annotations[+m[1]].text = text;
    } else {
      plot.layout.title = Object.assign({}, plot.layout.title, {text});
      plot._fullLayout.title.text = text;
    }
    return true;
  }
  async function draw(key, frame) {
    status.innerHTML = frame.status;
    if (D.kind === "image") {
      const img = document.getElementById("twin-image");
      await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = array(frame.image); });
      return;
    }
    const flat = Object.assign({}, D.base, frame.set);
    const plan = shownFlat === null ? null : quickPlan(shownFlat, flat);
    state.plan = plan === null ? "react" : "quick:" + plan.traces.join("+") + ":" + Object.keys(plan.texts).join("+");
    if (plan === null) {
      const fig = build(flat);
      await Plotly.react(plot, fig.data, fig.layout, config);
    } else {
      if (plan.traces.length) {
        // Every scatter trace takes part (plotly drops the DOM of scatter traces left out of an
        // animation), unchanged ones with no new values; the heatmaps, which an animation
        // without a redraw drops as well, keep their drawn images (they do not change here).
        const changed = new Set(plan.traces);
        const traces = [], data = [];
        for (let i = 0; i < plot.data.length; i++) {
          const type = plot.data[i].type || "scatter";
          if (type !== "scatter") continue;
          traces.push(i);
          if (!changed.has(i)) { data.push({}); continue; }
          const trace = {x: value(flat["data." + i + ".x"]), y: value(flat["data." + i + ".y"])};
          const color = flat["data." + i + ".marker.color"];
          if (color !== undefined && color !== null) trace.marker = {color: value(color)};
          data.push(trace);
        }
        const kept = [...plot.querySelectorAll(".heatmaplayer")].map((layer) => ({layer, parent: layer.parentNode, nodes: [...layer.childNodes]}));
        await Plotly.animate(plot, {data, traces}, ANIMATE);
        for (const {layer, parent, nodes} of kept) {
          if (layer.isConnected && layer.childNodes.length) continue;
          if (layer.isConnected) { nodes.forEach((n) => layer.appendChild(n)); continue; }
          if (!parent.isConnected) throw new Error("a subplot was redrawn");
          const now = parent.querySelector(":scope > .heatmaplayer");
          if (!now) parent.insertBefore(layer, parent.firstChild);
          else if (!now.childNodes.length) nodes.forEach((n) => now.appendChild(n));
        }
      }
      const rest = {};
      for (const [path, text] of Object.entries(plan.texts)) if (!setText(path, text)) rest[path] = text;
      if (Object.keys(rest).length) await Plotly.relayout(plot, rest);
    }
    shownFlat = flat;
  }
  let drawnKey = null;
  async function redraw() {
    // "input" and "change" both fire for one key press: the second finds the frame drawn.
    if (busy) { pending = true; return; }
    busy = true;
    try {
      let drew = false;
      do {
        pending = false;
        inputs.forEach((it) => { if (it.c.kind === "range") it.shown.textContent = it.c.labels[index(it)]; });
        const key = inputs.map(index).join(",");
        const frame = D.frames[key];
        if (!frame) { state.error = "no frame " + key; break; }
        if (key !== drawnKey) { await draw(key, frame); drawnKey = key; drew = true; }
      } while (pending);
      if (drew) done(drawnKey);
    } catch (e) {
      state.error = String(e);
    } finally {
      busy = false;
    }
  }
  document.addEventListener("keydown", () => { state.t0 = performance.now(); }, true);
  document.addEventListener("pointerdown", () => { state.t0 = performance.now(); }, true);
  inputs.forEach(({input}) => { input.addEventListener("input", redraw); input.addEventListener("change", redraw); });
  redraw();
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em; color: #222; }}
#twin-controls {{ display: flex; flex-wrap: wrap; gap: 0.6em 1.6em; margin: 0.6em 0; }}
.twin-control {{ display: inline-flex; align-items: center; gap: 0.4em; }}
.twin-control output {{ min-width: 3em; font-variant-numeric: tabular-nums; }}
#twin-status {{ min-height: 1.4em; color: #333; }}
.note {{ color: #555; max-width: 60em; }}
</style>
{plotly_tag}
</head>
<body>
<h2>{title}</h2>
<p class="note">{note}</p>
<div id="twin-controls"></div>
<div id="twin-status"></div>
{figure_tag}
<script id="twin-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def write_twin_page(twin: Twin, path: str | Path, plotly_src: str = "plotly.min.js") -> Path:
    """Write the twin as one HTML page.

    Args:
        twin: The precomputed twin.
        path: The page to write (its folder is created).
        plotly_src: URL of plotly.js relative to the page (a local copy: no CDN).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(twin.to_json(), separators=(",", ":"), allow_nan=False)
    data = data.replace("</", "<\\/")  # never closes the script element early
    if twin.kind == "plotly":
        plotly_tag = f'<script src="{html.escape(plotly_src)}"></script>'
        figure_tag = '<div id="twin-figure"></div>'
    else:
        plotly_tag = ""
        figure_tag = '<div id="twin-figure"><img id="twin-image" alt="explorer figure"></div>'
    page = _PAGE.format(
        title=html.escape(twin.title),
        note=twin.note,
        plotly_tag=plotly_tag,
        figure_tag=figure_tag,
        data=data,
        script=TWIN_SCRIPT,
    )
    path.write_text(page, encoding="utf-8")
    return path
