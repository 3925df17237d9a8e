"""scripts/resave_examples.py writes back what the frontend saved only when it kept the author's graph:
widget values, positions, links and groups; a node may gain widgets after its saved ones (a setting
added to the end of its group arrives with its default)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def resave_module():
    spec = importlib.util.spec_from_file_location("resave_examples", REPO / "scripts" / "resave_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRAPH = {
    "nodes": [
        {"id": 1, "type": "KohyaFamilyOptions", "pos": [0, 0], "widgets_values": ["auto", True, 16]},
        {"id": 2, "type": "KSampler", "pos": [400, 0], "widgets_values": [42, "fixed", 20]},
    ],
    "links": [[1, 1, 0, 2, 0, "MODEL"]],
    "groups": [],
}


def test_a_resave_that_changes_nothing_is_kept():
    assert resave_module().unchanged(GRAPH, copy.deepcopy(GRAPH)) == []


def test_new_widgets_after_the_saved_ones_are_taken_with_their_defaults():
    after = copy.deepcopy(GRAPH)
    after["nodes"][0]["widgets_values"] += ["auto", False]
    assert resave_module().unchanged(GRAPH, after) == []


def test_a_changed_or_dropped_widget_value_is_refused():
    changed, dropped = copy.deepcopy(GRAPH), copy.deepcopy(GRAPH)
    changed["nodes"][0]["widgets_values"][2] = 0
    dropped["nodes"][1]["widgets_values"] = [42, "fixed"]
    assert resave_module().unchanged(GRAPH, changed) == ["node 1 widgets_values"]
    assert resave_module().unchanged(GRAPH, dropped) == ["node 2 widgets_values"]


def test_moved_nodes_and_changed_links_are_refused():
    after = copy.deepcopy(GRAPH)
    after["nodes"][1]["pos"] = [500, 0]
    after["links"] = []
    assert resave_module().unchanged(GRAPH, after) == ["links", "node 2 pos"]
