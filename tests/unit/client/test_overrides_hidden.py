"""`--set` on inputs a node accepts only as hidden ones: KohyaLoRATrain keeps the first layout's inputs
(device, batch_size ...) as hidden inputs so that old prompts run; `queue --set KohyaLoRATrain.device=`
must keep working, onto the option node of the trainer's chain when the workflow has one."""

from __future__ import annotations

import json

import pytest

from lora_workbench.client import queue_client as qc
from lora_workbench.client import workflow as wf
from lora_workbench.errors import ValidationError
from lora_workbench.training.node_layout import migrate_workflow
from tests.unit.nodes.test_train_layout import execute, object_info, v1_workflow


@pytest.fixture
def info(pack, comfy) -> dict:
    """/object_info as the server sends it (with the outputs; JSON: tuples become lists)."""
    out = object_info(pack)
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        out[name]["output"] = list(cls.RETURN_TYPES)
    return json.loads(json.dumps(out))


def first_layout_prompt() -> dict:
    """An API prompt of the first layout: the trainer alone, no option node."""
    return {
        "1": {"class_type": "DatasetSubsetWeights", "inputs": {"project_folder": "/p"}},
        "4": {
            "class_type": "KohyaLoRATrain",
            "inputs": {"dataset": ["1", 0], "ckpt_name": "m.safetensors", "epochs": 2},
            "_meta": {"title": "Kohya LoRA Train"},
        },
    }


def test_a_hidden_input_of_the_first_layout_is_set_on_the_trainer_with_its_type(info):
    prompt = wf.apply_overrides(
        first_layout_prompt(), ["KohyaLoRATrain.device=cpu", "4.batch_size=2", "4.lowram=true"], info
    )
    inputs = prompt["4"]["inputs"]
    assert (inputs["device"], inputs["batch_size"], inputs["lowram"]) == ("cpu", 2, True)
    with pytest.raises(ValidationError, match="not a number"):
        wf.apply_overrides(first_layout_prompt(), ["4.batch_size=two"], info)


def test_with_an_option_node_in_the_chain_the_value_goes_there_and_trains(pack, info):
    ui, _ = migrate_workflow(v1_workflow())
    prompt = wf.ui_to_api(ui, info)
    notes: list[str] = []
    wf.apply_overrides(
        prompt, ["KohyaLoRATrain.device=gpu", "KohyaLoRATrain.max_train_steps=5", "KohyaLoRATrain.epochs=4"],
        info, notes,
    )  # fmt: skip
    by_class = {e["class_type"]: nid for nid, e in prompt.items()}
    trainer = prompt[by_class["KohyaLoRATrain"]]["inputs"]
    assert "device" not in trainer and "max_train_steps" not in trainer and trainer["epochs"] == 4
    assert prompt[by_class["KohyaLaunchOptions"]]["inputs"]["device"] == "gpu"
    assert prompt[by_class["KohyaOptimizerOptions"]]["inputs"]["max_train_steps"] == 5
    assert len(notes) == 2 and f"set on node {by_class['KohyaLaunchOptions']} (" in notes[0]
    opts = execute(pack, prompt)  # no "given twice": the option node holds the one value
    assert (opts.device, opts.max_train_steps, opts.epochs) == ("gpu", 5, 4)


def test_the_dataset_input_is_not_a_chain_to_search(info):
    """Only nodes that pass their own type through (option nodes) are searched, never the dataset."""
    info = json.loads(json.dumps(info))
    info["DatasetSubsetWeights"]["input"].setdefault("optional", {})["device"] = ["STRING", {}]
    prompt = wf.apply_overrides(first_layout_prompt(), ["KohyaLoRATrain.device=cpu"], info)
    assert prompt["4"]["inputs"]["device"] == "cpu" and "device" not in prompt["1"]["inputs"]


def test_unknown_names_are_refused_with_every_valid_name(info):
    with pytest.raises(ValidationError) as exc:
        wf.apply_overrides(first_layout_prompt(), ["KohyaLoRATrain.devise=cpu"], info)
    text = str(exc.value)
    assert "node 4 (KohyaLoRATrain) has no input 'devise'; its inputs: dataset, ckpt_name, epochs" in text
    assert "also accepted (inputs of an older layout): " in text and "device" in text
    with pytest.raises(ValidationError, match="has no input 'unique_id'"):  # the server fills that one
        wf.apply_overrides(first_layout_prompt(), ["4.unique_id=9"], info)


def test_prepare_prompt_hands_back_the_notes(pack, info):
    ui, _ = migrate_workflow(v1_workflow())
    notes: list[str] = []
    qc.prepare_prompt(ui, None, ["KohyaLoRATrain.device=cpu"], info, notes=notes)
    assert len(notes) == 1 and notes[0].startswith("--set KohyaLoRATrain.device: set on node ")
