"""The shape of a UI-format workflow (as the ComfyUI frontend saves it), checked before the layout
migration or the UI -> API conversion reads it: a shared workflow of the wrong shape is one sentence
naming the node (its id and type when known), the link or the subgraph, never an AttributeError or
a RecursionError halfway through.

Only what those two read is checked: node ids, types, inputs, outputs, widget values, properties,
links, the id counters and the subgraph definitions (nested at most MAX_DEPTH deep).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ValidationError
from .terminal import shown

MAX_DEPTH = 32  # subgraphs inside subgraphs; the frontend has no reason to go near this
_ID_TEXT = re.compile(r"-?\d{1,18}")
AGAIN = "export the workflow from ComfyUI again"


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, limit: int = 60) -> str:
    text = shown(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_node_id(value: Any) -> bool:
    """A node id the frontend writes: a whole number (or its digits as text)."""
    return _whole(value) or (isinstance(value, str) and _ID_TEXT.fullmatch(value) is not None)


class _Checker:
    """The checks of one graph; `where` names it in the sentences (' in subgraph "Train"')."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, what: str) -> None:
        raise ValidationError(f"{what}{self.where}; {AGAIN}.")

    def graph(self, graph: dict) -> None:
        for i, node in enumerate(graph["nodes"]):
            self.node(i, node)
        links = graph.get("links")
        if links is not None and not isinstance(links, list):
            self.fail(f"The workflow's links are {_text(links)}, not a list")
        for i, link in enumerate(links or []):
            self.link(i, link)
        self.counters(graph)

    def node(self, i: int, node: Any) -> None:
        if not isinstance(node, dict):
            self.fail(f"Node entry {i} is {_text(node)}, not a node")
        kind = node.get("type")
        label = f"Node {_text(node.get('id'))}" + (f" ({shown(kind)})" if isinstance(kind, str) else "")
        if not is_node_id(node.get("id")):
            self.fail(f"{label} (entry {i}) has no whole-number id")
        if not isinstance(kind, str):
            self.fail(f"{label} has the type {_text(kind)}, not a node type name")
        for key, ok in (
            ("widgets_values", (list, dict)),
            ("inputs", list),
            ("outputs", list),
            ("properties", dict),
        ):
            if node.get(key) is not None and not isinstance(node[key], ok):
                self.fail(f"{label} has {key} {_text(node[key])}, not a {_kinds(ok)}")
        if node.get("mode") is not None and not _whole(node["mode"]):
            self.fail(f"{label} has the mode {_text(node['mode'])}, not a whole number")
        for slot in node.get("inputs") or []:
            self.input(label, slot)
        for slot in node.get("outputs") or []:
            self.output(label, slot)

    def input(self, label: str, slot: Any) -> None:
        if not isinstance(slot, dict):
            self.fail(f"{label} has the input {_text(slot)}, not an input object")
        link, widget = slot.get("link"), slot.get("widget")
        if link is not None and not _whole(link):
            self.fail(f"{label}'s input {_text(slot.get('name'))} has the link {_text(link)}")
        if widget is not None and not (isinstance(widget, dict) and isinstance(widget.get("name"), str)):
            self.fail(f"{label}'s input {_text(slot.get('name'))} has the widget {_text(widget)}")
        if not isinstance(slot.get("name", ""), str):
            self.fail(f"{label} has an input named {_text(slot.get('name'))}")

    def output(self, label: str, slot: Any) -> None:
        if not isinstance(slot, dict):
            self.fail(f"{label} has the output {_text(slot)}, not an output object")
        links = slot.get("links")
        if links is not None and not (isinstance(links, list) and all(_whole(x) for x in links)):
            self.fail(f"{label}'s output {_text(slot.get('name'))} has the links {_text(links)}")

    def link(self, i: int, link: Any) -> None:
        if isinstance(link, dict):
            ends = [link.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot")]
        elif isinstance(link, list) and len(link) >= 5:
            ends = link[:5]
        else:
            ends = None
        if ends is None or not all(_whole(x) or (k in (1, 3) and is_node_id(x)) for k, x in enumerate(ends)):
            self.fail(f"Link entry {i} is {_text(link)}, not [id, node, slot, node, slot, type]")

    def counters(self, graph: dict) -> None:
        for key in ("last_node_id", "last_link_id"):
            if graph.get(key) is not None and not _whole(graph[key]):
                self.fail(f"The workflow's {key} is {_text(graph[key])}, not a whole number")
        state = graph.get("state")
        if state is not None and not isinstance(state, dict):
            self.fail(f"The workflow's state is {_text(state)}, not an object")
        for key in ("lastNodeId", "lastLinkId"):
            if state and state.get(key) is not None and not _whole(state[key]):
                self.fail(f"The workflow's state.{key} is {_text(state[key])}, not a whole number")


def _kinds(ok) -> str:
    names = {list: "list", dict: "object"}
    return " or ".join(names[k] for k in (ok if isinstance(ok, tuple) else (ok,)))


def _subgraphs(graph: dict, where: str) -> list[tuple[Any, str]]:
    defs = graph.get("definitions")
    if defs is None:
        return []
    if not isinstance(defs, dict):
        raise ValidationError(f"The workflow's definitions{where} are {_text(defs)}, not an object; {AGAIN}.")
    subs = defs.get("subgraphs")
    if subs is None:
        return []
    if not isinstance(subs, list):
        raise ValidationError(f"The workflow's subgraphs{where} are {_text(subs)}, not a list; {AGAIN}.")
    out = []
    for i, sub in enumerate(subs):
        name = (sub.get("name") or sub.get("id")) if isinstance(sub, dict) else None
        label = f' in subgraph "{shown(name)}"' if isinstance(name, str) else f" in subgraph entry {i}{where}"
        if not isinstance(sub, dict) or not isinstance(sub.get("nodes"), list):
            raise ValidationError(f"The workflow's subgraph entry {i}{where} has no list of nodes; {AGAIN}.")
        out.append((sub, label))
    return out


def checked_graphs(ui: dict) -> list[tuple[dict, str]]:
    """The workflow's graph and every subgraph definition in it (nested ones too) with where each is
    for the sentences, every one checked; ValidationError for the first that is of the wrong shape."""
    found, level = [], [(ui, "")]
    for _depth in range(MAX_DEPTH + 1):
        if not level:
            return found
        following = []
        for graph, where in level:
            _Checker(where).graph(graph)
            found.append((graph, where))
            following += _subgraphs(graph, where)
        level = following
    raise ValidationError(f"The workflow's subgraphs are nested more than {MAX_DEPTH} deep; {AGAIN}.")
