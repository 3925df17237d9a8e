"""Turn a workflow as the ComfyUI frontend saves it (UI format, schema 0.4) into the API format that
POST /prompt takes, and apply `--set node.input=value` overrides to an API graph.

The widget order comes from the server's /object_info (required inputs, then optional, in
declaration order), as the frontend builds its widgets. Covers our example workflows and plain graphs:
links, Reroute and PrimitiveNode pass-through, muted (mode 2) and bypassed (mode 4) nodes, and
frontend-only nodes (Note, MarkdownNote) dropped. Subgraphs (schema 1) are not handled.
"""

from __future__ import annotations

from typing import Any

from .. import numbers, ui_workflow
from ..errors import ValidationError
from ..terminal import shown

# Nodes that live only in the browser: never sent to the server.
FRONTEND_ONLY = {
    "Note",
    "MarkdownNote",
    "Reroute",
    "PrimitiveNode",
    "Label (rgthree)",
    "Fast Groups Muter (rgthree)",
}
MODE_MUTED, MODE_BYPASSED = 2, 4
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}  # control_after_generate's own widget
SEED_NAMES = {"seed", "noise_seed"}  # the frontend adds a control widget to these INT inputs
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")

Prompt = dict[str, dict[str, Any]]


def is_ui_format(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def is_api_format(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, dict) and "class_type" in v for v in data.values())
    )


def widget_inputs(node_info: dict) -> list[tuple[str, str, dict]]:
    """(name, type, options) of the inputs that are widgets, in the frontend's widget order."""
    out = []
    spec = node_info.get("input", {})
    order = node_info.get("input_order") or {}
    for section in ("required", "optional"):
        inputs = spec.get(section) or {}
        names = order.get(section) or list(inputs)
        for name in names:
            if name not in inputs:
                continue
            entry = inputs[name]
            kind = entry[0] if entry else None
            opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            if isinstance(kind, list):
                kind = "COMBO"
            if kind in WIDGET_TYPES and not opts.get("forceInput"):
                out.append((name, kind, opts))
    return out


def _has_control_widget(name: str, kind: str, opts: dict) -> bool:
    if "control_after_generate" in opts:
        return bool(opts["control_after_generate"])
    return kind == "INT" and name in SEED_NAMES


def map_widgets(node: dict, node_info: dict) -> dict[str, Any]:
    """Widget values of one UI node as {input name: value}."""
    values = node.get("widgets_values")
    if values is None:
        return {}
    specs = widget_inputs(node_info)
    if isinstance(values, dict):  # some nodes save widgets by name
        return {name: values[name] for name, _k, _o in specs if name in values}
    out: dict[str, Any] = {}
    i = 0
    for index, (name, kind, opts) in enumerate(specs):
        if i >= len(values):
            break
        out[name] = values[i]
        i += 1
        if _has_control_widget(name, kind, opts) and i < len(values) and values[i] in CONTROL_VALUES:
            i += 1
        left_over = (len(values) - i) - (len(specs) - index - 1)
        if any(opts.get(flag) for flag in UPLOAD_FLAGS) and left_over > 0:
            i += 1  # the upload button's own value ("image")
    return out


class _Graph:
    def __init__(self, ui: dict):
        self.nodes = {int(n["id"]): n for n in ui.get("nodes", [])}
        self.links: dict[int, tuple[int, int, str]] = {}
        for link in ui.get("links") or []:
            if isinstance(link, dict):  # schema 1
                self.links[int(link["id"])] = (
                    int(link["origin_id"]),
                    int(link["origin_slot"]),
                    link.get("type"),
                )
            else:
                self.links[int(link[0])] = (int(link[1]), int(link[2]), link[5] if len(link) > 5 else None)

    def source(self, link_id: int | None, seen: frozenset = frozenset()):
        """The (node id, slot) a link really comes from, through Reroutes and bypassed nodes; a
        ("value", v) pair for a PrimitiveNode; None when it comes from a muted node or nowhere."""
        if link_id is None or link_id not in self.links:
            return None
        origin, slot, ltype = self.links[link_id]
        node = self.nodes.get(origin)
        if node is None or origin in seen:
            return None
        seen = seen | {origin}
        mode = node.get("mode", 0)
        kind = node.get("type")
        if kind == "PrimitiveNode":
            values = node.get("widgets_values")
            return ("value", values[0]) if isinstance(values, list) and values else None
        if kind == "Reroute":
            inputs = node.get("inputs") or []
            return self.source(inputs[0].get("link"), seen) if inputs else None
        if mode == MODE_MUTED:
            return None
        if mode == MODE_BYPASSED:
            return self._bypass(node, slot, ltype, seen)
        return (origin, slot)

    def _bypass(self, node: dict, slot: int, ltype: str | None, seen: frozenset):
        """A bypassed node passes an input of the output's type through (same slot first, like the frontend)."""
        inputs = [i for i in node.get("inputs") or [] if i.get("link") is not None]
        outputs = node.get("outputs") or []
        if ltype is None and slot < len(outputs):
            ltype = outputs[slot].get("type")
        all_inputs = node.get("inputs") or []
        if (
            slot < len(all_inputs)
            and all_inputs[slot].get("type") == ltype
            and all_inputs[slot].get("link") is not None
        ):
            return self.source(all_inputs[slot]["link"], seen)
        for inp in inputs:
            if inp.get("type") == ltype:
                return self.source(inp["link"], seen)
        return None


