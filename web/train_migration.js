// Moves workflows saved with the first KohyaLoRATrain layout (one column of 51 widget values) onto the
// short node + chained option nodes, before the frontend reads widget values by position. Pure (no
// ComfyUI import) so node can test it; lora_workbench.js calls it from beforeConfigureGraph.
// The Python twin is lora_workbench/training/node_layout.py:migrate_workflow; keep the two in step
// (tests/unit/nodes/test_train_layout.py runs both on the same workflows and compares).
import { LAYOUT } from "./kohya_train_layout.js";

const SEED_INDEX = LAYOUT.legacy_v1_widgets.indexOf("seed");

/** The first layout's widget values, or null when `values` is not that layout. */
export function legacyValues(values) {
  if (!Array.isArray(values)) return null;
  const n = LAYOUT.legacy_v1_widgets.length;
  if (values.length === n + 1 && LAYOUT.control_values.includes(values[SEED_INDEX + 1])) {
    values = [...values.slice(0, SEED_INDEX + 1), ...values.slice(SEED_INDEX + 2)];
  }
  return values.length === n ? [...values] : null;
}

/** Node/link bookkeeping for one UI-format graph (schema 0.4 link arrays or schema 1 objects). */
class Graph {
  constructor(ui) {
    this.ui = ui;
    if (!Array.isArray(ui.links)) ui.links = [];
    this.links = ui.links;
    this.objectLinks = ui.version === 1 || this.links.some((l) => l && !Array.isArray(l));
    this.byId = new Map(this.links.map((l) => [Number(Array.isArray(l) ? l[0] : l.id), l]));
  }

  next(key04, key1, existing) {
    const state = this.ui.state && typeof this.ui.state === "object" ? this.ui.state : null;
    const current = this.objectLinks && state ? state[key1] : this.ui[key04];
    const value = Math.max(Number(current || 0), ...existing) + 1;
    if (this.objectLinks && state) state[key1] = value;
    else this.ui[key04] = value;
    return value;
  }

  newNodeId() {
    return this.next("last_node_id", "lastNodeId", this.ui.nodes.map((n) => Number(n.id)));
  }

  addLink(origin, originSlot, target, targetSlot) {
    const id = this.next("last_link_id", "lastLinkId", [...this.byId.keys()]);
    const type = LAYOUT.options_type;
    const link = this.objectLinks
      ? { id, origin_id: origin, origin_slot: originSlot, target_id: target, target_slot: targetSlot, type }
      : [id, origin, originSlot, target, targetSlot, type];
    this.links.push(link);
    this.byId.set(id, link);
    return id;
  }

  retarget(linkId, target, targetSlot) {
    const link = this.byId.get(Number(linkId));
    if (!link) return;
    if (Array.isArray(link)) { link[3] = target; link[4] = targetSlot; }
    else { link.target_id = target; link.target_slot = targetSlot; }
  }
}

function optionNode(id, spec, values, pos, mode) {
  return {
    id,
    type: spec.type,
    pos,
    size: [320, 40 + 26 * (spec.widgets.length + 1)],
    flags: {},
    order: 0,
    mode,
    inputs: [{ name: LAYOUT.options_input, type: LAYOUT.options_type, link: null }],
    outputs: [{ name: LAYOUT.options_input, type: LAYOUT.options_type, links: [], slot_index: 0 }],
    properties: { "Node name for S&R": spec.type },
    widgets_values: spec.widgets.map((n) => (n in values ? values[n] : LAYOUT.defaults[n])),
  };
}

/** The trainer's inputs that stay, and {setting: input} for linked widget inputs that moved. */
function splitInputs(node, keepWidgets) {
  const stay = [];
  const moved = {};
  for (const inp of node.inputs ?? []) {
    const name = inp.widget?.name;
    if (name == null || keepWidgets.has(name)) stay.push(inp);
    else if (inp.link != null && name in LAYOUT.defaults) moved[name] = inp;
  }
  return [stay, moved];
}

function connect(graph, source, target, slot) {
  const id = graph.addLink(source.id, 0, target.id, slot);
  target.inputs[slot].link = id;
  source.outputs[0].links.push(id);
}

