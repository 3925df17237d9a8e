// The weights editor on DatasetSubsetWeights: one row per subset with its image count, a weight
// slider, and the repeats and share that weight gives. The numbers come from
// POST /lora_workbench/dataset/preview: the Python core is the one place that chooses repeats; this
// editor only edits `Subject: weight` lines of the node's `weights` widget (which the workflow saves)
// and, when a slider moves, switches the node's `repeats` widget to `weights`.
import { openCaptionEditor } from "./caption_editor.js";
import {
  addPanel, callRoute, debounce, el, fitNode, formatPercent, injectStyle, widget,
} from "./lw_common.js";

export const NODE_TYPE = "DatasetSubsetWeights";
const WEIGHTS = "weights";
const REPEATS = "repeats";
// Widgets whose change alters the preview (missing ones are skipped).
const INPUTS = ["project_folder", "project", "project_dir", "width", "height", "resolution", "enable_bucket", "batch_size", "epochs",
  "max_items_per_epoch", REPEATS, "target_steps", "wrong_size", "caption_extension", "folder_repeats",
  "missing_caption"];
const SLIDER_MAX = 4;
const editors = new Set();

const rowKey = (s) => (s.is_reg ? `reg/${s.name}` : s.name);

function formatWeight(v) {
  return String(Math.round(Number(v) * 100) / 100);
}