def ui_to_api(ui: dict, object_info: dict) -> Prompt:
    """Convert a UI-format workflow to an API-format prompt using the server's /object_info."""
    _check_convertible(ui)
    graph = _Graph(ui)
    prompt: Prompt = {}
    missing: list[str] = []
    for nid in sorted(graph.nodes):
        node = graph.nodes[nid]
        if not _is_sent(node):
            continue
        info = object_info.get(node.get("type"))
        if info is None:
            missing.append(f"{node.get('type')} (node {nid})")
            continue
        prompt[str(nid)] = _api_entry(graph, node, info)
    if missing:
        raise ValidationError(
            "The server does not know these node types: "
            + ", ".join(missing)
            + ". Install the custom nodes they come from, or remove them."
        )
    _drop_dangling_links(prompt)
    return prompt


def _check_convertible(ui: dict) -> None:
    if not is_ui_format(ui):
        raise ValidationError("This is not a UI-format workflow (no nodes/links lists).")
    defs = ui.get("definitions")
    if isinstance(defs, dict) and defs.get("subgraphs"):
        raise ValidationError(
            "This workflow uses subgraphs, which the converter does not handle: "
            "export it with Workflow -> Export (API) instead."
        )
    ui_workflow.checked_graphs(ui)  # a node, link or counter of the wrong shape: a sentence naming it


def _is_sent(node: dict) -> bool:
    """False for browser-only nodes and muted or bypassed ones: the server never sees them."""
    return node.get("type") not in FRONTEND_ONLY and node.get("mode", 0) not in (MODE_MUTED, MODE_BYPASSED)


def _api_entry(graph: _Graph, node: dict, info: dict) -> dict[str, Any]:
    """One node of the API prompt: its widget values by name, then its linked inputs over them."""
    kind = node.get("type")
    inputs = map_widgets(node, info)
    _apply_links(graph, node, inputs)
    title = node.get("title") or info.get("display_name") or kind
    return {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}


def _apply_links(graph: _Graph, node: dict, inputs: dict[str, Any]) -> None:
    """Each linked input as [source id, slot], a PrimitiveNode's value, or dropped (from a muted node)."""
    for inp in node.get("inputs") or []:
        if inp.get("link") is None:
            continue
        name = inp.get("name")
        try:
            src = graph.source(inp["link"])
        except RecursionError:
            raise ValidationError(
                f"Node {node.get('id')} ({shown(node.get('type'))}): the link into its input {shown(name)!r} "
                f"passes through too many Reroute or bypassed nodes to follow; shorten the chain."
            ) from None
        if src is None:
            inputs.pop(name, None)  # from a muted node: as if unconnected
        elif src[0] == "value":
            inputs[name] = src[1]
        else:
            inputs[name] = [str(src[0]), src[1]]


def _drop_dangling_links(prompt: Prompt) -> None:
    """Drop links to nodes that were not converted (bypassed chains ending nowhere)."""
    for entry in prompt.values():
        for name, value in list(entry["inputs"].items()):
            if _is_link(value) and value[0] not in prompt:
                del entry["inputs"][name]


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


# ---------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[str, str, str]:
    """ "node.input=value" -> (node, input, raw value); node is an id or a title (titles may hold dots)."""
    target, sep, value = text.partition("=")
    node, dot, name = target.rpartition(".")
    if not sep or not dot or not node or not name:
        raise ValidationError(f"--set {text!r} is not NODE.INPUT=VALUE (NODE is a node id or its title).")
    return node.strip(), name.strip(), value


def find_node(prompt: Prompt, node: str) -> str:
    """The id of the node named by id, by exact title, or by class_type when that is unique."""
    if node in prompt:
        return node
    for key in ("title", "class"):
        hits = [
            nid
            for nid, e in prompt.items()
            if (e.get("_meta", {}).get("title") if key == "title" else e.get("class_type")) == node
        ]
        if not hits:
            lower = node.lower()
            hits = [
                nid
                for nid, e in prompt.items()
                if str(e.get("_meta", {}).get("title") if key == "title" else e.get("class_type")).lower()
                == lower
            ]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValidationError(
                f"--set: {node!r} matches nodes {', '.join(sorted(hits, key=int))}; use the id."
            )
    known = ", ".join(
        f"{nid} ({e.get('_meta', {}).get('title') or e.get('class_type')})" for nid, e in prompt.items()
    )
    raise ValidationError(f"--set: no node {node!r} in this workflow. Nodes: {known}.")


