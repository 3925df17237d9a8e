// The pack's paths in ComfyUI's settings dialog (Settings -> LoRA Workbench): the model library,
// kohya_ss / sd-scripts and its Python, musubi-tuner and its Python, the kohya_ss GUI (its presets),
// the tokenizer cache, the UI folders. The values live in the pack's settings file (the command line reads the same file), not
// in ComfyUI's own settings: each row is our element with a path box and Save; the server checks the
// value (the folder exists, a root-widening folder lies inside the allowed roots) and the verdict is
// shown under the box. The paths that decide what code runs (each trainer's folder and Python, the
// kohya_ss GUI) are shown read-only with the shell command that sets them: the server never takes
// them from a browser. The allowed roots are never offered here (see the README).
import { callRoute, el, injectStyle } from "./lw_common.js";
import { DEFAULT_TRAINER, trainerGroup, trainerSetting } from "./trainer_install.js";

export const CATEGORY = "LoRA Workbench";
const rows = new Map(); // key -> SettingRow (one element per key, kept across dialog re-renders)

function settingId(key) {
  return `LoRAWorkbench.${key}`;
}

class SettingRow {
  constructor(item) {
    injectStyle();
    this.item = item;
    const shellOnly = Boolean(item.shell_only);
    this.input = el("input.lw-setting-input", {
      type: "text", spellcheck: false, placeholder: "(not set)", value: item.value || "",
      readOnly: shellOnly, "aria-readonly": shellOnly ? "true" : undefined,
      "aria-label": item.label, onkeydown: (e) => { if (e.key === "Enter" && !shellOnly) this.save(); },
    });
    this.button = shellOnly ? null : el("button.lw-btn", { type: "button", onclick: () => this.save() }, "Save");
    this.msg = el("div.lw-setting-msg", { "data-role": "message" });
    this.root = el("div.lw-setting", { "data-key": item.key, "data-status": shellOnly ? "read-only" : "idle" },
      el("div.lw-setting-row", {}, this.input, this.button), this.msg);
    this.showSource();
  }

  /** Where the value in effect comes from: an environment variable wins over the file. A path that
   * decides what code runs says how to set it from a shell instead. */
  showSource() {
    const it = this.item;
    if (it.shell_only) {
      const now = it.env_value ? `${it.env} is set in ComfyUI's environment: ${it.env_value}` : "";
      this.say("muted", `decides what code runs, so it is set from a shell only: ${it.command}`,
        `(or ${it.env} in ComfyUI's environment)`, now);
    } else if (it.env_value) {
      this.say("note", `${it.env} is set in ComfyUI's environment and wins over this value: ${it.env_value}`);
    } else {
      this.say("muted", it.value ? "saved in the settings file" : `not set (${it.env} also works)`);
    }
  }

  say(kind, ...lines) {
    this.msg.className = `lw-setting-msg ${kind}`;
    this.msg.replaceChildren(...lines.filter(Boolean).map((t) => el("div", {}, t)));
  }

  async save() {
    const key = this.item.key;
    this.button.disabled = true;
    this.root.dataset.status = "saving";
    this.say("muted", "checking…");
    const { ok, data } = await callRoute("/settings", { values: { [key]: this.input.value } });
    this.button.disabled = false;
    const check = data?.checks?.find((c) => c.key === key);
    if (!ok) {
      this.root.dataset.status = "error";
      this.say("error", check?.error || data?.error || "not saved", ...(check?.notes || []));
      return;
    }
    const fresh = data.settings?.find((s) => s.key === key);
    if (fresh) this.item = fresh;
    this.input.value = this.item.value || "";
    this.root.dataset.status = "saved";
    const env = this.item.env_value ? `but ${this.item.env} in ComfyUI's environment still wins` : "";
    this.say("ok", `saved${env ? ", " + env : ""}`, ...(check?.notes || []));
  }
}

function rowFor(item) {
  let row = rows.get(item.key);
  if (!row) {
    row = new SettingRow(item);
    rows.set(item.key, row);
  }
  return row;
}

/** The dialog shows the headings in the order they first appear and, under each, the settings in
 * reverse order of registration: register them so they read in the server's order. */
function inDialogOrder(items) {
  const groups = [...new Set(items.map((i) => i.group))];
  return groups.flatMap((g) => items.filter((i) => i.group === g).reverse());
}

/** The setting definitions for the extension's `settings`, from the server's list. */
export async function dialogSettings() {
  const { ok, data } = await callRoute("/settings");
  if (!ok) {
    console.warn(`[lora_workbench] settings are not in the dialog: ${data?.error}`);
    return [];
  }
  const defs = inDialogOrder(data.settings || []).map((item) => ({
    id: settingId(item.key),
    name: item.label,
    category: [CATEGORY, item.group, item.label],
    tooltip: `${item.help} Saved in ${data.settings_file} (the command line reads it too); ${item.env} wins over it.`,
    defaultValue: "",
    // A function type: the dialog mounts the element we return (our own box, Save and message).
    type: () => rowFor(item).root,
  }));
  // Each trainer's Install row heads its group: registered after the group's last setting (the dialog
  // shows a group's settings in reverse order of registration).
  for (const id of await trainerIds()) {
    const last = defs.findLastIndex((d) => d.category[1] === trainerGroup(id));
    defs.splice(last < 0 ? defs.length : last + 1, 0, trainerSetting([CATEGORY], id));
  }
  return defs;
}

/** The trainers the server installs (sd-scripts, musubi-tuner), from its /trainer answer. */
async function trainerIds() {
  const { ok, data } = await callRoute("/trainer");
  return ok && Array.isArray(data.trainers) && data.trainers.length ? data.trainers : [DEFAULT_TRAINER];
}
