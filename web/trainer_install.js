// The settings dialog's trainer rows, one per trainer the server names (Settings -> LoRA Workbench ->
// Training (sd-scripts), Training (musubi-tuner)): which checkout training uses and why, and Install /
// Check / Update of the pack's own managed copy with live progress (the step, pip's current line, the
// time so far), Cancel and the verdict. The buttons send {"trainer": id} and nothing else: the server
// installs the commit pinned in the pack's code with ComfyUI's own Python, so a page cannot choose what
// is installed. One job runs at a time on the server, whichever trainer it is for; each row polls
// /trainer?trainer=id while one runs and picks a running job up again when the dialog is reopened.
import { callRoute, el, injectStyle } from "./lw_common.js";

const POLL_MS = 1000;
export const DEFAULT_TRAINER = "sd-scripts";
export const TRAINER_ROW_KEY = "managed_trainer";

/** The row's key: the first trainer keeps the name it had before there were two. */
export function trainerRowKey(trainer) {
  return trainer === DEFAULT_TRAINER ? TRAINER_ROW_KEY : `${TRAINER_ROW_KEY}_${trainer}`;
}

export function trainerGroup(trainer) {
  return `Training (${trainer})`;
}

function seconds(s) {
  const t = Math.round(s || 0);
  return t < 60 ? `${t} s` : `${Math.floor(t / 60)} min ${t % 60} s`;
}

function device(checked) {
  if (!checked) return "";
  const gpu = checked.gpu ? `GPU ${checked.gpu}` : checked.mps ? "Apple MPS" : "no GPU (CPU only)";
  return `torch ${checked.torch}, ${gpu}`;
}

class TrainerRow {
  constructor(trainer) {
    injectStyle();
    this.trainer = trainer;
    const button = (role, text, action, primary) => el(`button.lw-btn${primary ? ".lw-primary" : ""}`,
      { type: "button", "data-role": role, onclick: () => this.start(action) }, text);
    this.install = button("install", `Install ${trainer}`, "install", true);
    this.check = button("check", "Check", "check");
    this.update = button("update", "Update", "update");
    this.cancel = el("button.lw-btn", { type: "button", "data-role": "cancel", hidden: true,
      onclick: () => this.stop() }, "Cancel");
    this.where = el("div.lw-setting-msg.muted", { "data-role": "in-use" });
    this.bar = el("div", { style: { width: "0%" } });
    this.step = el("div.lw-setting-msg.muted", { "data-role": "step" });
    this.line = el("div.lw-trainer-line", { "data-role": "line" });
    this.progress = el("div", { "data-role": "progress", hidden: true },
      el("div.lw-trainer-bar", {}, this.bar), this.step, this.line);
    this.verdict = el("div.lw-setting-msg", { "data-role": "verdict" });
    this.root = el("div.lw-setting.lw-trainer",
      { "data-key": trainerRowKey(trainer), "data-trainer": trainer, "data-status": "idle" },
      this.where,
      el("div.lw-setting-row", {}, this.install, this.check, this.update, this.cancel),
      this.progress, this.verdict);
    this.timer = null;
    this.refresh();
  }

  get query() {
    return `/trainer?trainer=${encodeURIComponent(this.trainer)}`;
  }

  /** The server's one job, when it is this row's trainer's (another trainer's job only blocks). */
  own(job) {
    return job && (job.trainer || DEFAULT_TRAINER) === this.trainer ? job : null;
  }

  async refresh() {
    const { ok, data } = await callRoute(this.query);
    if (!ok) {
      this.where.textContent = data?.error || "the trainer's status could not be read";
      return;
    }
    this.showStatus(data.status || {});
    this.showJob(data.job);
    if (data.job?.state === "running" && !this.timer) this.poll();
  }

  command() {
    return "lora-workbench trainer install" + (this.trainer === DEFAULT_TRAINER ? "" : ` --trainer ${this.trainer}`);
  }