// One option node per group that holds a moved value or a moved linked input, chained in group order
// in a row under the trainer; returns them (the last feeds the trainer).
function chainOptionNodes(graph, trainer, moved, linked) {
  const created = [];
  const pos = trainer.pos ?? [0, 0];
  let x = pos[0];
  const y = pos[1] + LAYOUT.trainer_height + 60;
  const wanted = new Set([...Object.keys(moved), ...Object.keys(linked)]);
  for (const spec of LAYOUT.option_nodes) {
    if (!spec.widgets.some((n) => wanted.has(n))) continue;
    const opt = optionNode(graph.newNodeId(), spec, moved, [x, y], trainer.mode ?? 0);
    x += opt.size[0] + 20;
    for (const [name, inp] of Object.entries(linked)) if (spec.widgets.includes(name)) opt.inputs.push(inp);
    if (created.length) connect(graph, created[created.length - 1], opt, 0);
    graph.ui.nodes.push(opt);
    created.push(opt);
  }
  return created;
}

function migrateTrainer(graph, node, values, where) {
  const old = Object.fromEntries(LAYOUT.legacy_v1_widgets.map((n, i) => [n, values[i]]));
  const main = LAYOUT.main.widgets;
  node.widgets_values = main.map((n) => old[n]);
  const moved = {};
  for (const [n, v] of Object.entries(old)) if (!main.includes(n) && v !== LAYOUT.defaults[n]) moved[n] = v;
  const [stay, linked] = splitInputs(node, new Set(main));
  let optionsSlot = 0;
  stay.forEach((inp, i) => { if (!inp.widget) optionsSlot = i + 1; });
  stay.splice(optionsSlot, 0, { name: LAYOUT.options_input, type: LAYOUT.options_type, link: null });
  node.inputs = stay;
  const created = chainOptionNodes(graph, node, moved, linked);
  if (created.length) connect(graph, created[created.length - 1], node, optionsSlot);
  for (const owner of [node, ...created]) {
    owner.inputs.forEach((inp, slot) => { if (inp.link != null) graph.retarget(inp.link, owner.id, slot); });
  }
  node.properties = { ...(node.properties ?? {}), [LAYOUT.layout_property]: LAYOUT.version };
  node.size = [Math.max(400, (node.size ?? [0])[0]), LAYOUT.trainer_height];
  const kinds = created.map((o) => o.type).join(", ") || "no option node (every moved value was a default)";
  return `${LAYOUT.main.type} node ${node.id}${where}: moved to the short layout; ${kinds}`;
}

/** The workflow's graph and each subgraph definition in it (`definitions.subgraphs`, nested ones too),
 * with where each is for the notes. A subgraph keeps its own nodes, links and `state`. */
export function graphsIn(ui) {
  const found = [];
  const todo = [[ui, ""]];
  while (todo.length) {
    const [graph, where] = todo.shift();
    if (!graph || typeof graph !== "object" || !Array.isArray(graph.nodes)) continue;
    found.push([graph, where]);
    const defs = graph.definitions;
    const subs = defs && typeof defs === "object" ? defs.subgraphs : null;
    for (const sub of Array.isArray(subs) ? subs : []) {
      const name = sub && typeof sub === "object" ? sub.name || sub.id || "?" : "?";
      todo.push([sub, ` in subgraph "${name}"`]);
    }
  }
  return found;
}

function migrateGraph(ui, where) {
  const graph = new Graph(ui);
  const notes = [];
  for (const node of [...ui.nodes]) {
    const isTrainer = node && typeof node === "object" && node.type === LAYOUT.main.type;
    const values = isTrainer ? legacyValues(node.widgets_values) : null;
    if (values) notes.push(migrateTrainer(graph, node, values, where));
  }
  return notes;
}

/** Migrate a UI-format workflow in place (its graph and its subgraphs); returns one note per migrated
 * KohyaLoRATrain. */
export function migrateWorkflow(ui) {
  if (!ui || typeof ui !== "object" || !Array.isArray(ui.nodes)) return [];
  return graphsIn(ui).flatMap(([graph, where]) => migrateGraph(graph, where));
}
