"""The short KohyaLoRATrain + option nodes, and workflows of the first layout: they migrate (Python and
the browser's JS give the same result), and the migrated graph trains with the same settings."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lora_workbench.client.workflow import ui_to_api
from lora_workbench.errors import ValidationError
from lora_workbench.training import node_layout
from lora_workbench.training.node_layout import LEGACY_V1_WIDGETS, migrate_workflow
from lora_workbench.training.options import OptionSet, TrainOptions
from lora_workbench.training.settings import GROUP, SETTING, SETTINGS, option_groups

REPO = Path(__file__).resolve().parents[3]
V1 = REPO / "tests" / "fixtures" / "workflows" / "kohya_train_v1.json"
MIGRATION_JS = REPO / "web" / "train_migration.js"


def v1_workflow() -> dict:
    return json.loads(V1.read_text(encoding="utf-8"))


def trainer(ui: dict) -> dict:
    return next(n for n in ui["nodes"] if n["type"] == "KohyaLoRATrain")


def object_info(pack) -> dict:
    """/object_info as ComfyUI builds it from INPUT_TYPES, for our nodes and the example's others."""
    info = json.loads((REPO / "tests" / "fixtures" / "object_info_subset.json").read_text(encoding="utf-8"))
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        info[name] = {"input": spec, "input_order": {k: list(v) for k, v in spec.items()}}
    return info


def meant(ui_v1: dict) -> TrainOptions:
    """The settings the first layout's widget values meant."""
    values = dict(zip(LEGACY_V1_WIDGETS, trainer(ui_v1)["widgets_values"], strict=True))
    return TrainOptions.from_values({k: v for k, v in values.items() if k in SETTING})


def execute(pack, prompt: dict) -> TrainOptions:
    """Run the API prompt's option nodes and the trainer's option collection, as ComfyUI would."""
    out: dict[str, tuple] = {}
    prompt = {i: e for i, e in prompt.items() if e["class_type"] in pack.NODE_CLASS_MAPPINGS}
    train_id = next(i for i, e in prompt.items() if e["class_type"] == "KohyaLoRATrain")

    def value(v):
        return run(v[0])[v[1]] if isinstance(v, list) else v

    def run(nid):
        if nid not in out:
            entry = prompt[nid]
            cls = pack.NODE_CLASS_MAPPINGS[entry["class_type"]]
            out[nid] = cls().collect(unique_id=nid, **{k: value(v) for k, v in entry["inputs"].items()})
        return out[nid]

    inputs = {k: value(v) for k, v in prompt[train_id]["inputs"].items() if k != "dataset"}
    inputs.pop("ckpt_name")
    return pack.nodes.kohya_lora_train.collect_options(inputs, inputs.pop("options", None), train_id)


# --------------------------------------------------------------------------- the nodes
def test_the_main_node_is_short_and_keeps_the_first_layouts_prefix(pack, comfy):
    cls = pack.NODE_CLASS_MAPPINGS["KohyaLoRATrain"]
    spec = cls.INPUT_TYPES()
    widgets = [n for s in ("required", "optional") for n in spec[s] if n not in ("dataset", "options")]
    assert 12 <= len(widgets) <= 17, widgets
    # The old saved values line up with the new widgets by position, migration or not.
    assert tuple(widgets) == LEGACY_V1_WIDGETS[: len(widgets)] == node_layout.main_widgets()
    assert spec["optional"]["options"][0] == node_layout.OPTIONS_TYPE
    assert set(spec["hidden"]) - {"unique_id"} == set(LEGACY_V1_WIDGETS) - set(widgets)


def test_every_setting_is_a_widget_on_exactly_one_node(pack, comfy):
    """The widget test of the settings table."""
    shown: dict[str, str] = {}
    for name in ["KohyaLoRATrain", *(g.node for g in option_groups())]:
        spec = pack.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
        for section in ("required", "optional"):
            for input_name, (_kind, opts) in spec.get(section, {}).items():
                if input_name in SETTING:
                    assert input_name not in shown, f"{input_name} on {shown.get(input_name)} and {name}"
                    shown[input_name] = name
                    assert opts["default"] == SETTING[input_name].default
                    assert opts["tooltip"] == SETTING[input_name].help
    assert {n: GROUP[SETTING[n].group].node for n in shown} == shown
    assert set(shown) == {s.name for s in SETTINGS}


