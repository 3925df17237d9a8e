// Shared helpers for the LoRA Workbench panels: DOM building, the pack's routes, formatting, styles.
// No side effects on import (the frontend loads every .js under web/ as a module).
import { api } from "../../scripts/api.js";

export const PREFIX = "/lora_workbench";

/** Build an element: el("div.lw-row", {title: "x"}, child, "text", ...). */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** GET/POST one of the pack's routes; resolves to {ok, status, data} (data.error holds the reason). */
export async function callRoute(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let res;
  try {
    res = await api.fetchApi(PREFIX + path, init);
  } catch (err) {
    return { ok: false, status: 0, data: { error: `ComfyUI did not answer (${err?.message ?? err})` } };
  }
  let data;
  try {
    data = await res.json();
  } catch {
    data = { error: `HTTP ${res.status}: the answer was not JSON` };
  }
  if (res.status === 404 && data && !data.error) data = { error: `HTTP 404 for ${path}` };
  return { ok: res.ok, status: res.status, data };
}

/** URL of one of the pack's GET routes with a query (for <img src>). */
export function routeUrl(path, query = {}) {
  const qs = new URLSearchParams(query).toString();
  return api.apiURL(PREFIX + path + (qs ? `?${qs}` : ""));
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

export function formatSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function formatLoss(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

export function formatPercent(x) {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

export function basename(p) {
  return String(p ?? "").split(/[\\/]/).pop();
}

/** A widget of a node by name (undefined when the input is not a widget). */
export function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

/** Grow the node to fit its widgets (never shrinks what the user made bigger). */
export function fitNode(node) {
  const want = node.computeSize?.();
  if (!want) return;
  const w = Math.max(node.size[0], want[0]);
  const h = Math.max(node.size[1], want[1]);
  if (w !== node.size[0] || h !== node.size[1]) node.setSize([w, h]);
  node.graph?.setDirtyCanvas?.(true, true);
}

/**
 * Add a DOM panel to a node; it is a view, not a value, so it is never saved in the workflow.
 * The panel asks for the height of its content (between `min` and `max` px) and widens the node to
 * `width` px so its table fits.
 */
export function addPanel(node, name, element, { min = 120, max = 520, width = 0 } = {}) {
  const w = node.addDOMWidget(name, "lora_workbench_panel", element, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => Math.max(min, Math.min(max, contentHeight(element) + 10)),
    getMaxHeight: () => max,
  });
  w.serialize = false; // also keep it out of widgets_values
  if (width && node.size[0] < width) node.setSize([width, node.size[1]]);
  // Content measured while the panel was off screen (hidden) reads as 0 px: grow once it lays out.
  let pending = false;
  const grow = new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; if (node.graph) fitNode(node); });
  });
  for (const c of element.children) grow.observe(c);
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    grow.disconnect();
    return onRemoved?.apply(this, args);
  };
  return w;
}

function contentHeight(element) {
  let h = 0;
  for (const c of element.children) h += c.offsetHeight + 4;
  return h;
}

