"""What the training nodes show, generated from the settings table, and how workflows saved with the
first KohyaLoRATrain layout (one column of 50 widgets) are moved onto the short node + option nodes.

ComfyUI-shaped but pure (no ComfyUI import): `widget()` is an INPUT_TYPES entry, `layout()` is the
data web/kohya_train_layout.js is generated from, and `migrate_workflow()` is the Python twin of
web/train_migration.js (the browser runs that one when a workflow loads; the CLI and the tests run
this one; tests/unit/nodes/test_train_layout.py checks that both give the same result).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from .. import ui_workflow
from ..errors import ValidationError
from .settings import AUTO_FILE, DEFAULTS, GROUP, NONE_FILE, SETTING, Setting, in_group, option_groups

OPTIONS_TYPE = "LORA_TRAIN_OPTIONS"
OPTIONS_INPUT = "options"
MAIN_NODE = GROUP["main"].node
LAYOUT_VERSION = 2
LAYOUT_PROPERTY = "lora_workbench_layout"

# The first layout's widgets, in the order the frontend saved their values (frozen: it is what
# old workflows hold). `ckpt_name` is the node's own input, not a setting.
LEGACY_V1_WIDGETS: tuple[str, ...] = (
    "ckpt_name", "epochs", "width", "height", "seed", "network_dim", "network_alpha", "learning_rate",
    "unet_lr", "text_encoder_lr", "noise_offset", "sample_sampler", "script", "output_name", "model_type",
    "batch_size", "save_every_n_epochs", "max_train_steps", "step_rule", "train_text_encoder", "optimizer",
    "lr_scheduler", "lr_warmup_steps", "mixed_precision", "save_precision", "caption_extension", "buckets",
    "min_bucket_reso", "max_bucket_reso", "sample_prompts", "sample_every_n_epochs", "sample_steps",
    "gradient_checkpointing", "cache_latents", "cache_latents_to_disk", "lowram", "attention",
    "v_parameterization", "data_loader_workers", "device", "launcher", "cpu_threads", "num_processes",
    "gpu_ids", "num_machines", "machine_rank", "main_process_ip", "main_process_port",
    "tokenizer_cache_dir", "show_samples", "link_to_library",
)  # fmt: skip
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")  # a seed's control widget value
_SEED_INDEX = LEGACY_V1_WIDGETS.index("seed")
TRAINER_HEIGHT = 900  # the short node with its training panel at its tallest; option nodes go below it


# --------------------------------------------------------------------------- widgets
def widget(s: Setting, files: Callable[[str], list[str]] | None = None) -> tuple:
    """The INPUT_TYPES entry of one setting: its widget, default, bounds and tooltip. A file picked
    from a ComfyUI folder is a dropdown of (auto), (none) and `files(folder)` (ComfyUI's list)."""
    opts: dict[str, Any] = {"default": s.default, "tooltip": s.help}
    if s.comfy_folder:
        kind: Any = [AUTO_FILE, NONE_FILE, *(files(s.comfy_folder) if files else [])]
    elif s.choices:
        kind = list(s.choices)
    elif s.type is bool:
        kind = "BOOLEAN"
    elif s.type is str:
        kind = "STRING"
        if s.multiline:
            opts["multiline"] = True
    else:
        kind = "INT" if s.type is int else "FLOAT"
        opts.update({"min": s.low, "max": s.high})
        if s.step is not None:
            opts["step"] = s.step
    opts.update(s.widget)
    return (kind, opts)


def main_widgets() -> tuple[str, ...]:
    """The main node's widget names in the order the frontend saves them (ckpt_name first)."""
    names = [s.name for s in in_group("main") if s.required] + [
        s.name for s in in_group("main") if not s.required
    ]
    return ("ckpt_name", *names)


def main_inputs() -> tuple[dict, dict]:
    """(required, optional) setting widgets of KohyaLoRATrain (the node adds dataset/ckpt/options)."""
    required = {s.name: widget(s) for s in in_group("main") if s.required}
    optional = {s.name: widget(s) for s in in_group("main") if not s.required}
    return required, optional


def legacy_inputs() -> dict:
    """Hidden inputs for the first layout's names that moved to option nodes: old API prompts that
    still send them keep working (the node maps them onto the options)."""
    out = {}
    for name in LEGACY_V1_WIDGETS:
        s = SETTING.get(name)
        if s is None or s.main:
            continue
        kind, _opts = widget(s)
        node = GROUP[s.group].node
        out[name] = (kind, {"tooltip": f"Input of the first layout, now on {node}; still accepted."})
    return out


def option_inputs(group: str, files: Callable[[str], list[str]] | None = None) -> dict:
    """The optional widgets of one option node (`files`: ComfyUI's file list of a folder)."""
    return {s.name: widget(s, files) for s in in_group(group)}


def group_node(name: str) -> str:
    """The node that shows a setting."""
    return GROUP[SETTING[name].group].node


# --------------------------------------------------------------------------- layout data
def layout() -> dict:
    """Everything the browser's migration needs, as JSON-able data."""
    return {
        "version": LAYOUT_VERSION,
        "layout_property": LAYOUT_PROPERTY,
        "options_type": OPTIONS_TYPE,
        "options_input": OPTIONS_INPUT,
        "main": {"type": MAIN_NODE, "widgets": list(main_widgets())},
        "legacy_v1_widgets": list(LEGACY_V1_WIDGETS),
        "control_values": list(CONTROL_VALUES),
        "option_nodes": [
            {"type": g.node, "group": g.key, "widgets": [s.name for s in in_group(g.key)]}
            for g in option_groups()
        ],
        "defaults": dict(DEFAULTS),
        "trainer_height": TRAINER_HEIGHT,
    }


# --------------------------------------------------------------------------- migration
def legacy_values(values: Any) -> list | None:
    """The first layout's 50 widget values, or None when `values` is not that layout."""
    if not isinstance(values, list):
        return None
    n = len(LEGACY_V1_WIDGETS)
    if len(values) == n + 1 and values[_SEED_INDEX + 1] in CONTROL_VALUES:
        values = values[: _SEED_INDEX + 1] + values[_SEED_INDEX + 2 :]
    return list(values) if len(values) == n else None


class _Graph:
    """Node/link bookkeeping for one UI-format graph (schema 0.4 link arrays or schema 1 objects)."""

    def __init__(self, ui: dict):
        self.ui = ui
        if ui.get("links") is None:
            ui["links"] = []
        self.links = ui["links"]
        self.object_links = ui.get("version") == 1 or any(isinstance(x, dict) for x in self.links)
        self.by_id = {self._link_id(x): x for x in self.links}

    @staticmethod
    def _link_id(link) -> int:
        return int(link["id"] if isinstance(link, dict) else link[0])

    def _next(self, key_04: str, key_1: str, existing: list[int]) -> int:
        state = self.ui.get("state") if isinstance(self.ui.get("state"), dict) else None
        current = (state or {}).get(key_1) if self.object_links and state else self.ui.get(key_04)
        value = max([int(current or 0), *existing]) + 1
        if self.object_links and state is not None:
            state[key_1] = value
        else:
            self.ui[key_04] = value
        return value

    def new_node_id(self) -> int:
        return self._next("last_node_id", "lastNodeId", [int(n["id"]) for n in self.ui["nodes"]])

    def add_link(self, origin: int, origin_slot: int, target: int, target_slot: int) -> int:
        lid = self._next("last_link_id", "lastLinkId", list(self.by_id))
        if self.object_links:
            link: Any = {
                "id": lid,
                "origin_id": origin,
                "origin_slot": origin_slot,
                "target_id": target,
                "target_slot": target_slot,
                "type": OPTIONS_TYPE,
            }
        else:
            link = [lid, origin, origin_slot, target, target_slot, OPTIONS_TYPE]
        self.links.append(link)
        self.by_id[lid] = link
        return lid

    def retarget(self, link_id: int, target: int, target_slot: int) -> None:
        link = self.by_id.get(int(link_id))
        if link is None:
            return
        if isinstance(link, dict):
            link.update(target_id=target, target_slot=target_slot)
        else:
            link[3], link[4] = target, target_slot


def _option_node(node_id: int, spec: dict, values: dict, pos: list, mode: int) -> dict:
    return {
        "id": node_id,
        "type": spec["type"],
        "pos": pos,
        "size": [320, 40 + 26 * (len(spec["widgets"]) + 1)],
        "flags": {},
        "order": 0,
        "mode": mode,
        "inputs": [{"name": OPTIONS_INPUT, "type": OPTIONS_TYPE, "link": None}],
        "outputs": [{"name": OPTIONS_INPUT, "type": OPTIONS_TYPE, "links": [], "slot_index": 0}],
        "properties": {"Node name for S&R": spec["type"]},
        "widgets_values": [values.get(n, DEFAULTS[n]) for n in spec["widgets"]],
    }


def _split_inputs(node: dict, keep_widgets: set[str]) -> tuple[list, dict]:
    """The trainer's inputs that stay, and {setting: input} for linked widget inputs that moved."""
    stay, moved = [], {}
    for inp in node.get("inputs") or []:
        name = (inp.get("widget") or {}).get("name")
        if name is None or name in keep_widgets:
            stay.append(inp)
        elif inp.get("link") is not None and name in SETTING:
            moved[name] = inp
    return stay, moved


def _chain_option_nodes(graph: _Graph, trainer: dict, moved: dict, linked: dict) -> list[dict]:
    """One option node per group that holds a moved value or a moved linked input, chained in group
    order in a row under the trainer; returns them (the last feeds the trainer)."""
    created: list[dict] = []
    x, y = _xy(trainer.get("pos"))
    y += TRAINER_HEIGHT + 60
    for spec in layout()["option_nodes"]:
        names = set(spec["widgets"])
        if not names & (set(moved) | set(linked)):
            continue
        opt = _option_node(graph.new_node_id(), spec, moved, [x, y], trainer.get("mode", 0))
        x += opt["size"][0] + 20
        opt["inputs"] += [inp for name, inp in linked.items() if name in names]
        if created:
            _connect(graph, created[-1], opt, 0)
        graph.ui["nodes"].append(opt)
        created.append(opt)
    return created


def _xy(value: Any) -> tuple[float, float]:
    """A position or size as the frontend saves it ([x, y], or {"0": x, "1": y} from a typed array);
    (0, 0) for anything else: where the option nodes go is no reason to refuse a workflow."""
    if isinstance(value, dict):
        value = [value.get("0"), value.get("1")]
    if isinstance(value, list) and len(value) >= 2:
        x, y = value[0], value[1]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
            return x, y
    return 0, 0


def _connect(graph: _Graph, source: dict, target: dict, slot: int) -> None:
    lid = graph.add_link(source["id"], 0, target["id"], slot)
    target["inputs"][slot]["link"] = lid
    source["outputs"][0]["links"].append(lid)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values are (JS `===` on numbers): True is not 1."""
    return a is b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _migrate_trainer(graph: _Graph, node: dict, values: list, where: str = "") -> str:
    old = dict(zip(LEGACY_V1_WIDGETS, values, strict=True))
    main = main_widgets()
    node["widgets_values"] = [old[n] for n in main]
    moved = {n: v for n, v in old.items() if n not in main and not _same(v, DEFAULTS[n])}
    stay, linked = _split_inputs(node, set(main))
    options_slot = max((i + 1 for i, inp in enumerate(stay) if not inp.get("widget")), default=0)
    stay.insert(options_slot, {"name": OPTIONS_INPUT, "type": OPTIONS_TYPE, "link": None})
    node["inputs"] = stay
    created = _chain_option_nodes(graph, node, moved, linked)
    if created:
        _connect(graph, created[-1], node, options_slot)
    for owner in (node, *created):  # links name their target slot: renumber after the inputs moved
        for slot, inp in enumerate(owner["inputs"]):
            if inp.get("link") is not None:
                graph.retarget(inp["link"], owner["id"], slot)
    if not isinstance(node.get("properties"), dict):
        node["properties"] = {}
    node["properties"][LAYOUT_PROPERTY] = LAYOUT_VERSION
    node["size"] = [max(400, _xy(node.get("size"))[0]), TRAINER_HEIGHT]
    kinds = ", ".join(o["type"] for o in created) or "no option node (every moved value was a default)"
    return f"{MAIN_NODE} node {node['id']}{where}: moved to the short layout; {kinds}"


def graphs_in(ui: dict) -> list[tuple[dict, str]]:
    """The workflow's graph and each subgraph definition in it (the frontend saves them under
    `definitions.subgraphs`, nested ones too), with where each is for the notes, each checked
    (ui_workflow.checked_graphs: a malformed one is a sentence). A subgraph keeps its own nodes, links
    and `state` (its node and link ids count on their own)."""
    return ui_workflow.checked_graphs(ui)


def _migrate_graph(ui: dict, where: str) -> list[str]:
    graph = _Graph(ui)
    notes = []
    for node in list(ui["nodes"]):
        is_trainer = isinstance(node, dict) and node.get("type") == MAIN_NODE
        values = legacy_values(node.get("widgets_values")) if is_trainer else None
        if values is not None:
            notes.append(_migrate_trainer(graph, node, values, where))
    return notes


def migrate_workflow(ui: dict) -> tuple[dict, list[str]]:
    """A copy of a UI-format workflow with every first-layout KohyaLoRATrain (in the graph and in its
    subgraphs) moved onto the short node and option nodes (non-default values kept, links to moved
    widget inputs kept); and what changed."""
    if not isinstance(ui, dict) or not isinstance(ui.get("nodes"), list):
        return ui, []
    graphs_in(ui)  # every graph checked before any is touched: nothing is half-migrated
    try:
        out = copy.deepcopy(ui)
    except RecursionError:
        raise ValidationError(
            "The workflow holds values nested too deep to read; export the workflow from ComfyUI again."
        ) from None
    return out, [note for graph, where in graphs_in(out) for note in _migrate_graph(graph, where)]
