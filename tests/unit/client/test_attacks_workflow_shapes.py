"""Attack: a shared UI-format workflow of the wrong shape. The layout migration (the Python twin of
web/train_migration.js) and the UI -> API conversion check every graph before they read it: each
malformed shape is one sentence naming the node (its id and type when known), the link or the
subgraph; never an AttributeError, a TypeError or a RecursionError, and nothing is half-migrated.
The CLI's `queue` says that sentence as `error:` with exit code 2."""

from __future__ import annotations

import copy
import json

import pytest

from lora_workbench import cli
from lora_workbench.client import queue_client as qc
from lora_workbench.client import workflow as wf
from lora_workbench.errors import ValidationError
from lora_workbench.training.node_layout import migrate_workflow
from tests.unit.nodes.test_train_layout import trainer, v1_workflow

TRAINER = r"Node 4 \(KohyaLoRATrain\)"


def nested_subgraphs(depth: int) -> dict:
    ui = v1_workflow()
    inner = ui
    for i in range(depth):
        sub = {"id": f"s{i}", "name": f"S{i}", "nodes": [], "links": []}
        inner["definitions"] = {"subgraphs": [sub]}
        inner = sub
    return ui


def _set(path: str, value):
    """A change to the trainer node (path 'trainer.key'), or to the workflow (path 'key')."""

    def change(ui: dict) -> dict:
        owner, _, key = path.rpartition(".")
        target = trainer(ui) if owner == "trainer" else ui
        target[key] = value
        return ui

    return change


def _input(entry):
    def change(ui: dict) -> dict:
        trainer(ui)["inputs"][0] = entry
        return ui

    return change


def _append_node(entry):
    def change(ui: dict) -> dict:
        ui["nodes"].append(entry)
        return ui

    return change


def _link(entry):
    def change(ui: dict) -> dict:
        ui["links"][0] = entry
        return ui

    return change


def _output_links(value):
    def change(ui: dict) -> dict:
        trainer(ui)["outputs"][0]["links"] = value
        return ui

    return change


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