const STYLE_ID = "lora-workbench-style";
const CSS = `
.lw-panel { box-sizing: border-box; width: 100%; height: 100%; overflow: auto; padding: 4px 6px;
  font: 12px/1.35 system-ui, sans-serif; color: var(--input-text, #ddd);
  background: var(--comfy-input-bg, #222); border: 1px solid var(--border-color, #444); border-radius: 6px; }
.lw-panel * { box-sizing: border-box; }
.lw-head { display: flex; align-items: center; gap: 6px; margin-bottom: 4px; flex-wrap: wrap; }
.lw-title { font-weight: 600; }
.lw-muted { color: var(--descrip-text, #999); }
.lw-badge { padding: 0 6px; border-radius: 8px; font-size: 11px; background: #555; color: #fff; }
.lw-badge.running, .lw-badge.on { background: #2e7d32; }
.lw-badge.starting { background: #8a6d00; }
.lw-badge.finished { background: #1565c0; }
.lw-badge.failed, .lw-badge.off.bad { background: #b71c1c; }
.lw-badge.cancelled { background: #6d4c41; }
.lw-spacer { flex: 1; }
.lw-btn { font: inherit; font-size: 11px; padding: 1px 8px; cursor: pointer; border-radius: 4px;
  color: var(--input-text, #ddd); background: var(--comfy-menu-bg, #333); border: 1px solid var(--border-color, #555); }
.lw-btn:disabled { opacity: .5; cursor: default; }
.lw-canvas { display: block; width: 100%; height: 150px; border-radius: 4px; background: rgba(0,0,0,.25); }
.lw-stats { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 2px 8px; margin: 4px 0; }
.lw-stat b { font-weight: 600; }
.lw-progress { height: 4px; background: rgba(255,255,255,.1); border-radius: 2px; overflow: hidden; }
.lw-progress > div { height: 100%; width: 0; background: #4fa3ff; transition: width .2s; }
.lw-samples { display: flex; gap: 4px; margin-top: 4px; overflow-x: auto; }
.lw-samples img { height: 64px; border-radius: 3px; background: #000; cursor: zoom-in; }
.lw-msg { margin-top: 3px; white-space: pre-wrap; word-break: break-word; }
.lw-msg.error { color: #ff8a80; }
.lw-table { width: 100%; border-collapse: collapse; }
.lw-table th { text-align: left; font-weight: 600; color: var(--descrip-text, #aaa); padding: 2px 2px;
  border-bottom: 1px solid var(--border-color, #444); white-space: nowrap; }
.lw-table td { padding: 2px 2px; border-bottom: 1px solid rgba(255,255,255,.06); vertical-align: middle; }
.lw-table td.num, .lw-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.lw-table tr.excluded td { opacity: .5; }
.lw-weight-cell { display: flex; align-items: center; gap: 3px; min-width: 0; }
.lw-table td.lw-name { max-width: 110px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lw-weight-cell input[type=range] { flex: 1; min-width: 36px; width: 100%; margin: 0; }
.lw-weight-cell input[type=number] { width: 46px; flex: none; font: inherit; color: inherit;
  background: rgba(0,0,0,.3); border: 1px solid var(--border-color, #555); border-radius: 3px; }
.lw-share { position: relative; min-width: 46px; height: 14px; background: rgba(255,255,255,.08); border-radius: 2px; }
.lw-share > .bar { position: absolute; left: 0; top: 0; bottom: 0; background: #4fa3ff88; }
.lw-share > .target { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #ffb74d; }
.lw-share > span { position: relative; padding-left: 3px; font-size: 11px; }
.lw-issues { margin: 4px 0 0; padding-left: 16px; }
.lw-issues li.error { color: #ff8a80; }
.lw-issues li.warning { color: #ffd180; }
.lw-chips { display: flex; flex-wrap: wrap; gap: 4px; margin: 3px 0; }
.lw-chip { padding: 0 6px; border-radius: 8px; background: rgba(255,255,255,.08); font-size: 11px; }
.lw-chip.bad { background: #b71c1c; color: #fff; }
.lw-dot { width: 8px; height: 8px; border-radius: 50%; display: inline-block; background: #777; }
.lw-dot.on { background: #4caf50; box-shadow: 0 0 4px #4caf50; }
.lw-list { margin: 2px 0; padding-left: 16px; max-height: 80px; overflow: auto; }
.lw-list li { word-break: break-all; }
/* the Training tab in the bottom panel */
.lw-tab { display: flex; gap: 8px; height: 100%; min-height: 0; padding: 6px; box-sizing: border-box;
  font: 12px/1.35 system-ui, sans-serif; color: var(--input-text, #ddd); }
.lw-tab * { box-sizing: border-box; }
.lw-tab-runs { width: 260px; flex: none; display: flex; flex-direction: column; min-height: 0; }
.lw-run-list { overflow: auto; flex: 1; display: flex; flex-direction: column; gap: 3px; }
.lw-run { text-align: left; font: inherit; color: inherit; cursor: pointer; padding: 3px 6px; border-radius: 4px;
  background: rgba(255,255,255,.04); border: 1px solid transparent; }
.lw-run.selected { border-color: #4fa3ff; background: rgba(79,163,255,.12); }
.lw-run-line { display: flex; gap: 6px; align-items: center; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.lw-tab-detail { flex: 1; min-width: 0; display: flex; flex-direction: column; min-height: 0; overflow: auto; }
.lw-tab-body { display: flex; gap: 8px; flex: 1; min-height: 0; }
.lw-tab-col { flex: 1; min-width: 0; display: flex; flex-direction: column; }
.lw-tab-chart { height: 140px; flex: none; }
.lw-log { flex: 1; min-height: 60px; max-height: 220px; overflow: auto; margin: 0; padding: 4px; font: 11px/1.3 ui-monospace, monospace;
  white-space: pre-wrap; word-break: break-all; background: rgba(0,0,0,.3); border-radius: 4px; }
.lw-label { margin: 4px 0 2px; color: var(--descrip-text, #999); }
.lw-where { font-size: 11px; word-break: break-all; }
.lw-files { display: flex; flex-direction: column; gap: 1px; max-height: 120px; overflow: auto; }
.lw-file { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.lw-file a { color: #4fa3ff; }
.lw-tab .lw-samples img { height: 96px; }
.lw-badge.stopped, .lw-badge.unknown { background: #6d4c41; }
/* the settings dialog rows */
.lw-setting { display: flex; flex-direction: column; gap: 3px; width: min(460px, 46vw); }
.lw-setting-row { display: flex; gap: 6px; }
.lw-setting-input { flex: 1; min-width: 0; font: 13px ui-monospace, monospace; padding: 4px 6px; border-radius: 4px;
  color: var(--p-inputtext-color, var(--input-text, #ddd)); background: var(--p-inputtext-background, rgba(0,0,0,.3));
  border: 1px solid var(--p-inputtext-border-color, var(--border-color, #555)); }
.lw-setting .lw-btn { font-size: 12px; padding: 2px 12px; }
.lw-setting-msg { font-size: 12px; line-height: 1.3; word-break: break-word; }
.lw-setting-msg.ok { color: #66bb6a; }
.lw-setting-msg.error { color: #ff8a80; }
.lw-setting-msg.note { color: #ffd180; }
.lw-setting-msg.muted { color: var(--descrip-text, #999); }
.lw-trainer-bar { height: 6px; border-radius: 3px; background: rgba(255,255,255,.1); overflow: hidden; }
.lw-trainer-bar > div { height: 100%; background: #1e88e5; transition: width .3s; }
.lw-trainer-line { font: 11px ui-monospace, monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  color: var(--descrip-text, #999); }
/* the caption editor (a dialog over the canvas, the same panel look as the weights editor) */
.lw-modal { position: fixed; inset: 0; z-index: 3000; display: flex; align-items: center; justify-content: center;
  background: rgba(0,0,0,.55); }
.lw-caption-editor { width: min(1280px, 95vw); height: 90vh; display: flex; flex-direction: column; gap: 2px;
  box-shadow: 0 8px 32px rgba(0,0,0,.6); }
.lw-caption-editor .lw-where { max-width: 40%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lw-cap-select, .lw-cap-input { font: inherit; color: inherit; background: rgba(0,0,0,.3); padding: 1px 4px;
  border: 1px solid var(--border-color, #555); border-radius: 3px; }
.lw-cap-input { width: 160px; }
.lw-btn.lw-primary:not(:disabled) { background: #1565c0; border-color: #1e88e5; color: #fff; }
.lw-cap-tags { max-height: 64px; overflow: auto; }
button.lw-chip { font: inherit; font-size: 11px; color: inherit; border: none; cursor: pointer; }
.lw-cap-grid { flex: 1; min-height: 0; overflow: auto; display: grid; gap: 6px; align-content: start;
  grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); }
.lw-cap-card { display: flex; flex-direction: column; gap: 3px; padding: 4px; border-radius: 4px;
  background: rgba(255,255,255,.04); border: 1px solid transparent; }
.lw-cap-card.missing { border-color: #b71c1c; }
.lw-cap-card.dirty { border-color: #ffb74d; }
.lw-cap-card img { width: 100%; aspect-ratio: 1; object-fit: contain; background: #111; border-radius: 3px; }
.lw-cap-name { display: flex; gap: 4px; align-items: center; font-size: 11px; min-width: 0; }
.lw-cap-name > span:first-child { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lw-cap-text { width: 100%; resize: vertical; font: 12px/1.3 system-ui, sans-serif; color: inherit;
  background: rgba(0,0,0,.3); border: 1px solid var(--border-color, #555); border-radius: 3px; padding: 2px 4px; }
.lw-cap-skipped { grid-column: 1 / -1; }
`;

export function injectStyle() {
  if (document.getElementById(STYLE_ID)) return;
  document.head.append(el("style", { id: STYLE_ID }, CSS));
}
