// The Training tab in ComfyUI's bottom panel: the current and recent training runs, wherever the
// training node is on the canvas, or when it is not on it at all (a run queued through the API).
// The run list and each run's log, loss points and files come from the run folders on disk
// (GET /lora_workbench/train/runs and /train/run), so they survive a page reload; the run that is
// training now is kept current by the runner's "lora_workbench.train" websocket events.
import { api } from "../../scripts/api.js";
import { openCaptionEditor } from "./caption_editor.js";
import { drawLossChart } from "./loss_chart.js";
import { stepProgress } from "./train_panel.js";
import {
  basename, callRoute, debounce, el, formatLoss, formatSeconds, injectStyle, routeUrl,
} from "./lw_common.js";

export const TAB_ID = "lora-workbench.training";
const LIVE_STATES = ["starting", "running"];
const DETAIL_REFRESH_MS = 2000; // the log tail and files of a running run

function stateBadge(state) {
  return el(`span.lw-badge.${state || "unknown"}`, {}, state || "unknown");
}

function rate(s) {
  if (s.it_per_s) return s.it_per_s >= 1 ? `${s.it_per_s.toFixed(2)} it/s` : `${(1 / s.it_per_s).toFixed(2)} s/it`;
  return s.rate || "–";
}

function when(text) {
  if (!text) return "";
  const d = new Date(text.replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  return isNaN(d) ? text : d.toLocaleString();
}

function sameRun(a, b) {
  return Boolean(a && b) && a === b;
}

/** The run folder a live status belongs to (its log is <run>/train.log). */
function liveDir(status) {
  const log = status?.log_path || "";
  return log ? log.replace(/[\\/][^\\/]*$/, "") : "";
}

class TrainingTab {
  constructor() {
    injectStyle();
    this.runs = [];
    this.selected = "";   // the run folder shown on the right
    this.pinned = false;  // the user picked a run: a new live run does not take over
    this.detail = null;
    this.live = null;     // the latest live status from the websocket
    this.list = el("div.lw-run-list", { "data-role": "runs" });
    this.refreshBtn = el("button.lw-btn", { type: "button", onclick: () => this.refresh() }, "Refresh");
    this.title = el("span.lw-title", {}, "no run selected");
    this.badge = stateBadge("idle");
    this.cancelBtn = el("button.lw-btn", { type: "button", disabled: true, "data-role": "cancel", onclick: () => this.cancel(),
      title: "Stop the running training (like ComfyUI's Cancel)" }, "Cancel training");
    this.captionsBtn = el("button.lw-btn", { type: "button", disabled: true, "data-role": "open-captions",
      onclick: () => this.detail?.project && openCaptionEditor({ project: this.detail.project }),
      title: "Open the caption editor on this run's project (its images/N_Subject captions)" }, "Captions…");
    this.bar = el("div");
    this.stats = {};
    const stat = (key, label) => (this.stats[key] = el("b", {}, "–"), el("div.lw-stat", {}, `${label} `, this.stats[key]));
    this.canvas = el("canvas.lw-canvas.lw-tab-chart", { "data-role": "loss-chart" });
    this.msg = el("div.lw-msg.lw-muted");
    this.log = el("pre.lw-log", { "data-role": "log" });
    this.files = el("div.lw-files", { "data-role": "files" });
    this.samples = el("div.lw-samples", { "data-role": "samples" });
    this.where = el("div.lw-muted.lw-where");
    this.root = el("div.lw-tab", { "data-role": "training-tab" },
      el("div.lw-tab-runs", {},
        el("div.lw-head", {}, el("span.lw-title", {}, "Runs"), el("span.lw-spacer"), this.refreshBtn),
        this.list),
      el("div.lw-tab-detail", {},
        el("div.lw-head", {}, this.title, this.badge, el("span.lw-spacer"), this.cancelBtn, this.captionsBtn),
        this.where,
        el("div.lw-progress", {}, this.bar),
        el("div.lw-stats", {},
          stat("phase", "phase"), stat("step", "step"), stat("epoch", "epoch"), stat("loss", "loss"),
          stat("rate", "speed"), stat("eta", "ETA"), stat("elapsed", "elapsed")),
        this.msg,
        el("div.lw-tab-body", {},
          el("div.lw-tab-col", {}, this.canvas, el("div.lw-label", {}, "log (last lines)"), this.log),
          el("div.lw-tab-col", {}, el("div.lw-label", {}, "output files"), this.files, this.samples))));
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
    this.refreshDetailSoon = debounce(() => this.loadDetail(), 300);
    this.renderListSoon = debounce(() => this.renderList(), 500);
    this.timer = null;
  }

  /** The bottom panel mounts the tab into `container` (possibly again after it was hidden). */
  mount(container) {
    if (this.root.parentElement === container) return; // the panel re-rendered: nothing changed
    container.append(this.root);
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), DETAIL_REFRESH_MS);
  }

  unmount() {
    clearInterval(this.timer);
    this.timer = null;
  }

  tick() {
    if (!this.root.isConnected) return;
    // While the run trains, and after it ended until its folder says so (loss.png, run.json last).
    if (LIVE_STATES.includes(this.detail?.state) || this.detail?.live) this.loadDetail();
  }

  async refresh() {
    const { ok, data } = await callRoute("/train/runs?limit=30");
    if (!ok) {
      this.list.replaceChildren(el("div.lw-msg.error", {}, data?.error || "could not read the runs"));
      return;
    }
    this.runs = data.runs || [];
    if (data.current) this.live = data.current;
    this.renderList();
    const liveRun = this.live && LIVE_STATES.includes(this.live.state) ? liveDir(this.live) : "";
    if (!this.pinned && liveRun) this.select(liveRun, false);
    else if (!this.selected && this.runs.length) this.select(this.runs[0].dir, false);
    else if (this.selected) this.loadDetail();
  }

  renderList() {
    this.root.dataset.runs = String(this.runs.length);
    if (!this.runs.length) {
      this.list.replaceChildren(el("div.lw-muted", {}, "No training runs yet. Runs appear here as soon as they start, " +
        "whether queued from the canvas, through the API or with the command line in a known project."));
      return;
    }
    this.list.replaceChildren(...this.runs.map((r) => {
      const item = el("button.lw-run", {
        type: "button", "data-dir": r.dir, "data-state": r.state, title: r.dir,
        onclick: () => this.select(r.dir, true),
      },
      el("div.lw-run-line", {}, el("b", {}, r.run_id), stateBadge(r.state)),
      el("div.lw-run-line.lw-muted", {}, basename(r.project),
        r.total ? ` · step ${r.step}/${r.total}` : "",
        r.loss !== null && r.loss !== undefined ? ` · loss ${formatLoss(r.loss)}` : ""),
      el("div.lw-run-line.lw-muted", {}, when(r.started_at)));
      item.classList.toggle("selected", sameRun(r.dir, this.selected));
      return item;
    }));
  }

  select(dir, byUser) {
    if (byUser) this.pinned = !(this.live && sameRun(liveDir(this.live), dir));
    if (!sameRun(dir, this.selected)) this.detail = null;
    this.selected = dir;
    this.root.dataset.selected = dir;
    for (const b of this.list.querySelectorAll(".lw-run")) b.classList.toggle("selected", b.dataset.dir === dir);
    this.loadDetail();
  }

  async loadDetail() {
    const dir = this.selected;
    if (!dir) return;
    const { ok, data } = await callRoute(`/train/run?dir=${encodeURIComponent(dir)}`);
    if (dir !== this.selected) return;
    if (!ok) {
      this.msg.className = "lw-msg error";
      this.msg.textContent = data?.error || "could not read the run";
      return;
    }
    const wasLive = this.detail?.live;
    this.detail = data;
    this.show();
    if (wasLive && !data.live) this.refreshSoon(); // its folder now says how it ended: the list too
  }

  /** A websocket status: update the run it belongs to without a round trip. */
  onEvent(status) {
    const wasLive = this.live && LIVE_STATES.includes(this.live.state);
    this.live = status;
    const dir = liveDir(status);
    const run = this.runs.find((r) => sameRun(r.dir, dir));
    const known = Boolean(run);
    const nowFinal = !LIVE_STATES.includes(status.state);
    if (run) {
      Object.assign(run, { state: status.state, step: status.step, total: status.total, loss: status.loss });
      this.renderListSoon();
    }
    if (!known || (wasLive && nowFinal)) this.refreshSoon();
    if (!this.root.isConnected) return;
    if (!this.pinned && dir && !sameRun(dir, this.selected) && LIVE_STATES.includes(status.state)) {
      this.select(dir, false);
      return;
    }
    if (this.detail && sameRun(dir, this.selected)) {
      Object.assign(this.detail, pick(status), { live: true });
      this.show();
      if (nowFinal) this.refreshDetailSoon();
    }
  }

  refreshSoon() {
    if (!this.root.isConnected) return; // read again when the tab is shown
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => this.refresh(), 400);
  }

  show() {
    const d = this.detail;
    if (!d) return;
    const state = d.state || "unknown";
    this.root.dataset.state = state;
    this.title.textContent = d.run_id || basename(d.dir);
    this.badge.replaceWith(this.badge = stateBadge(state));
    this.where.textContent = d.dir || "";
    this.cancelBtn.disabled = !(d.live && LIVE_STATES.includes(state));
    this.captionsBtn.disabled = !d.project;
    const total = d.total || 0;
    this.stats.step.textContent = total ? `${d.step ?? 0} / ${total}` : String(d.step ?? "–");
    this.stats.epoch.textContent = d.epochs ? `${d.epoch ?? "–"} / ${d.epochs}` : "–";
    this.stats.loss.textContent = formatLoss(d.loss);
    this.stats.rate.textContent = rate(d);
    this.stats.eta.textContent = state === "running" ? formatSeconds(d.eta_s) : "–";
    this.stats.elapsed.textContent = formatSeconds(d.elapsed_s);
    const progress = stepProgress(d);
    this.stats.phase.textContent = progress.phase;
    this.root.dataset.phase = d.phase || "";
    this.bar.style.width = progress.fill;
    const failed = ["failed", "cancelled", "stopped"].includes(state);
    this.msg.className = `lw-msg ${failed ? "error" : "lw-muted"}`;
    this.msg.textContent = state === "cancelled" ? "cancelled: only what the trainer had saved is in the run folder"
      : failed ? (d.error || d.message || state) : (d.text || "");
    if (d.log_tail) {
      this.log.textContent = d.log_tail.join("\n");
      this.log.dataset.lines = String(d.log_tail.length);
      this.log.scrollTop = this.log.scrollHeight;
    }
    this.showFiles(d);
    this.draw();
  }

  showFiles(d) {
    const files = d.files || [];
    this.files.dataset.count = String(files.length);
    this.files.replaceChildren(...files.filter((f) => f.kind !== "sample").map((f) => el("div.lw-file", {
      "data-kind": f.kind, title: f.path,
    }, el("span", {}, f.name), el("span.lw-muted", {}, ` ${sizeText(f.size)}`),
    ["loss", "image"].includes(f.kind) ? el("a", { href: routeUrl("/train/sample", { path: f.path }), target: "_blank" }, " open") : "")));
    const samples = (d.samples || []).slice(-6);
    const key = samples.join("|");
    if (key === this.samples.dataset.key) return;
    this.samples.dataset.key = key;
    this.samples.replaceChildren(...samples.map((p) => {
      const src = routeUrl("/train/sample", { path: p });
      return el("img", { src, alt: basename(p), title: basename(p), onclick: () => window.open(src, "_blank") });
    }));
  }

  draw() {
    if (!this.root.isConnected) return;
    drawLossChart(this.canvas, this.detail?.losses || [], { total: this.detail?.total || 0, title: "loss (avr_loss per step)" });
  }

  async cancel() {
    this.cancelBtn.disabled = true;
    // ComfyUI's own interrupt when the run is a prompt's node; the runner's cancel for any other run.
    if (this.live?.node_id) await api.fetchApi("/interrupt", { method: "POST" }).catch(() => {});
    await callRoute("/train/cancel", {});
  }
}

function pick(status) {
  const keys = ["state", "step", "total", "epoch", "epochs", "loss", "losses", "samples", "text", "message",
    "elapsed_s", "eta_s", "it_per_s", "rate", "node_id", "phase", "progress", "phase_step", "phase_total"];
  return Object.fromEntries(keys.filter((k) => k in status).map((k) => [k, status[k]]));
}

function sizeText(bytes) {
  if (!isFinite(bytes)) return "";
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)} kB`;
  return `${bytes} B`;
}

let tab = null;

function theTab() {
  tab ??= new TrainingTab();
  return tab;
}

/** The bottom panel tab for the extension's `bottomPanelTabs`. */
export const trainingPanelTab = {
  id: TAB_ID,
  title: "Training",
  type: "custom",
  render: (container) => theTab().mount(container),
  destroy: () => tab?.unmount(),
};

export function onTrainingEvent(status) {
  if (status) theTab().onEvent(status);
}