SHAPES = {
    "a node that is a string": (
        _append_node("KohyaLoRATrain"),
        r"Node entry 13 is 'KohyaLoRATrain', not a node",
    ),
    "a node that is a list": (_append_node([4, "KohyaLoRATrain"]), r"Node entry 13 is \[4, "),
    "an id that is a list": (
        _set("trainer.id", [4]),
        r"Node \[4\] \(KohyaLoRATrain\) \(entry 3\) has no whole",
    ),
    "an id that is missing": (_set("trainer.id", None), r"Node None \(KohyaLoRATrain\) \(entry 3\)"),
    "an id that is true": (_set("trainer.id", True), r"Node True \(KohyaLoRATrain\)"),
    "a type that is a list": (_set("trainer.type", ["KohyaLoRATrain"]), r"Node 4 has the type \['Kohya"),
    "widgets_values a number": (_set("trainer.widgets_values", 7), TRAINER + " has widgets_values 7"),
    "widgets_values a string": (_set("trainer.widgets_values", "x" * 50), TRAINER + " has widgets_values"),
    "inputs an object": (_set("trainer.inputs", {"dataset": 1}), TRAINER + " has inputs"),
    "an input that is a string": (_input("dataset"), TRAINER + " has the input 'dataset'"),
    "an input link that is a list": (
        _input({"name": "dataset", "link": [1]}),
        TRAINER + "'s input 'dataset'",
    ),
    "an input widget that is text": (
        _input({"name": "epochs", "link": None, "widget": "epochs"}),
        TRAINER + "'s input 'epochs' has the widget",
    ),
    "an input name that is a list": (_input({"name": ["x"], "link": None}), TRAINER + " has an input named"),
    "output links that are text": (_output_links("1,2"), TRAINER + "'s output .* has the links '1,2'"),
    "properties a list": (_set("trainer.properties", []), TRAINER + " has properties"),
    "a mode that is text": (_set("trainer.mode", "bypass"), TRAINER + " has the mode 'bypass'"),
    "links an object": (_set("links", {"1": [1, 2, 0, 4, 0, "X"]}), r"The workflow's links are \{"),
    "a link that is too short": (_link([1, 2]), r"Link entry 0 is \[1, 2\]"),
    "a link with a text slot": (_link([1, 2, "0", 4, 0, "X"]), r"Link entry 0 is"),
    "a link object without ids": (_link({"id": "a", "origin_id": 2}), r"Link entry 0 is \{"),
    "last_node_id text": (_set("last_node_id", "13"), r"last_node_id is '13'"),
    "state a list": (_set("state", [1]), r"state is \[1\]"),
    "state ids text": (_set("state", {"lastNodeId": "x"}), r"state.lastNodeId is 'x'"),
    "definitions a list": (_set("definitions", []), r"definitions are \[\]"),
    "subgraphs an object": (_set("definitions", {"subgraphs": {"a": 1}}), r"subgraphs are \{"),
    "a subgraph that is a string": (
        _set("definitions", {"subgraphs": ["S"]}),
        r"subgraph entry 0 has no list",
    ),
    "subgraphs nested 10,000 deep": (lambda ui: nested_subgraphs(10_000), r"nested more than 32 deep"),
    "values nested 5,000 deep": (
        _set("trainer.flags", _deep(5000)),
        r"nested too deep",
    ),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_a_malformed_workflow_is_one_sentence_and_nothing_is_migrated(case):
    make, said = SHAPES[case]
    ui = make(v1_workflow())
    before = None if "deep" in case else copy.deepcopy(ui)  # too deep to copy or compare
    with pytest.raises(ValidationError, match=said) as err:
        migrate_workflow(ui)
    assert str(err.value).endswith("export the workflow from ComfyUI again.")
    if before is not None:
        assert ui == before  # the caller's workflow is untouched


@pytest.mark.parametrize("case", sorted(set(SHAPES) - {"values nested 5,000 deep"}))
def test_the_converter_refuses_the_same_shapes_with_a_sentence(case):
    make, said = SHAPES[case]
    ui = make(v1_workflow())
    with pytest.raises(ValidationError):
        qc.prepare_prompt(ui, object_info={})


def test_odd_positions_and_sizes_still_migrate():
    ui = v1_workflow()
    trainer(ui)["pos"] = "far away"
    trainer(ui)["size"] = {"0": 500, "1": "tall"}
    trainer(ui)["properties"] = None
    new, notes = migrate_workflow(ui)
    assert notes and trainer(new)["size"] == [400, 900]


def test_a_reroute_chain_too_long_to_follow_is_a_sentence_naming_the_node():
    n = 5000
    nodes = [{"id": 1, "type": "Src", "inputs": [], "outputs": [{"name": "X", "type": "X", "links": [1]}]}]
    links = []
    for i in range(2, n + 2):
        nodes.append({"id": i, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": i - 1}]})
        links.append([i - 1, i - 1, 0, i, 0, "X"])
    nodes.append({"id": n + 2, "type": "Sink", "inputs": [{"name": "x", "type": "X", "link": n + 1}]})
    links.append([n + 1, n + 1, 0, n + 2, 0, "X"])
    info = {"Src": {"input": {}}, "Sink": {"input": {"required": {"x": ["X"]}}}}
    with pytest.raises(ValidationError, match=rf"Node {n + 2} \(Sink\): the link into its input 'x'"):
        wf.ui_to_api({"nodes": nodes, "links": links}, info)


@pytest.mark.parametrize("case", ["an id that is a list", "a node that is a string", "definitions a list"])
def test_queue_says_the_sentence_and_exits_2(tmp_path, capsys, case):
    make, said = SHAPES[case]
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(make(v1_workflow())), encoding="utf-8")
    rc = cli.main(["queue", str(path), "--server", "http://127.0.0.1:9", "--print-prompt"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert "could not be handled" not in err and "export the workflow from ComfyUI again" in err
