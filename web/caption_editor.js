// The caption editor: a subset's images as thumbnails with their captions, edited in place, bulk tag
// actions, the tag frequency, images without a caption marked. Opened from DatasetSubsetWeights'
// panel and from a run in the Training tab. Everything goes through the pack's routes:
// GET /lora_workbench/captions (a page of a subset), /captions/thumbnail (previews made on the
// server, at most 256 px), POST /captions/bulk (the Python core applies a tag action to the texts
// shown; nothing is written) and /captions/save (each caption written atomically; a caption changed
// on disk since it was read is refused with 409). What is edited is a caption's first line, the one
// sd-scripts trains on; later lines in the file are kept.
import { callRoute, el, injectStyle, routeUrl } from "./lw_common.js";

const PAGE = 300;
const OPS = [
  ["add", "add tag", "Add the tag at the end of every caption shown that lacks it"],
  ["add_first", "add tag first", "Add the tag at the start of every caption shown that lacks it"],
  ["remove", "remove tag", "Remove the tag (whole tags only) from every caption shown"],
  ["replace", "find & replace", "Replace the text everywhere in the captions shown (case-sensitive)"],
  ["trigger_first", "trigger word first", "Put the trigger word first in every caption shown, once (a copy elsewhere is dropped)"],
];

/** Tags with the number of captions holding them, most frequent first (as the server counts). */
export function tagCounts(texts) {
  const counts = new Map();
  for (const t of texts) {
    for (const tag of new Set(String(t).split(",").map((x) => x.trim()).filter(Boolean))) {
      counts.set(tag, (counts.get(tag) || 0) + 1);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].toLowerCase().localeCompare(b[0].toLowerCase()));
}

class CaptionEditor {
  constructor() {
    injectStyle();
    this.project = "";
    this.ext = ".txt";
    this.subset = null; // the server's answer for the subset shown
    this.offset = 0;
    this.edits = new Map(); // image -> caption text not saved yet
    this.cards = new Map(); // image -> {card, text}
    this.seq = 0;
    this.title = el("span.lw-title", {}, "Captions");
    this.where = el("span.lw-muted.lw-where", { "data-role": "project" });
    this.select = el("select.lw-cap-select", { "data-role": "subset", title: "The subset (folder N_Subject) to edit",
      onchange: () => this.switchTo(this.select.value) });
    this.reloadBtn = el("button.lw-btn", { type: "button", "data-role": "reload", onclick: () => this.reload(),
      title: "Read the captions from disk again (unsaved edits are dropped after asking)" }, "Reload");
    this.saveBtn = el("button.lw-btn.lw-primary", { type: "button", "data-role": "save", disabled: true, onclick: () => this.save(),
      title: "Write the edited captions (first line only; later lines in a file are kept)" }, "Save");
    this.closeBtn = el("button.lw-btn", { type: "button", "data-role": "close", onclick: () => this.close(), title: "Close (Esc)" }, "✕");
    this.op = el("select.lw-cap-select", { "data-role": "bulk-op", onchange: () => this.showOp() },
      ...OPS.map(([v, label, tip]) => el("option", { value: v, title: tip }, label)));
    this.tag = el("input.lw-cap-input", { "data-role": "bulk-tag", placeholder: "tag", title: "One tag (no comma)" });
    this.find = el("input.lw-cap-input", { "data-role": "bulk-find", placeholder: "find" });
    this.replace = el("input.lw-cap-input", { "data-role": "bulk-replace", placeholder: "replace with" });
    this.applyBtn = el("button.lw-btn", { type: "button", "data-role": "bulk-apply", onclick: () => this.bulk(),
      title: "Apply to every caption shown; images without a caption are left as they are. Nothing is written until Save." }, "Apply");
    this.tags = el("div.lw-chips.lw-cap-tags", { "data-role": "tags" });
    this.msg = el("div.lw-msg", { "data-role": "message" });
    this.grid = el("div.lw-cap-grid", { "data-role": "grid" });
    this.pager = el("div.lw-head.lw-muted", { "data-role": "pager" });
    this.root = el("div.lw-panel.lw-caption-editor", { "data-status": "idle" },
      el("div.lw-head", {}, this.title, this.select, this.where, el("span.lw-spacer"), this.reloadBtn, this.saveBtn, this.closeBtn),
      el("div.lw-head", {}, el("span.lw-muted", {}, "bulk:"), this.op, this.tag, this.find, this.replace, this.applyBtn),
      el("div.lw-label", {}, "tag frequency (click a tag to use it above)"), this.tags,
      this.msg, this.grid, this.pager);
    this.overlay = el("div.lw-modal", { onclick: (e) => { if (e.target === this.overlay) this.close(); } }, this.root);
    this.onKey = (e) => { if (e.key === "Escape" && this.overlay.isConnected) this.close(); };
    this.showOp();
  }