def test_option_nodes_chain_in_any_order_and_name_both_nodes_on_a_repeat(pack, comfy):
    net = pack.NODE_CLASS_MAPPINGS["KohyaNetworkOptions"]()
    launch = pack.NODE_CLASS_MAPPINGS["KohyaLaunchOptions"]()
    (a,) = net.collect(unique_id="3", train_text_encoder=False)
    (b,) = launch.collect(options=a, unique_id="4", device="cpu")
    (c,) = launch.collect(unique_id="4", device="cpu")
    (d,) = net.collect(options=c, unique_id="3", train_text_encoder=False)
    assert b.values == d.values == {"train_text_encoder": False, "device": "cpu"}
    with pytest.raises(ValidationError, match=r"device is given twice: by Kohya Launch Options \(node 4\) "):
        launch.collect(options=b, unique_id="9", device="gpu")
    with pytest.raises(ValidationError, match=r"Kohya Launch Options \(node 5\): cpu_threads is 0"):
        launch.collect(unique_id="5", cpu_threads=0)
    assert [g.node for g in option_groups()] == [
        "KohyaNetworkOptions",
        "KohyaOptimizerOptions",
        "KohyaCaptionOptions",
        "KohyaSamplingOptions",
        "KohyaSavingOptions",
        "KohyaPrecisionOptions",
        "KohyaLaunchOptions",
        "KohyaModelFiles",
        "KohyaFamilyOptions",
    ]


def test_old_api_inputs_join_the_options_and_conflict_with_an_option_node(pack, comfy):
    collect = pack.nodes.kohya_lora_train.collect_options
    opts = collect({"epochs": 2, "device": "cpu", "batch_size": 0}, None, "7")
    assert (opts.epochs, opts.device) == (2, "cpu")
    chain = OptionSet().add({"device": "gpu"}, "Kohya Launch Options (node 4)")
    assert collect({"device": "auto"}, chain, "7").device == "gpu"  # a default old input gives nothing
    with pytest.raises(
        ValidationError, match=r"device is given twice: by Kohya Launch Options \(node 4\) and by"
    ):
        collect({"device": "cpu"}, chain, "7")


# --------------------------------------------------------------------------- the migration
def test_a_first_layout_workflow_migrates_and_trains_the_same(pack, comfy):
    old = v1_workflow()
    new, notes = migrate_workflow(old)
    assert old == v1_workflow(), "the input was changed"
    assert len(notes) == 1 and "KohyaOptimizerOptions" in notes[0]
    t = trainer(new)
    assert len(t["widgets_values"]) == len(node_layout.main_widgets())
    assert t["properties"][node_layout.LAYOUT_PROPERTY] == node_layout.LAYOUT_VERSION
    made = [n["type"] for n in new["nodes"] if n["type"].endswith("Options")]
    assert made == ["KohyaOptimizerOptions", "KohyaSamplingOptions", "KohyaLaunchOptions"]
    _check_links(new)
    prompt = ui_to_api(new, object_info(pack))
    assert execute(pack, prompt) == meant(old)
    assert migrate_workflow(new) == (new, [])  # once is enough


def test_a_saved_trainer_keeps_its_resolution_epochs_and_rank_after_the_defaults_changed(pack, comfy):
    # the defaults became 0 (= the dataset's) for epochs/width/height and 32/16 for dim/alpha: a saved
    # workflow holds its values by position, so it trains what it trained
    new, _ = migrate_workflow(v1_workflow())
    first = {"epochs": 3, "width": 512, "height": 512, "network_dim": 128, "network_alpha": 128.0}
    names = node_layout.main_widgets()
    values = trainer(new)["widgets_values"]
    for name, value in first.items():
        values[names.index(name)] = value
    got = execute(pack, ui_to_api(new, object_info(pack)))
    assert {name: getattr(got, name) for name in first} == first


def test_defaults_only_need_no_option_node_and_new_layouts_are_left_alone():
    ui = v1_workflow()
    t = trainer(ui)
    t["widgets_values"] = [
        t["widgets_values"][i] if n in node_layout.main_widgets() else SETTING[n].default
        for i, n in enumerate(LEGACY_V1_WIDGETS)
    ]
    new, notes = migrate_workflow(ui)
    assert "no option node" in notes[0] and not any(n["type"].endswith("Options") for n in new["nodes"])
    assert [i["name"] for i in trainer(new)["inputs"]] == ["dataset", "options"]
    assert migrate_workflow(new)[1] == []