/** The subject a weights line names (`3_Subject: 2`, `Subject = 2`; comments dropped), or null. */
function lineSubject(line) {
  const text = line.replace(/(^|\s)#.*$/, "").trim();
  const sep = Math.max(text.lastIndexOf(":"), text.lastIndexOf("="));
  if (sep <= 0) return null;
  const key = text.slice(0, sep).trim();
  const m = /^(\d+)_(.+)$/.exec(key);
  return (m ? m[2] : key).trim(); // subjects match with surrounding spaces ignored, as in weights.py
}

/**
 * Set the weight of one subset in the weights text: the line naming it is rewritten (its comment
 * kept), or `Name: x` is appended; every other line stays. `effective` (the preview's weights per
 * subset) replaces a JSON-object text, which has no lines to edit.
 */
export function setWeightLine(text, name, value, effective = {}) {
  const key = String(name).trim();
  const line = `${key}: ${formatWeight(value)}`;
  const src = String(text ?? "");
  if (src.trim().startsWith("{")) {
    const all = { ...effective, [name]: Number(value) };
    return Object.entries(all).map(([k, v]) => `${k}: ${formatWeight(v)}`).join("\n");
  }
  const lines = src.split("\n");
  const at = lines.findIndex((l) => lineSubject(l) === key);
  if (at >= 0) {
    const comment = /(^|\s)(#.*)$/.exec(lines[at]);
    lines[at] = comment ? `${line}  ${comment[2]}` : line;
  } else {
    while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
    lines.push(line);
  }
  return lines.join("\n");
}

function value(node, name, fallback) {
  const w = widget(node, name);
  return w === undefined ? fallback : w.value;
}

/**
 * A workflow saved before the `repeats` widget existed has fewer widget values: the frontend leaves
 * the new widget at its default (`folders`). Such a workflow with weights typed in trained by those
 * weights, so it gets `weights`; one with an empty weights text gets `folders`. `widgetsValues` is
 * the saved array (UI format keeps widget values by position).
 */
export function migrateRepeats(node, widgetsValues) {
  const w = widget(node, REPEATS);
  if (!w || !Array.isArray(widgetsValues)) return false;
  const saved = (node.widgets || []).filter((x) => x.serialize !== false);
  const at = saved.indexOf(w);
  if (at < 0 || widgetsValues.length > at) return false; // saved with the widget: keep its value
  const text = String(value(node, WEIGHTS, "") ?? "");
  w.value = text.trim() ? "weights" : "folders";
  return true;
}

/** The weights text to start from when a slider moves while repeats is not `weights`: every subset the
 * weight that gives its current share (the preview's `weights`), so only the moved one changes. */
export function seedWeightsText(text, effective) {
  let out = String(text ?? "");
  const named = new Set(out.split("\n").map(lineSubject).filter(Boolean));
  for (const [name, v] of Object.entries(effective || {})) {
    if (!named.has(String(name).trim())) out = setWeightLine(out, name, v, effective);
  }
  return out;
}

/** What a subset's count cell shows: the number of files, a film icon for a video subset, and a
 * title with the videos' frame range and frame rate (the scan's `kind`, `videos`, `frames`, `fps`). */
export function mediaCell(s) {
  const count = s.images ?? s.image_count;
  const text = count === undefined || count === null ? "–" : String(count);
  if (s.kind !== "video") return { text, video: false, title: `${text} image(s)` };
  const [low, high] = Array.isArray(s.frames) ? s.frames : [0, 0];
  const frames = !high ? "frames not read" : low === high ? `${low} frames` : `${low}–${high} frames`;
  const fps = (s.fps || []).map((f) => `${f}`).join(", ");
  const title = `${s.videos ?? count} video(s), ${frames}${fps ? `, ${fps} fps` : ""}; each is one item per repeat`;
  return { text: `${text} \u{1F39E}`, video: true, title };
}

class WeightsEditor {
  constructor(node) {
    injectStyle();
    this.node = node;
    this.seq = 0;
    this.rows = new Map(); // subset name -> {tr, range, number, repeats, share, images}
    this.writing = false;
    this.result = null;
    this.state = el("span.lw-muted", {}, "");
    this.refreshBtn = el("button.lw-btn", { type: "button", onclick: () => this.preview() }, "Refresh");
    this.captionsBtn = el("button.lw-btn", { type: "button", "data-role": "open-captions", onclick: () => this.openCaptions(),
      title: "Open the caption editor on this project: thumbnails with their captions, bulk tag actions, tag frequency" },
    "Captions…");
    this.body = el("tbody");
    this.table = el("table.lw-table", {},
      el("thead", {}, el("tr", {},
        el("th", {}, "Subset"), el("th.num", { title: "Images, or videos (\u{1F39E}) in a video subset: each is one item per repeat" }, "Images"), el("th", {}, "Weight"),
        el("th.num", {}, "Repeats"), el("th", { title: "Share of the epoch's items (bar); the marker is the share the weight asks for" }, "Share"))),
      this.body);
    this.summary = el("div.lw-muted", { "data-role": "summary" });
    this.keywords = el("div.lw-muted", { "data-role": "keywords" });
    this.issues = el("ul.lw-issues", { "data-role": "issues" });
    this.msg = el("div.lw-msg", { "data-role": "message" });
    this.root = el("div.lw-panel.lw-weights-editor", { "data-node-type": NODE_TYPE },
      el("div.lw-head", {}, el("span.lw-title", {}, "Subset weights"), this.state, el("span.lw-spacer"), this.captionsBtn, this.refreshBtn),
      this.msg, this.table, this.summary, this.keywords, this.issues);
    this.widget = addPanel(node, "lora_workbench_weights_editor", this.root, { min: 110, max: 480, width: 500 });
    this.schedule = debounce(() => this.preview(), 250);
    this.watchInputs();
    const onConfigure = node.onConfigure;
    node.onConfigure = function (info, ...rest) {
      const r = onConfigure?.apply(this, [info, ...rest]);
      migrateRepeats(node, info?.widgets_values);
      return r;
    };
    editors.add(this);
    const onRemoved = node.onRemoved;
    node.onRemoved = (...args) => {
      editors.delete(this);
      this.schedule.cancel();
      return onRemoved?.apply(node, args);
    };
  }

  watchInputs() {
    for (const name of [WEIGHTS, ...INPUTS]) {
      const w = widget(this.node, name);
      if (!w) continue;
      const orig = w.callback;
      const editor = this;
      w.callback = function (...args) {
        const r = orig?.apply(this, args);
        if (!editor.writing) editor.schedule();
        return r;
      };
    }
  }

  request() {
    const n = this.node;
    const width = value(n, "width", value(n, "resolution", 512));
    return {
      project: String(value(n, "project_folder", value(n, "project", value(n, "project_dir", ""))) ?? ""),
      weights: String(value(n, WEIGHTS, "") ?? ""),
      width: Number(width),
      height: Number(value(n, "height", width)),
      enable_bucket: Boolean(value(n, "enable_bucket", true)),
      batch_size: Number(value(n, "batch_size", 1)),
      epochs: Number(value(n, "epochs", 1)),
      max_items_per_epoch: Number(value(n, "max_items_per_epoch", 0)) || null,
      repeats: value(n, REPEATS, null),
      target_steps: Number(value(n, "target_steps", 0)) || 0,
      wrong_size: String(value(n, "wrong_size", "bucket")),
      caption_extension: String(value(n, "caption_extension", ".txt")),
      folder_repeats: Number(value(n, "folder_repeats", 1)) || 1,
      missing_caption: String(value(n, "missing_caption", "error")),
    };
  }

  openCaptions() {
    const req = this.request();
    openCaptionEditor({ project: req.project, captionExtension: req.caption_extension });
  }

  async preview() {
    const req = this.request();
    if (!req.project.trim()) {
      this.showError("Set the project folder to see its subsets.");
      return;
    }
    const seq = ++this.seq;
    this.state.textContent = "…";
    const { ok, data } = await callRoute("/dataset/preview", req);
    if (seq !== this.seq) return; // a newer request is on its way
    this.state.textContent = "";
    if (!ok) {
      this.showError(data?.error || "The preview failed.");
      return;
    }
    this.show(data);
  }

  showError(text) {
    this.msg.className = "lw-msg error";
    this.msg.textContent = text;
    this.root.dataset.status = "error";
  }

  /** Render a preview answer; rows of the same subsets are updated in place (a drag keeps going). */
  show(data) {
    this.result = data;
    this.msg.className = "lw-msg";
    this.msg.textContent = "";
    this.root.dataset.status = "ok";
    const subsets = Array.isArray(data.subsets) ? data.subsets : [];
    const keys = subsets.map(rowKey);
    if (keys.join("\u0000") !== [...this.rows.keys()].join("\u0000")) this.build(subsets);
    for (const s of subsets) this.fill(this.rows.get(rowKey(s)), s);
    this.renderSummary(data, subsets);
    this.renderIssues(data.issues || data.warnings || []);
    fitNode(this.node);
  }

  build(subsets) {
    this.rows.clear();
    this.body.replaceChildren();
    if (!subsets.length) {
      this.body.append(el("tr", {}, el("td.lw-muted", { colSpan: 5 }, "No subsets found (folders named N_Subject under the project's images/).")));
      return;
    }
    for (const s of subsets) {
      const name = s.name;
      const range = el("input.lw-weight-range", { type: "range", min: "0", max: String(SLIDER_MAX), step: "0.05",
        dataset: { subset: name }, title: `Weight of ${name} (0 leaves it out)` });
      const number = el("input.lw-weight", { type: "number", min: "0", step: "0.1", dataset: { subset: name } });
      range.addEventListener("input", () => { number.value = formatWeight(range.value); this.setWeight(name, range.value); });
      number.addEventListener("input", () => {
        if (number.value === "" || !(Number(number.value) >= 0)) return;
        range.value = String(Math.min(SLIDER_MAX, Number(number.value)));
        this.setWeight(name, number.value);
      });
      const row = {
        tr: el("tr", { dataset: { subset: name } }),
        range, number,
        images: el("td.num.lw-images", { dataset: { subset: name } }),
        repeats: el("td.num.lw-repeats", { dataset: { subset: name } }),
        bar: el("div.bar"), target: el("div.target"), shareText: el("span"),
      };
      row.tr.append(
        el("td.lw-name", { title: s.folder || s.image_dir || "" }, name, s.is_reg ? el("span.lw-muted", {}, " (reg)") : null),
        row.images,
        el("td", {}, el("div.lw-weight-cell", {}, range, number)),
        row.repeats,
        el("td", {}, el("div.lw-share", { "data-subset": name }, row.bar, row.target, row.shareText)));
      if (s.is_reg) {
        range.disabled = number.disabled = true;
        range.title = number.title = "Regularization images follow the training items; they have no weight.";
        delete range.dataset.subset;
        delete number.dataset.subset;
        delete row.repeats.dataset.subset;
        delete row.images.dataset.subset;
      }
      this.rows.set(rowKey(s), row);
      this.body.append(row.tr);
    }
  }

  fill(row, s) {
    if (!row) return;
    const weight = s.is_reg ? 0 : Number(s.weight ?? 1);
    if (document.activeElement !== row.range && document.activeElement !== row.number) {
      row.range.value = String(Math.min(SLIDER_MAX, weight));
      row.number.value = formatWeight(weight);
    }
    const media = mediaCell(s);
    row.images.textContent = media.text;
    row.images.title = media.title;
    row.tr.dataset.kind = media.video ? "video" : "image";
    row.repeats.textContent = String(s.repeats ?? "–");
    const share = Number(s.share ?? 0);
    const target = s.target_share ?? s.target;
    row.bar.style.width = `${Math.min(100, share * 100)}%`;
    row.target.style.display = target === undefined || target === null ? "none" : "";
    row.target.style.left = `calc(${Math.min(100, Number(target) * 100)}% - 1px)`;
    row.shareText.textContent = formatPercent(share);
    row.tr.title = target === undefined || target === null ? "" : `asked ${formatPercent(Number(target))}, got ${formatPercent(share)}`;
    row.tr.classList.toggle("excluded", Boolean(s.excluded) || (!s.is_reg && weight === 0));
  }

  renderSummary(data, subsets) {
    const num = (...keys) => {
      for (const k of keys) {
        const v = data[k] ?? data.steps?.[k] ?? data.step_math?.[k];
        if (v !== undefined && v !== null) return v;
      }
      return undefined;
    };
    const parts = [];
    const count = (kind) => subsets.filter((s) => (s.kind === "video") === (kind === "video"))
      .reduce((a, s) => a + (Number(s.images) || 0), 0);
    parts.push(`${count("image")} images`);
    if (count("video")) parts.push(`${count("video")} videos`);
    const items = num("items_per_epoch");
    if (items !== undefined) parts.push(`${items} items/epoch`);
    const spe = num("steps_per_epoch");
    if (spe !== undefined) parts.push(`${spe} steps/epoch`);
    const epochs = num("epochs");
    if (epochs !== undefined) parts.push(`${epochs} epochs`);
    const total = num("total_steps", "max_train_steps", "steps_total");
    if (total !== undefined) parts.push(`${total} steps in all`);
    const target = num("target_steps");
    if (target) parts.push(`target ${target}`);
    if (data.repeats_mode) parts.push(`repeats: ${data.repeats_mode}`);
    this.summary.textContent = parts.join(" · ");
    const kw = (data.keywords || []).slice(0, 12).map((k) => (Array.isArray(k) ? `${k[0]} (${k[1]})` : String(k)));
    this.keywords.textContent = kw.length ? `caption keywords: ${kw.join(", ")}` : "";
  }

  renderIssues(issues) {
    const shown = issues.slice(0, 8);
    const more = issues.length - shown.length;
    this.issues.replaceChildren(...shown.map((i) => {
      const text = typeof i === "string" ? i : (i.message || i.text || JSON.stringify(i));
      const level = typeof i === "string" ? "warning" : (i.level || i.severity || "warning");
      return el(`li.${level}`, { title: i.path || "" }, text);
    }), ...(more > 0 ? [el("li.lw-muted", {}, `… and ${more} more (see the node's summary output)`)] : []));
  }

  /** A weight changed in the table: write it into the node's weights text, switch repeats to
   * `weights` (the other subsets keep their current shares), and ask for new numbers. */
  setWeight(name, v) {
    const w = widget(this.node, WEIGHTS);
    const mode = widget(this.node, REPEATS);
    if (w) {
      this.writing = true;
      try {
        const effective = this.result?.weights || {};
        let text = w.value;
        if (mode && mode.value !== "weights") {
          text = seedWeightsText(text, effective);
          mode.value = "weights";
        }
        w.value = setWeightLine(text, name, v, effective);
      } finally {
        this.writing = false;
      }
      this.node.graph?.setDirtyCanvas?.(true, true);
    }
    this.schedule();
  }
}

export function attachWeightsEditor(node) {
  const editor = new WeightsEditor(node);
  fitNode(node);
  // The saved widget values are applied after nodeCreated: preview once they are in place.
  setTimeout(() => editor.preview(), 50);
  return editor;
}

/** The node ran (or its dataset changed elsewhere): refresh every editor. */
export function onDatasetEvent() {
  for (const e of editors) e.schedule();
}