  async open({ project, captionExtension = ".txt", subset = null }) {
    if (this.overlay.isConnected && !this.leave()) return;
    this.project = String(project || "").trim();
    this.ext = captionExtension || ".txt";
    this.where.textContent = this.project;
    this.where.title = this.project;
    document.body.append(this.overlay);
    document.addEventListener("keydown", this.onKey);
    if (!this.project) {
      this.error("Set the project folder first: the editor shows its images/N_Subject folders.");
      return;
    }
    await this.load(subset, 0);
  }

  close() {
    if (!this.leave()) return;
    this.overlay.remove();
    document.removeEventListener("keydown", this.onKey);
  }

  /** True when there is nothing unsaved, or the user agrees to drop it. */
  leave() {
    return !this.edits.size || window.confirm(`${this.edits.size} caption(s) are not saved. Drop the changes?`);
  }

  switchTo(key) {
    if (!this.leave()) {
      this.select.value = this.subset?.key || "";
      return;
    }
    this.load(key, 0);
  }

  reload() {
    if (this.leave()) this.load(this.subset?.key || null, this.offset);
  }

  async load(key, offset) {
    const seq = ++this.seq;
    this.root.dataset.status = "loading";
    const query = { project: this.project, caption_extension: this.ext, offset: String(offset), limit: String(PAGE) };
    if (key) query.subset = key;
    const { ok, data } = await callRoute(`/captions?${new URLSearchParams(query)}`);
    if (seq !== this.seq) return;
    if (!ok) {
      this.error(data?.error || "The captions could not be read.");
      return;
    }
    this.edits.clear();
    this.offset = offset;
    this.subset = data.subset;
    this.fillSubsets(data.subsets || [], data.subset?.key);
    this.render();
    this.root.dataset.status = "ok";
    this.note(data.subset ? "" : "No subsets found (folders named N_Subject under the project's images/).");
  }

  fillSubsets(subsets, current) {
    this.select.replaceChildren(...subsets.map((s) => el("option", { value: s.key, selected: s.key === current },
      `${s.is_reg ? "reg: " : ""}${s.key.split("/")[1]}`)));
  }

  render() {
    const s = this.subset;
    this.cards.clear();
    this.grid.replaceChildren();
    this.root.dataset.subset = s?.key || "";
    if (!s) return this.update();
    for (const item of s.items) this.grid.append(this.card(item));
    const skipped = Object.entries(s.skipped || {});
    if (skipped.length) {
      this.grid.append(el("div.lw-msg.lw-muted.lw-cap-skipped", {},
        `Not shown: ${skipped.slice(0, 8).map(([n, why]) => `${n} (${why})`).join(", ")}${skipped.length > 8 ? ` and ${skipped.length - 8} more` : ""}`));
    }
    const last = s.offset + s.items.length;
    this.pager.replaceChildren(
      `${s.total} images · ${s.missing} without a caption${s.total > s.items.length ? ` · showing ${s.offset + 1}–${last}` : ""}`,
      el("span.lw-spacer"),
      s.offset > 0 ? el("button.lw-btn", { type: "button", onclick: () => this.leave() && this.load(s.key, Math.max(0, s.offset - PAGE)) }, "◀ previous") : "",
      last < s.total ? el("button.lw-btn", { type: "button", onclick: () => this.leave() && this.load(s.key, last) }, "next ▶") : "");
    this.update();
  }

  card(item) {
    const src = routeUrl("/captions/thumbnail", { project: this.project, subset: this.subset.key, image: item.image });
    const text = el("textarea.lw-cap-text", { rows: 3, spellcheck: false, "data-image": item.image,
      placeholder: item.missing ? "no caption: sd-scripts uses the folder's class token" : "" });
    text.value = item.problem ? "" : item.text;
    text.disabled = Boolean(item.problem);
    text.addEventListener("input", () => this.edit(item, text.value));
    const badges = [
      item.missing ? el("span.lw-badge.failed", { title: "No caption file: write one here, then Save" }, "no caption") : "",
      item.more_lines ? el("span.lw-badge", { title: `${item.caption_file} has ${item.more_lines} more line(s); sd-scripts trains on the first only, and they are kept` }, `+${item.more_lines} lines`) : "",
    ];
    const card = el("div.lw-cap-card", { "data-image": item.image, title: item.caption_file },
      el("img", { src, alt: item.image, loading: "lazy", decoding: "async" }),
      el("div.lw-cap-name", {}, el("span", { title: item.image }, item.image), ...badges),
      text,
      item.problem ? el("div.lw-msg.error", {}, item.problem) : "");
    card.classList.toggle("missing", Boolean(item.missing));
    this.cards.set(item.image, { card, text, item });
    return card;
  }