def schema1_with_widget_inputs() -> dict:
    """The same graph as a newer frontend saves it: schema 1 link objects, a socket per widget, the
    seed's control value, and sample_prompts fed by a PrimitiveNode."""
    ui = v1_workflow()
    t = trainer(ui)
    values = list(t["widgets_values"])
    values.insert(LEGACY_V1_WIDGETS.index("seed") + 1, "fixed")
    t["widgets_values"] = values
    t["inputs"] += [
        {"name": n, "type": "INT", "widget": {"name": n}, "link": None} for n in LEGACY_V1_WIDGETS
    ]
    prim = {"id": 50, "type": "PrimitiveNode", "pos": [0, 0], "mode": 0, "inputs": [], "properties": {}}
    prim["outputs"] = [
        {"name": "STRING", "type": "STRING", "links": [99], "widget": {"name": "sample_prompts"}}
    ]
    prim["widgets_values"] = ["from a primitive"]
    ui["nodes"].append(prim)
    slot = next(
        i for i, inp in enumerate(t["inputs"]) if inp.get("widget", {}).get("name") == "sample_prompts"
    )
    t["inputs"][slot]["link"] = 99
    ui["links"] = [
        {
            "id": x[0],
            "origin_id": x[1],
            "origin_slot": x[2],
            "target_id": x[3],
            "target_slot": x[4],
            "type": x[5],
        }
        for x in ui["links"]
    ] + [
        {
            "id": 99,
            "origin_id": 50,
            "origin_slot": 0,
            "target_id": t["id"],
            "target_slot": slot,
            "type": "STRING",
        }
    ]
    ui["version"] = 1
    ui["state"] = {"lastNodeId": ui.pop("last_node_id"), "lastLinkId": ui.pop("last_link_id")}
    return ui


def test_linked_widget_inputs_move_with_their_setting(pack, comfy):
    new, _ = migrate_workflow(schema1_with_widget_inputs())
    _check_links(new)
    sampling = next(n for n in new["nodes"] if n["type"] == "KohyaSamplingOptions")
    assert [i["name"] for i in sampling["inputs"]] == ["options", "sample_prompts"]
    assert new["state"]["lastLinkId"] == 102  # 3 chain links + 1 to the trainer after link 99
    names = [i["name"] for i in trainer(new)["inputs"]]
    assert names[:2] == ["dataset", "options"] and "batch_size" not in names and "epochs" in names
    prompt = ui_to_api(new, object_info(pack) | {"PrimitiveNode": {"input": {}}})
    assert execute(pack, prompt).sample_prompts == "from a primitive"


