// The library status on LinkModelLibrary: whether a watcher runs, the last link report (counts,
// collisions), links per target folder and the watcher's last events. From GET
// /lora_workbench/library/status, refreshed on every "lora_workbench.library" event.
import { basename, callRoute, debounce, el, fitNode, injectStyle, addPanel } from "./lw_common.js";

export const NODE_TYPE = "LinkModelLibrary";
const panels = new Set();

const COUNTS = [["created", "created"], ["fixed", "fixed"], ["removed", "removed"], ["unchanged", "unchanged"],
  ["collisions", "collisions"], ["skipped", "skipped"], ["errors", "errors"]];

function count(report, key) {
  const v = report?.[key];
  return Array.isArray(v) ? v.length : Number(v || 0);
}

function eventText(e) {
  if (typeof e === "string") return e;
  const when = e.time ? new Date(e.time * 1000).toLocaleTimeString() : "";
  return `${when} ${e.event || ""} ${e.path ? basename(e.path) : ""}`.trim();
}

class LibraryPanel {
  constructor(node) {
    injectStyle();
    this.node = node;
    this.dot = el("span.lw-dot");
    this.watchText = el("span", {}, "watcher off");
    this.refreshBtn = el("button.lw-btn", { type: "button", onclick: () => this.refresh() }, "Refresh");
    this.report = el("div", { "data-role": "report" });
    this.targets = el("div", { "data-role": "targets" });
    this.events = el("div", { "data-role": "events" });
    this.msg = el("div.lw-msg.lw-muted");
    this.root = el("div.lw-panel.lw-library-status", { "data-node-type": NODE_TYPE },
      el("div.lw-head", {}, el("span.lw-title", {}, "Library"), this.dot, this.watchText, el("span.lw-spacer"),
        this.refreshBtn),
      this.msg, this.report, this.targets, this.events);
    this.widget = addPanel(node, "lora_workbench_library_status", this.root, { min: 120, max: 460, width: 420 });
    this.schedule = debounce(() => this.refresh(), 300);
    panels.add(this);
    const onRemoved = node.onRemoved;
    node.onRemoved = (...args) => {
      panels.delete(this);
      return onRemoved?.apply(node, args);
    };
  }

  async refresh() {
    const { ok, data } = await callRoute("/library/status");
    if (!ok) {
      this.msg.className = "lw-msg error";
      this.msg.textContent = data?.error || "The library status is not available.";
      return;
    }
    this.show(data);
  }

  /** Only this node's library when it has one running or reported; else what the server knows. */
  mine(data) {
    const lib = this.node.widgets?.find((w) => w.name === "library")?.value;
    const watchers = data.watchers || [];
    const same = (p) => lib && p && String(p).replace(/[\\/]+$/, "") === String(lib).replace(/[\\/]+$/, "");
    const matched = watchers.filter((w) => same(w.library));
    return matched.length ? matched : watchers;
  }

  show(data) {
    this.msg.className = "lw-msg lw-muted";
    this.msg.textContent = data.library ? `default library: ${data.library}` : "";
    const watchers = this.mine(data);
    const running = watchers.filter((w) => w.running);
    this.dot.className = `lw-dot${running.length ? " on" : ""}`;
    this.root.dataset.watching = running.length ? "yes" : "no";
    this.watchText.textContent = running.length
      ? `watching ${running.map((w) => basename(w.library)).join(", ")} · ${running.reduce((a, w) => a + (w.relinks || 0), 0)} relinks`
      : "watcher off";

    const rep = data.last_report;
    if (rep) {
      const chips = COUNTS.filter(([k]) => rep[k] !== undefined).map(([k, label]) => {
        const n = count(rep, k);
        return el(`span.lw-chip${(k === "collisions" || k === "errors") && n ? ".bad" : ""}`,
          { dataset: { count: k } }, `${label} ${n}`);
      });
      const collisions = rep.collision_list || (Array.isArray(rep.collisions) ? rep.collisions : []);
      const errors = rep.error_list || (Array.isArray(rep.errors) ? rep.errors : []);
      const item = (c) => (typeof c === "string" ? c : Array.isArray(c) ? `${c[0]}: ${c[1]}` : `${c.path}: ${c.why}`);
      this.report.replaceChildren(...[
        el("div", {}, el("b", {}, "last pass"), " ",
          el("span.lw-muted", {}, `${rep.trigger || "link"}${rep.dry_run ? " (dry run)" : ""} · ${rep.library || ""}`)),
        el("div.lw-chips", {}, chips),
        collisions.length ? el("ul.lw-list", { title: "collisions (left alone)" }, collisions.slice(0, 8).map((c) => el("li", {}, item(c)))) : null,
        errors.length ? el("ul.lw-list", {}, errors.slice(0, 8).map((c) => el("li.error", {}, item(c)))) : null,
        (rep.skipped_targets || []).length
          ? el("div.lw-muted", {}, `skipped: ${rep.skipped_targets.slice(0, 3).join("; ")}`) : null,
      ].filter(Boolean));
    } else {
      this.report.replaceChildren(el("div.lw-muted", {}, "No link pass since ComfyUI started: queue this node."));
    }

    const targets = (data.targets || []).filter((t) => t.folder);
    if (targets.length) {
      const rows = targets.map((t) => el("tr", { dataset: { ui: t.ui, category: t.category } },
        el("td", {}, t.ui), el("td", { title: t.folder }, t.category), el("td.num", {}, String(t.links))));
      this.targets.replaceChildren(el("table.lw-table", { title: "Links into the library per target folder" },
        el("thead", {}, el("tr", {}, el("th", {}, "UI"), el("th", {}, "folder"), el("th.num", {}, "links"))),
        el("tbody", {}, rows)));
    } else {
      this.targets.replaceChildren();
    }

    const evs = watchers.flatMap((w) => w.last_events || []).slice(-6);
    this.events.replaceChildren(...(evs.length
      ? [el("div", {}, el("b", {}, "last events")),
        el("ul.lw-list", {}, evs.map((e) => el("li", {}, eventText(e))))]
      : []));
    fitNode(this.node);
  }
}

export function attachLibraryStatus(node) {
  const panel = new LibraryPanel(node);
  fitNode(node);
  setTimeout(() => panel.refresh(), 50);
  return panel;
}

export function onLibraryEvent() {
  for (const p of panels) p.schedule();
}