def coerce(raw: str, kind: str | None) -> Any:
    """The override text as the input's type (INT, FLOAT, BOOLEAN, STRING, combo); JSON-guessed if unknown."""
    if kind in ("STRING", "COMBO"):
        return raw
    try:
        if kind == "INT":
            return int(raw)
        if kind == "FLOAT":
            return numbers.parse_float(raw)
    except numbers.OutOfRange as exc:
        raise ValidationError(f"--set value {exc}.") from None
    except ValueError:
        raise ValidationError(f"--set value {raw!r} is not a number ({kind}).") from None
    if kind == "BOOLEAN":
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValidationError(f"--set value {raw!r} is not a boolean (true/false).")
    try:
        return numbers.loads(raw)
    except numbers.OutOfRange as exc:
        raise ValidationError(f"--set value {exc}.") from None
    except (ValueError, RecursionError):
        return raw


def _section(info: dict, section: str) -> dict:
    spec = info.get("input") if isinstance(info.get("input"), dict) else {}
    entries = spec.get(section)
    return entries if isinstance(entries, dict) else {}


def shown_inputs(info: dict) -> list[str]:
    """The inputs a node declares (required, then optional), per its /object_info entry."""
    return [name for section in ("required", "optional") for name in _section(info, section)]


def hidden_value_inputs(info: dict) -> list[str]:
    """Hidden inputs that take a value from the prompt: declared with a type like any input (a node
    keeps the inputs of an older layout so that old prompts still run). The server fills the others
    itself (UNIQUE_ID, PROMPT, ...)."""
    return [name for name, e in _section(info, "hidden").items() if isinstance(e, list | tuple) and e]


def input_kind(object_info: dict | None, class_type: str, name: str) -> str | None:
    info = (object_info or {}).get(class_type)
    if not info:
        return None
    for section in ("required", "optional", "hidden"):
        entry = _section(info, section).get(name)
        if isinstance(entry, list | tuple) and entry:
            return "COMBO" if isinstance(entry[0], list) else str(entry[0])
    return None


def _taken_types(info: dict) -> set[str]:
    entries = (e for s in ("required", "optional") for e in _section(info, s).values())
    return {e[0] for e in entries if isinstance(e, list | tuple) and e and isinstance(e[0], str)}


def _chain_sources(prompt: Prompt, nid: str, object_info: dict) -> list[tuple[str, dict]]:
    """(node id, its /object_info) of the links into `nid` whose source node takes the very type it
    gives on that link (option nodes feeding a trainer); never a dataset, a model or a plain value."""
    out = []
    for value in prompt[nid].get("inputs", {}).values():
        if not _is_link(value) or value[0] not in prompt:
            continue
        info = object_info.get(prompt[value[0]].get("class_type")) or {}
        outputs = info.get("output") or []
        given = outputs[value[1]] if 0 <= value[1] < len(outputs) else None
        if isinstance(given, str) and given not in WIDGET_TYPES and given in _taken_types(info):
            out.append((value[0], info))
    return out


def chain_holder(prompt: Prompt, nid: str, name: str, object_info: dict) -> str | None:
    """The nearest node up the chains into `nid` (see _chain_sources) that shows the input `name`."""
    seen, queue = {nid}, [nid]
    while queue:
        for src, info in _chain_sources(prompt, queue.pop(0), object_info):
            if src in seen:
                continue
            seen.add(src)
            if name in shown_inputs(info):
                return src
            queue.append(src)
    return None


def _override_target(prompt: Prompt, nid: str, name: str, object_info: dict | None, notes: list) -> str:
    """The node an override of `name` on node `nid` goes to. An input the node shows: that node. An
    input it accepts only as a hidden one (an older layout's; e.g. KohyaLoRATrain's `device`, now on an
    option node): the node of its chain that shows it when there is one (its value would clash with
    the hidden one), else the node itself. Anything else is an error listing the valid names."""
    entry = prompt[nid]
    info = (object_info or {}).get(entry["class_type"])
    if info is None or name in shown_inputs(info):
        return nid
    hidden = hidden_value_inputs(info)
    if name not in hidden:
        also = f"; also accepted (inputs of an older layout): {', '.join(hidden)}" if hidden else ""
        raise ValidationError(
            f"--set: node {nid} ({entry['class_type']}) has no input {name!r}; "
            f"its inputs: {', '.join(shown_inputs(info))}{also}."
        )
    holder = chain_holder(prompt, nid, name, object_info)
    if holder is None:
        return nid
    title = prompt[holder].get("_meta", {}).get("title") or prompt[holder]["class_type"]
    notes.append(
        f"--set {entry['class_type']}.{name}: set on node {holder} ({title}), which feeds node {nid}"
    )
    return holder


def apply_overrides(
    prompt: Prompt, overrides: list[str], object_info: dict | None = None, notes: list[str] | None = None
) -> Prompt:
    """Set inputs in place from "node.input=value" strings; returns the prompt. `notes` receives a
    line for each override that went to another node than the one named (see _override_target)."""
    notes = notes if notes is not None else []
    for text in overrides:
        node, name, raw = parse_override(text)
        nid = _override_target(prompt, find_node(prompt, node), name, object_info, notes)
        entry = prompt[nid]
        entry["inputs"][name] = coerce(raw, input_kind(object_info, entry["class_type"], name))
    return prompt