def _check_links(ui: dict) -> None:
    """Every link's two ends agree with the nodes' inputs and outputs (a subgraph's own input and
    output nodes, ids -10 and -20, hold no slots here)."""
    nodes = {n["id"]: n for n in ui["nodes"]}
    for link in ui["links"]:
        lid, origin, oslot, target, tslot, _ = (
            link
            if isinstance(link, list)
            else [link[k] for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")]
        )
        if target >= 0:
            assert nodes[target]["inputs"][tslot]["link"] == lid, link
        if origin >= 0:
            assert lid in nodes[origin]["outputs"][oslot]["links"], link


# --------------------------------------------------------------------------- subgraphs
SUBGRAPH_ID = "6f1c2a4e-0b7d-4c1e-9a52-3d8e7f01a2b3"
NESTED_ID = "0d9e8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b"


def as_subgraph(graph: dict, sub_id: str, name: str) -> dict:
    """A schema-1 graph as the frontend saves a subgraph definition (its own state, nodes, links)."""
    keep = ("state", "nodes", "links", "groups", "extra")
    sub = {"id": sub_id, "version": 1, "revision": 0, "config": {}, "name": name}
    sub |= {
        "inputNode": {"id": -10, "bounding": [0, 0, 75, 100]},
        "outputNode": {"id": -20, "bounding": [900, 0, 75, 100]},
    }
    sub |= {"inputs": [], "outputs": [], "widgets": []}
    return sub | {k: copy.deepcopy(graph.get(k, [] if k != "extra" else {})) for k in keep}


def with_subgraphs() -> dict:
    """A root graph holding one instance of a subgraph "Train" (the first layout's trainer inside, its
    `device` widget fed from the subgraph's own input) that nests a second such subgraph."""
    train = as_subgraph(schema1_with_widget_inputs(), SUBGRAPH_ID, "Train")
    t = trainer(train)
    slot = next(i for i, inp in enumerate(t["inputs"]) if inp.get("widget", {}).get("name") == "device")
    t["inputs"][slot]["link"] = 200
    train["links"].append(
        {
            "id": 200,
            "origin_id": -10,
            "origin_slot": 0,
            "target_id": t["id"],
            "target_slot": slot,
            "type": "COMBO",
        }
    )
    train["state"]["lastLinkId"] = 200
    train["inputs"] = [{"id": "in-device", "name": "device", "type": "COMBO", "linkIds": [200]}]
    train["nodes"].append(
        {"id": 60, "type": NESTED_ID, "pos": [0, 0], "mode": 0, "inputs": [], "outputs": []}
    )
    train["definitions"] = {"subgraphs": [as_subgraph(schema1_with_widget_inputs(), NESTED_ID, "Inner")]}
    instance = {"id": 1, "type": SUBGRAPH_ID, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": 0}
    instance |= {"mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": []}
    root = {"id": "root", "revision": 0, "version": 1, "nodes": [instance], "links": [], "groups": []}
    root |= {"state": {"lastGroupId": 0, "lastNodeId": 1, "lastLinkId": 0, "lastRerouteId": 0}}
    return root | {"definitions": {"subgraphs": [train]}, "config": {}, "extra": {}}


def test_trainers_inside_subgraphs_migrate_like_those_of_the_graph(pack, comfy):
    old = with_subgraphs()
    new, notes = migrate_workflow(old)
    assert old == with_subgraphs(), "the input was changed"
    tid = trainer(schema1_with_widget_inputs())["id"]
    assert [n.split(":")[0] for n in notes] == [
        f'KohyaLoRATrain node {tid} in subgraph "Train"',
        f'KohyaLoRATrain node {tid} in subgraph "Inner"',
    ]
    assert new["nodes"] == old["nodes"] and new["state"] == old["state"]  # the root graph holds no trainer
    train = new["definitions"]["subgraphs"][0]
    inner = train["definitions"]["subgraphs"][0]
    # Inside a subgraph the migration is the one of the same graph on its own: its own ids and state.
    alone, _ = migrate_workflow(schema1_with_widget_inputs())
    assert {k: inner[k] for k in ("nodes", "links", "state")} == {
        k: alone[k] for k in ("nodes", "links", "state")
    }
    _check_links(train)
    launch = next(n for n in train["nodes"] if n["type"] == "KohyaLaunchOptions")
    assert [i["name"] for i in launch["inputs"]] == ["options", "device"] and launch["inputs"][1][
        "link"
    ] == 200
    link = next(x for x in train["links"] if x["id"] == 200)
    assert (link["origin_id"], link["target_id"], link["target_slot"]) == (-10, launch["id"], 1)
    assert train["inputs"][0]["linkIds"] == [200]
    assert migrate_workflow(new) == (new, [])  # once is enough


# --------------------------------------------------------------------------- the browser's twin
def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JS migration is checked where it is")
    return node


def run_js(ui: dict) -> tuple[dict, list[str]]:
    code = (
        f"import {{ migrateWorkflow }} from {json.dumps(MIGRATION_JS.as_uri())};\n"
        "let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => {\n"
        "  const ui = JSON.parse(s); const notes = migrateWorkflow(ui);\n"
        "  process.stdout.write(JSON.stringify({ ui, notes }));\n});\n"
    )
    proc = subprocess.run(
        [_node(), "--input-type=module", "-e", code],
        input=json.dumps(ui),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return out["ui"], out["notes"]


@pytest.mark.parametrize(
    "make",
    [v1_workflow, schema1_with_widget_inputs, with_subgraphs],
    ids=["schema0.4", "schema1", "subgraphs"],
)
def test_the_browser_migration_gives_the_same_workflow(make):
    ui = make()
    assert run_js(copy.deepcopy(ui)) == tuple(json.loads(json.dumps(migrate_workflow(ui))))