  edit(item, value) {
    const original = item.problem ? null : item.text;
    if (value === original || (item.missing && value === "")) this.edits.delete(item.image);
    else this.edits.set(item.image, value);
    this.cards.get(item.image)?.card.classList.toggle("dirty", this.edits.has(item.image));
    this.update();
  }

  /** The text each editable card shows now (edits included). */
  texts() {
    return [...this.cards.values()].filter((c) => !c.item.problem).map((c) => c.text.value);
  }

  update() {
    const n = this.edits.size;
    this.saveBtn.disabled = n === 0;
    this.saveBtn.textContent = n ? `Save (${n})` : "Save";
    this.root.dataset.dirty = String(n);
    const s = this.subset;
    // The subset's counts from the server, unless every image is on this page: then the live texts.
    const whole = s && s.total <= s.items.length;
    const counts = whole ? tagCounts(this.texts().filter((t) => t.trim())) : (s?.tags || []);
    this.tags.replaceChildren(...counts.slice(0, 60).map(([tag, n]) => el("button.lw-chip", { type: "button",
      "data-tag": tag, title: `${n} caption(s) hold “${tag}”; click to use it in the bulk action`,
      onclick: () => { this.tag.value = tag; this.find.value = tag; } }, `${tag} (${n})`)),
    counts.length > 60 ? el("span.lw-muted", {}, `… and ${counts.length - 60} more`) : "");
  }

  showOp() {
    const replace = this.op.value === "replace";
    this.tag.style.display = replace ? "none" : "";
    this.find.style.display = this.replace.style.display = replace ? "" : "none";
    this.tag.placeholder = this.op.value === "trigger_first" ? "trigger word" : "tag";
  }

  async bulk() {
    const cards = [...this.cards.values()].filter((c) => !c.item.problem && !(c.item.missing && !c.text.value.trim()));
    if (!cards.length) return this.note("No captions to change on this page.");
    const body = { op: this.op.value, tag: this.tag.value, find: this.find.value, replace: this.replace.value,
      captions: cards.map((c) => c.text.value) };
    const { ok, data } = await callRoute("/captions/bulk", body);
    if (!ok) return this.error(data?.error || "The bulk action failed.");
    cards.forEach((c, i) => {
      if (data.captions[i] === c.text.value) return;
      c.text.value = data.captions[i];
      this.edit(c.item, c.text.value);
    });
    this.note(`${data.changed} caption(s) changed; Save writes them.`);
  }

  async save() {
    const s = this.subset;
    if (!s || !this.edits.size) return;
    const items = [...this.edits].map(([image, caption]) => {
      const it = this.cards.get(image).item;
      return { image, caption, hash: it.hash || "" };
    });
    this.saveBtn.disabled = true;
    this.root.dataset.status = "saving";
    const { ok, status, data } = await callRoute("/captions/save", { project: this.project, subset: s.key,
      caption_extension: this.ext, items });
    if (!ok) {
      this.root.dataset.status = "error";
      this.saveBtn.disabled = false;
      this.error((data?.error || "The save failed.") + (status === 409 ? " Your edits are still here." : ""));
      return;
    }
    const written = (data.written || []).length;
    this.edits.clear();
    await this.load(s.key, this.offset);
    this.note(`Saved ${written} caption file(s).`);
    this.root.dataset.status = "saved";
  }

  error(text) {
    this.msg.className = "lw-msg error";
    this.msg.textContent = text;
    this.root.dataset.status = "error";
  }

  note(text) {
    this.msg.className = "lw-msg lw-muted";
    this.msg.textContent = text;
  }
}

let editor = null;

/** Open the caption editor on a training project (one editor on the page; opening again switches). */
export function openCaptionEditor(options) {
  editor ??= new CaptionEditor();
  return editor.open(options);
}
