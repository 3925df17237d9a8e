"""UI-format -> API-format conversion (with a recorded /object_info) and --set overrides."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lora_workbench.client import workflow as wf
from lora_workbench.errors import ValidationError

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
OBJECT_INFO = json.loads((REPO / "tests/fixtures/object_info_subset.json").read_text())


def node(nid, kind, widgets=None, inputs=(), outputs=(), mode=0, title=None):
    n = {
        "id": nid,
        "type": kind,
        "pos": [0, 0],
        "size": [100, 100],
        "flags": {},
        "order": nid,
        "mode": mode,
        "inputs": [{"name": name, "type": t, "link": link} for name, t, link in inputs],
        "outputs": [
            {"name": t, "type": t, "links": links, "slot_index": i} for i, (t, links) in enumerate(outputs)
        ],
        "properties": {},
        "widgets_values": widgets if widgets is not None else [],
    }
    if title:
        n["title"] = title
    return n


def ui(nodes, links):
    return {
        "last_node_id": max(n["id"] for n in nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def basic_graph(sampler_mode=0):
    """Checkpoint -> (LoRA) -> KSampler with a Reroute on the model and a Note beside."""
    nodes = [
        node(
            1,
            "CheckpointLoaderSimple",
            ["m.safetensors"],
            outputs=[("MODEL", [1]), ("CLIP", [2]), ("VAE", [])],
        ),
        node(
            2,
            "LoadTrainedLoRA",
            ["x.safetensors", 3, 0.5, 1.0],
            mode=sampler_mode,
            inputs=[("model", "MODEL", 1), ("clip", "CLIP", 2), ("trained_lora", "TRAINED_LORA", None)],
            outputs=[("MODEL", [3]), ("CLIP", []), ("STRING", [])],
        ),
        node(3, "Reroute", inputs=[("", "*", 3)], outputs=[("MODEL", [4])]),
        node(
            4,
            "KSampler",
            [7, "randomize", 12, 6.5, "euler", "normal", 1.0],
            title="Sampler A",
            inputs=[
                ("model", "MODEL", 4),
                ("positive", "CONDITIONING", None),
                ("negative", "CONDITIONING", None),
                ("latent_image", "LATENT", None),
            ],
            outputs=[("LATENT", [])],
        ),
        node(5, "Note", ["just a note"]),
    ]
    links = [
        [1, 1, 0, 2, 0, "MODEL"],
        [2, 1, 1, 2, 1, "CLIP"],
        [3, 2, 0, 3, 0, "MODEL"],
        [4, 3, 0, 4, 0, "MODEL"],
    ]
    return ui(nodes, links)


def test_widgets_map_to_inputs_in_order_and_skip_the_seed_control_value():
    api = wf.ui_to_api(basic_graph(), OBJECT_INFO)
    assert api["4"]["inputs"] == {
        "seed": 7,
        "steps": 12,
        "cfg": 6.5,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "model": ["2", 0],
    }  # through the Reroute
    assert api["4"]["_meta"]["title"] == "Sampler A"
    assert api["2"]["inputs"] == {
        "lora_name": "x.safetensors",
        "epoch": 3,
        "strength_model": 0.5,
        "strength_clip": 1.0,
        "model": ["1", 0],
        "clip": ["1", 1],
    }
    assert "5" not in api and "3" not in api  # Note and Reroute stay in the browser


def test_bypassed_nodes_pass_their_input_through_and_muted_nodes_drop_out():
    bypassed = wf.ui_to_api(basic_graph(sampler_mode=4), OBJECT_INFO)
    assert "2" not in bypassed and bypassed["4"]["inputs"]["model"] == ["1", 0]
    muted = wf.ui_to_api(basic_graph(sampler_mode=2), OBJECT_INFO)
    assert "2" not in muted and "model" not in muted["4"]["inputs"]


def test_explicit_control_after_generate_false_has_no_control_value():
    train_widgets = OBJECT_INFO["KohyaLoRATrain"]["input"]["required"]
    assert train_widgets["seed"][1].get("control_after_generate") is False
    names = [n for n, _k, _o in wf.widget_inputs(OBJECT_INFO["KohyaLoRATrain"])]
    values = list(range(len(names)))  # no extra control value after seed
    mapped = wf.map_widgets({"widgets_values": values}, OBJECT_INFO["KohyaLoRATrain"])
    assert [mapped[n] for n in names] == values


def test_primitive_nodes_and_upload_widgets():
    nodes = [
        node(1, "PrimitiveNode", [99, "fixed"], outputs=[("INT", [1])]),
        node(
            2,
            "KSampler",
            [5, "fixed", 3, 7.0, "euler", "normal", 1.0],
            inputs=[("seed", "INT", 1)],
            outputs=[("LATENT", [])],
        ),
        node(3, "LoadImage", ["cat.png", "image"], outputs=[("IMAGE", []), ("MASK", [])]),
    ]
    api = wf.ui_to_api(ui(nodes, [[1, 1, 0, 2, 0, "INT"]]), OBJECT_INFO)
    assert api["2"]["inputs"]["seed"] == 99 and api["2"]["inputs"]["steps"] == 3
    assert api["3"]["inputs"] == {"image": "cat.png"}


def test_what_the_converter_refuses_and_links_left_dangling():
    with pytest.raises(ValidationError, match="not a UI-format workflow"):
        wf.ui_to_api({"nodes": "x"}, OBJECT_INFO)
    g = basic_graph()
    g["definitions"] = {"subgraphs": [{"id": "s"}]}
    with pytest.raises(ValidationError, match=r"uses subgraphs.*Export \(API\)"):
        wf.ui_to_api(g, OBJECT_INFO)
    # A link from a node that stays in the browser is dropped, never sent pointing at nothing.
    g = basic_graph()
    g["nodes"].append(node(6, "Fast Groups Muter (rgthree)", outputs=[("LATENT", [9])]))
    g["nodes"][3]["inputs"][3]["link"] = 9
    g["links"].append([9, 6, 0, 4, 3, "LATENT"])
    api = wf.ui_to_api(g, OBJECT_INFO)
    assert "latent_image" not in api["4"]["inputs"] and "6" not in api


def test_unknown_node_types_are_named():
    g = basic_graph()
    g["nodes"].append(node(9, "SomeCustomNode", [1]))
    with pytest.raises(ValidationError, match=r"SomeCustomNode \(node 9\)"):
        wf.ui_to_api(g, OBJECT_INFO)


def test_overrides_by_id_title_and_class_with_types():
    api = wf.ui_to_api(basic_graph(), OBJECT_INFO)
    wf.apply_overrides(
        api,
        [
            "4.steps=3",
            "Sampler A.cfg=2.5",
            "LoadTrainedLoRA.lora_name=123",
            "CheckpointLoaderSimple.ckpt_name=other.safetensors",
        ],
        OBJECT_INFO,
    )
    assert api["4"]["inputs"]["steps"] == 3 and api["4"]["inputs"]["cfg"] == 2.5
    assert api["2"]["inputs"]["lora_name"] == "123"  # a combo stays text
    assert api["1"]["inputs"]["ckpt_name"] == "other.safetensors"
    with pytest.raises(ValidationError, match="has no input 'stepz'"):
        wf.apply_overrides(api, ["4.stepz=1"], OBJECT_INFO)
    with pytest.raises(ValidationError, match="not a number"):
        wf.apply_overrides(api, ["4.steps=many"], OBJECT_INFO)
    with pytest.raises(ValidationError, match="NODE.INPUT=VALUE"):
        wf.parse_override("steps=1")
    assert wf.apply_overrides({"1": {"class_type": "X", "inputs": {}}}, ["1.n=2"])["1"]["inputs"]["n"] == 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_workflow_is_valid_ui_format_with_a_thumbnail(path):
    data = json.loads(path.read_text())
    assert data["version"] == 0.4 and wf.is_ui_format(data)
    assert path.with_suffix(".jpg").is_file()
    ids = {n["id"] for n in data["nodes"]}
    assert data["last_node_id"] >= max(ids) and data["last_link_id"] >= len(data["links"])
    by_id = {n["id"]: n for n in data["nodes"]}
    for lid, src, src_slot, dst, dst_slot, _kind in data["links"]:
        assert lid in by_id[src]["outputs"][src_slot]["links"]
        assert by_id[dst]["inputs"][dst_slot]["link"] == lid
    assert any(n["type"] in ("Note", "MarkdownNote") for n in data["nodes"]), "each example explains itself"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_workflow_converts_to_a_complete_api_prompt(path):
    api = wf.ui_to_api(json.loads(path.read_text()), OBJECT_INFO)
    assert api
    for nid, entry in api.items():
        info = OBJECT_INFO[entry["class_type"]]
        for name, spec in (info["input"].get("required") or {}).items():
            assert name in entry["inputs"], f"{nid} {entry['class_type']} lacks required input {name}"
            value = entry["inputs"][name]
            if isinstance(spec[0], list) and not name.endswith("_name"):  # fixed combos (model lists vary)
                assert value in spec[0], (nid, name, value)
        for value in entry["inputs"].values():
            if wf._is_link(value):
                assert value[0] in api


def test_dataset_example_feeds_trigger_words_into_the_prompt():
    path = REPO / "example_workflows/train_a_lora_from_a_folder_of_photos.json"
    if not path.is_file():
        pytest.skip("train_a_lora_from_a_folder_of_photos.json not generated yet")
    api = wf.ui_to_api(json.loads(path.read_text()), OBJECT_INFO)
    kinds = {e["class_type"]: nid for nid, e in api.items()}
    for needed in ("DatasetSubsetWeights", "KohyaLoRATrain", "LoadTrainedLoRA", "KSampler", "SaveImage"):
        assert needed in kinds
    load = api[kinds["LoadTrainedLoRA"]]["inputs"]
    assert load["trained_lora"] == [kinds["KohyaLoRATrain"], 0]
    concat = api[kinds["StringConcatenate"]]["inputs"]
    assert concat["string_a"] == [kinds["LoadTrainedLoRA"], 2]
    assert api[kinds["KSampler"]]["inputs"]["seed"] == 42


def test_conversion_does_not_touch_its_input():
    g = basic_graph()
    before = copy.deepcopy(g)
    wf.ui_to_api(g, OBJECT_INFO)
    assert g == before