  showStatus(st) {
    const use = st.in_use || {};
    const managed = st.managed;
    const pinned = (st.pinned?.ref || "").slice(0, 12);
    const name = this.trainer;
    const lines = [use.exists === false
      ? `No ${name} is set up yet (${use.path ? `nothing at ${use.path}` : "nothing installed or set"}).`
      : `Training uses ${use.path || "?"} (from ${use.from || "?"}).`];
    if (managed) {
      lines.push(`Managed: ${name} ${(managed.commit || "").slice(0, 12)}, ${device(managed.checked)}.`);
    } else {
      lines.push(`No managed ${name} yet: Install sets up ${name} ${pinned} in its own environment ` +
        `(a few GB, minutes; torch matched to ComfyUI's). Or run: ${this.command()}`);
    }
    this.where.replaceChildren(...lines.map((t) => el("div", {}, t)));
    this.install.textContent = managed ? "Reinstall" : `Install ${name}`;
    this.check.disabled = this.update.disabled = !managed;
    this.managed = Boolean(managed);
  }

  showJob(anyJob) {
    const job = this.own(anyJob);
    const running = job?.state === "running";
    const busy = anyJob?.state === "running"; // another trainer's job: one runs at a time
    this.root.dataset.status = job?.state || "idle";
    this.root.dataset.action = job?.action || "";
    this.install.disabled = busy;
    this.check.disabled = this.update.disabled = busy || !this.managed;
    this.cancel.hidden = !running;
    this.progress.hidden = !running;
    if (!job) return;
    if (running) {
      const pct = job.total ? Math.round((100 * Math.max(0, job.index - 1)) / job.total) : 0;
      this.bar.style.width = `${pct}%`;
      const step = job.total ? `step ${job.index}/${job.total}: ${job.title}` : job.title;
      this.step.textContent = `${job.action} · ${step} · ${seconds(job.elapsed_s)}`;
      this.line.textContent = job.line || "";
      this.line.title = job.line || "";
      this.verdict.className = "lw-setting-msg muted";
      this.verdict.textContent = "";
      return;
    }
    const kind = job.state === "done" ? "ok" : job.state === "cancelled" ? "note" : "error";
    this.verdict.className = `lw-setting-msg ${kind}`;
    this.verdict.textContent = `${job.message} (${seconds(job.elapsed_s)})`;
  }

  async start(action) {
    this.install.disabled = this.check.disabled = this.update.disabled = true;
    const { ok, data } = await callRoute(`/trainer/${action}`, { trainer: this.trainer });
    if (!ok) {
      this.verdict.className = "lw-setting-msg error";
      this.verdict.textContent = data?.error || `${action} could not start`;
      await this.refresh();
      return;
    }
    this.showJob(data.job);
    this.poll();
  }

  async stop() {
    this.cancel.disabled = true;
    await callRoute("/trainer/cancel", {});
    this.cancel.disabled = false;
  }

  poll() {
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      this.timer = null;
      const { ok, data } = await callRoute(this.query);
      if (!ok) return this.poll();
      this.showJob(data.job);
      if (data.job?.state === "running") return this.poll();
      this.showStatus(data.status || {});
      this.showJob(data.job);
    }, POLL_MS);
  }
}

const rows = new Map(); // trainer -> TrainerRow (one element each, kept across dialog re-renders)

/** The dialog's setting definition for one trainer's row. */
export function trainerSetting(category, trainer = DEFAULT_TRAINER) {
  const name = `${trainer} for training`;
  return {
    id: `LoRAWorkbench.${trainerRowKey(trainer)}`,
    name,
    category: [...category, trainerGroup(trainer), name],
    tooltip: `Install the pack's own ${trainer} (pinned commit, its own Python environment, torch matched to ` +
      "ComfyUI's), check it or update it. The trainer's folder setting or its environment variable, when " +
      "set, wins over it.",
    defaultValue: "",
    type: () => {
      if (!rows.has(trainer)) rows.set(trainer, new TrainerRow(trainer));
      return rows.get(trainer).root;
    },
  };
}
