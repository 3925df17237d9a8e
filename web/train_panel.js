// The live training panel on KohyaLoRATrain: state, step/epoch/loss/speed/ETA, a loss curve and the
// latest sample images. Fed by the runner's "lora_workbench.train" websocket events (so runs queued by
// the API show too) and by GET /lora_workbench/train/status when the page loads.
import { api } from "../../scripts/api.js";
import {
  addPanel, basename, callRoute, el, fitNode, formatLoss, formatSeconds, injectStyle, routeUrl,
} from "./lw_common.js";
import { drawLossChart } from "./loss_chart.js";

export const NODE_TYPE = "KohyaLoRATrain";
const MAX_SAMPLES = 4;
const panels = new Set(); // the live panels (a node removed from the graph drops out)

function statusText(s) {
  if (!s || s.state === "idle") return "No training has run since ComfyUI started.";
  return s.text || s.state;
}

const LIVE = ["starting", "running"];

/** The bar's fill and the phase's words: a count step (caching, converting) fills the bar with its own
 * count while it runs ("Caching latents · 3/12"); otherwise the training's steps. */
export function stepProgress(s) {
  const counting = s?.progress === "count" && LIVE.includes(s?.state);
  const done = counting ? s.phase_step || 0 : s?.step || 0;
  const total = counting ? s.phase_total || 0 : s?.total || 0;
  const count = counting ? (s.phase_total ? `${done} / ${total}` : String(done || "")) : "";
  const phase = s?.phase ? [s.phase, count].filter(Boolean).join(" · ") : "–";
  return { fill: total ? `${Math.min(100, (100 * done) / total)}%` : "0%", phase };
}

class TrainPanel {
  constructor(node) {
    injectStyle();
    this.node = node;
    this.status = null;
    this.sampleKey = "";
    this.badge = el("span.lw-badge", {}, "idle");
    this.cancelBtn = el("button.lw-btn", { type: "button", title: "Stop the running training (like ComfyUI's Cancel)",
      disabled: true, onclick: () => this.cancel() }, "Cancel training");
    this.canvas = el("canvas.lw-canvas", { "data-role": "loss-chart" });
    this.bar = el("div");
    this.stats = {};
    const stat = (key, label) => (this.stats[key] = el("b", {}, "–"), el("div.lw-stat", {}, `${label} `, this.stats[key]));
    this.msg = el("div.lw-msg.lw-muted", {}, statusText(null));
    this.samples = el("div.lw-samples", { "data-role": "samples" });
    this.root = el("div.lw-panel.lw-train-panel", { "data-node-type": NODE_TYPE },
      el("div.lw-head", {}, el("span.lw-title", {}, "Training"), this.badge, el("span.lw-spacer"), this.cancelBtn),
      this.canvas,
      el("div.lw-progress", {}, this.bar),
      el("div.lw-stats", {},
        stat("phase", "phase"), stat("step", "step"), stat("epoch", "epoch"), stat("loss", "loss"),
        stat("rate", "speed"), stat("eta", "ETA"), stat("elapsed", "elapsed")),
      this.msg,
      this.samples);
    this.widget = addPanel(node, "lora_workbench_training", this.root, { min: 250, max: 420, width: 420 });
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
    panels.add(this);
    const onRemoved = node.onRemoved;
    node.onRemoved = (...args) => {
      panels.delete(this);
      this.resize.disconnect();
      return onRemoved?.apply(node, args);
    };
    this.draw();
  }

  /** A status from the websocket or the route. */
  update(status) {
    if (!status) return;
    this.status = status;
    const s = status;
    const state = s.state || "idle";
    this.badge.textContent = state;
    this.badge.className = `lw-badge ${state}`;
    this.root.dataset.state = state;
    this.root.dataset.runId = s.run_id || "";
    this.cancelBtn.disabled = !(state === "running" || state === "starting");
    const total = s.total || 0;
    this.stats.step.textContent = total ? `${s.step ?? 0} / ${total}` : String(s.step ?? "–");
    this.stats.epoch.textContent = s.epochs ? `${s.epoch ?? 0} / ${s.epochs}` : "–";
    this.stats.loss.textContent = formatLoss(s.loss);
    this.stats.rate.textContent = s.it_per_s
      ? (s.it_per_s >= 1 ? `${s.it_per_s.toFixed(2)} it/s` : `${(1 / s.it_per_s).toFixed(2)} s/it`)
      : (s.rate || "–");
    this.stats.eta.textContent = state === "running" ? formatSeconds(s.eta_s) : "–";
    this.stats.elapsed.textContent = formatSeconds(s.elapsed_s);
    const progress = stepProgress(s);
    this.stats.phase.textContent = progress.phase;
    this.root.dataset.phase = s.phase || "";
    this.bar.style.width = progress.fill;
    const failed = state === "failed" || state === "cancelled";
    this.msg.className = `lw-msg ${failed ? "error" : "lw-muted"}`;
    let text = statusText(s);
    if (failed && s.message && !text.includes(s.message)) text += `\n${s.message}`;
    if (failed && s.log_path) text += `\nlog: ${s.log_path}`;
    if (state === "finished" && s.saved?.length) text += `\nsaved ${basename(s.saved[s.saved.length - 1])}`;
    this.msg.textContent = text;
    this.showSamples(s.samples || [], s.run_id || "");
    this.draw();
  }

  showSamples(samples, runId) {
    const latest = samples.slice(-MAX_SAMPLES);
    const key = runId + "|" + latest.join("|");
    if (key === this.sampleKey) return;
    const hadNone = !this.samples.childElementCount;
    this.sampleKey = key;
    this.samples.replaceChildren(...latest.map((p) => {
      const src = routeUrl("/train/sample", { path: p, run: runId });
      return el("img", { src, alt: basename(p), title: basename(p), loading: "lazy",
        onclick: () => window.open(src, "_blank") });
    }));
    if (hadNone && latest.length) fitNode(this.node);
  }

  draw() {
    const s = this.status;
    drawLossChart(this.canvas, s?.losses || [], { total: s?.total || 0, title: "loss (avr_loss per step)" });
  }

  async cancel() {
    this.cancelBtn.disabled = true;
    // ComfyUI's own interrupt: the node turns it into a cancel of the whole trainer process tree.
    await api.fetchApi("/interrupt", { method: "POST" }).catch(() => {});
    // A run queued by someone else's prompt or the CLI is not ComfyUI's current job: cancel it directly.
    await callRoute("/train/cancel", {});
  }
}

/** Which panels a status belongs to: the node that runs it, else (an API or CLI run) every panel. */
function panelsFor(status) {
  const id = status?.node_id;
  const all = [...panels].filter((p) => p.node.graph);
  if (id === null || id === undefined || id === "") return all;
  const mine = all.filter((p) => String(p.node.id) === String(id));
  return mine.length ? mine : all;
}

export function onTrainEvent(status) {
  for (const p of panelsFor(status)) p.update(status);
}

export async function attachTrainPanel(node) {
  const panel = new TrainPanel(node);
  fitNode(node);
  // nodeCreated runs before a loaded node gets its id and graph: ask once it is in place.
  await new Promise((r) => setTimeout(r, 50));
  const { ok, data } = await callRoute("/train/status");
  if (ok && (data?.state === "idle" || panelsFor(data).includes(panel))) panel.update(data);
  return panel;
}
