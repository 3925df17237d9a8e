"""The example workflows fit the pack's current nodes and give a first run that takes what people have
(issue 19): every widget and output of our nodes, buckets on, the trainer taking resolution and epochs
from the dataset, one sample image per epoch, and nothing under the dataset node when it grows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_workbench.client import workflow as wf
from lora_workbench.training.settings import SETTING

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
SD_EXAMPLE = REPO / "example_workflows" / "train_a_lora_from_a_folder_of_photos.json"
GRAPH_EXAMPLE = REPO / "example_workflows" / "prepare_a_dataset_in_the_graph_then_train.json"
DATASET_GROWS_TO = 1000  # the weights editor (up to 480 px) and the summary under 14 widgets


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def node_info(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {"input": spec, "input_order": {k: list(v) for k, v in spec.items() if k != "hidden"}}


def widget_count(cls) -> int:
    """Widget values the frontend saves for a node of `cls` (a seed with a control widget saves two)."""
    specs = wf.widget_inputs(node_info(cls))
    return len(specs) + sum(wf._has_control_widget(n, k, o) for n, k, o in specs)


def by_type(data: dict, kind: str) -> list[dict]:
    return [n for n in data["nodes"] if n["type"] == kind]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_pack_node_in_an_example_carries_every_current_widget_and_output(pack, comfy, path):
    for n in load(path)["nodes"]:
        cls = pack.NODE_CLASS_MAPPINGS.get(n["type"])
        if cls is None:
            continue
        assert len(n["widgets_values"]) == widget_count(cls), (path.name, n["type"])
        assert [o["name"] for o in n["outputs"]] == list(cls.RETURN_NAMES or cls.RETURN_TYPES), n["type"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_node_lies_under_another_nor_under_a_grown_dataset_node(path):
    boxes = []
    for n in load(path)["nodes"]:
        height = max(n["size"][1], DATASET_GROWS_TO) if n["type"] == "DatasetSubsetWeights" else n["size"][1]
        boxes.append((n["id"], n["pos"][0], n["pos"][1], n["pos"][0] + n["size"][0], n["pos"][1] + height))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2]
            assert apart, f"{path.name}: nodes {a[0]} and {b[0]} overlap"


def sd_prompt(pack, path: Path = SD_EXAMPLE) -> dict:
    info = {name: node_info(cls) for name, cls in pack.NODE_CLASS_MAPPINGS.items()}
    info.update(
        {
            k: v
            for k, v in json.loads((REPO / "tests/fixtures/object_info_subset.json").read_text()).items()
            if k not in info
        }
    )
    return wf.ui_to_api(load(path), info)


def node_id(prompt: dict, kind: str) -> str:
    (found,) = [i for i, e in prompt.items() if e["class_type"] == kind]
    return found


def entry(prompt: dict, kind: str) -> dict:
    (found,) = [e["inputs"] for e in prompt.values() if e["class_type"] == kind]
    return found


def test_the_sd_example_takes_mixed_size_photos_as_they_are(pack, comfy):
    dataset = entry(sd_prompt(pack), "DatasetSubsetWeights")
    assert dataset["enable_bucket"] is True and dataset["wrong_size"] == "bucket"
    assert dataset["folder_repeats"] == 1 and dataset["repeats"] == "folders"


def test_the_sd_example_trainer_takes_resolution_and_epochs_from_the_dataset(pack, comfy):
    trainer = entry(sd_prompt(pack), "KohyaLoRATrain")
    assert (trainer["epochs"], trainer["width"], trainer["height"]) == (0, 0, 0)
    assert (trainer["network_dim"], trainer["network_alpha"]) == (32, 16.0)


def test_the_sd_example_samples_one_image_per_epoch(pack, comfy):
    prompt = sd_prompt(pack)
    sampling = entry(prompt, "KohyaSamplingOptions")
    assert sampling["show_samples"] is True and sampling["sample_every_n_epochs"] == 1
    assert sampling["sample_prompts"] == ""  # the trigger words: one prompt, one image
    assert sampling["sample_steps"] == SETTING["sample_steps"].default
    trainer_id = next(i for i, e in prompt.items() if e["class_type"] == "KohyaLoRATrain")
    sampling_id = next(i for i, e in prompt.items() if e["class_type"] == "KohyaSamplingOptions")
    assert prompt[trainer_id]["inputs"]["options"] == [sampling_id, 0]
    previews = [e["inputs"]["images"] for e in prompt.values() if e["class_type"] == "PreviewImage"]
    assert [trainer_id, 4] in previews  # the samples output is shown


def test_the_sd_example_note_points_at_the_lora_projects_folder():
    (note,) = by_type(load(SD_EXAMPLE), "MarkdownNote")
    assert "ComfyUI/lora-projects/" in note["widgets_values"][0]


def test_the_graph_example_saves_the_loaded_folder_through_the_bypassed_scale_node(pack, comfy):
    prompt = sd_prompt(pack, GRAPH_EXAMPLE)
    assert "ImageScaleToTotalPixels" not in {e["class_type"] for e in prompt.values()}  # optional: bypassed
    loader = node_id(prompt, "LoadImageSetFromFolderNode")
    assert entry(prompt, "SaveTrainingImages")["images"] == [loader, 0]


def test_the_graph_example_dataset_reads_the_project_the_images_were_saved_into(pack, comfy):
    prompt = sd_prompt(pack, GRAPH_EXAMPLE)
    saver = node_id(prompt, "SaveTrainingImages")
    assert entry(prompt, "DatasetSubsetWeights")["project_folder"] == [saver, 0]
    assert entry(prompt, "KohyaLoRATrain")["dataset"] == [node_id(prompt, "DatasetSubsetWeights"), 0]


def test_the_graph_example_captions_every_image_with_the_trigger_word_first(pack, comfy):
    save = entry(sd_prompt(pack, GRAPH_EXAMPLE), "SaveTrainingImages")
    assert save["captions"].strip() and save["trigger_word"] and save["caption_mode"] == "replace"
    assert save["fit"] == "none"  # buckets take any size; nothing is cut or enlarged unasked


def test_the_graph_example_trains_and_samples_like_the_sd_example(pack, comfy):
    prompt = sd_prompt(pack, GRAPH_EXAMPLE)
    trainer = node_id(prompt, "KohyaLoRATrain")
    assert entry(prompt, "KohyaLoRATrain")["options"] == [node_id(prompt, "KohyaSamplingOptions"), 0]
    assert entry(prompt, "LoadTrainedLoRA")["trained_lora"] == [trainer, 0]
    assert entry(prompt, "KSampler")["model"] == [node_id(prompt, "LoadTrainedLoRA"), 0]


def test_the_graph_example_note_says_where_the_images_and_the_project_go():
    notes = " ".join(n["widgets_values"][0] for n in by_type(load(GRAPH_EXAMPLE), "MarkdownNote"))
    assert "input/" in notes and "ComfyUI/lora-projects/" in notes
    assert "WD14" in notes and "Florence2" in notes  # a caption node's list output plugs into captions
