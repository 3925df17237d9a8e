"""The musubi-tuner examples (issue 21): Qwen-Image and Wan 2.1 T2V 1.3B trained from a folder of photos on
ComfyUI's repackaged files, then sampled with the new LoRA by ComfyUI's own graph for the family (its
template's loaders, shift and sampler), each with a note naming every file and the folder it goes in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_workbench.client import workflow as wf
from lora_workbench.training.backends import for_family
from lora_workbench.training.settings import DEFAULTS, GROUPS, SETTING

from .test_example_workflows import by_type, entry, load, node_id, node_info

REPO = Path(__file__).resolve().parents[3]
QWEN = REPO / "example_workflows" / "train_a_qwen_image_lora_from_a_folder_of_photos.json"
WAN = REPO / "example_workflows" / "train_a_wan_lora_from_a_folder_of_photos.json"
FIXTURES = REPO / "tests" / "fixtures"

# What each example trains and samples with: ComfyUI's repackaged names, as musubi-tuner's docs list them.
FILES = {
    QWEN: {
        "family": "qwen_image",
        "dit": "qwen_image_bf16.safetensors",
        "train_te": ("text_encoder", "qwen_2.5_vl_7b.safetensors"),
        "sample_te": "qwen_2.5_vl_7b.safetensors",
        "vae": "qwen_image_vae.safetensors",
        "clip_type": "qwen_image",
        "shift": ("ModelSamplingAuraFlow", 3.1),
        "latent": "EmptySD3LatentImage",
    },
    WAN: {
        "family": "wan",
        "dit": "wan2.1_t2v_1.3B_bf16.safetensors",
        "train_te": ("umt5", "models_t5_umt5-xxl-enc-bf16.pth"),  # Wan's own T5 layout
        "sample_te": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "vae": "wan_2.1_vae.safetensors",
        "clip_type": "wan",
        "shift": ("ModelSamplingSD3", 8),
        "latent": "EmptyHunyuanLatentVideo",
    },
}
MUSUBI_EXAMPLES = list(FILES)
FOLDER = {"dit": "diffusion_models", "train_te": "text_encoders", "sample_te": "text_encoders", "vae": "vae"}


def prompt(pack, path: Path) -> dict:
    """The example as the API prompt ComfyUI receives (pack nodes from the pack, core nodes from the fixture)."""
    info = json.loads((FIXTURES / "object_info_subset.json").read_text(encoding="utf-8"))
    info.update({name: node_info(cls) for name, cls in pack.NODE_CLASS_MAPPINGS.items()})
    return wf.ui_to_api(load(path), info)


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_trainer_and_the_sampler_use_the_same_repackaged_diffusion_model(pack, comfy, path):
    p = prompt(pack, path)
    dit = FILES[path]["dit"]
    assert entry(p, "KohyaLoRATrain")["ckpt_name"] == f"diffusion_models/{dit}"
    assert entry(p, "UNETLoader")["unet_name"] == dit


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_model_files_node_picks_the_text_encoder_and_vae_musubi_reads_by_comfyui_name(pack, comfy, path):
    files = entry(prompt(pack, path), "KohyaModelFiles")
    slot, name = FILES[path]["train_te"]
    assert files[slot] == name and files["vae"] == FILES[path]["vae"]
    assert "scaled" not in name  # musubi-tuner reads no ComfyUI 'scaled fp8' text encoder
    picked = {k for k, v in files.items() if k != "options" and v != "(auto)"}
    assert picked == {slot, "vae"}


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_sampling_graph_is_comfyuis_own_for_the_family(pack, comfy, path):
    p, facts = prompt(pack, path), FILES[path]
    assert entry(p, "CLIPLoader")["clip_name"] == facts["sample_te"]
    assert entry(p, "CLIPLoader")["type"] == facts["clip_type"]
    assert entry(p, "VAELoader")["vae_name"] == facts["vae"]
    kind, shift = facts["shift"]
    assert entry(p, kind)["shift"] == pytest.approx(shift)
    assert facts["latent"] in {e["class_type"] for e in p.values()}


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_new_lora_goes_through_the_family_shift_into_the_sampler_and_a_saved_image(pack, comfy, path):
    p = prompt(pack, path)
    trainer, lora = node_id(p, "KohyaLoRATrain"), node_id(p, "LoadTrainedLoRA")
    shift = node_id(p, FILES[path]["shift"][0])
    assert entry(p, "LoadTrainedLoRA")["trained_lora"] == [trainer, 0]
    assert entry(p, FILES[path]["shift"][0])["model"] == [lora, 0]
    assert entry(p, "KSampler")["model"] == [shift, 0]
    assert entry(p, "KSampler")["latent_image"] == [node_id(p, FILES[path]["latent"]), 0]
    assert entry(p, "SaveImage")["images"] == [node_id(p, "VAEDecode"), 0]
    assert entry(p, "StringConcatenate")["string_a"] == [lora, 2]  # the trigger words lead the prompt


def test_the_wan_example_samples_one_frame_at_wan_1_3b_size(pack, comfy):
    latent = entry(prompt(pack, WAN), "EmptyHunyuanLatentVideo")
    assert (latent["width"], latent["height"], latent["length"]) == (832, 480, 1)


def test_the_wan_example_trains_near_the_size_it_samples_in_sides_the_size_check_takes(pack, comfy):
    dataset = entry(prompt(pack, WAN), "DatasetSubsetWeights")
    assert (dataset["width"], dataset["height"]) == (832, 448)
    assert dataset["width"] % 64 == 0 and dataset["height"] % 64 == 0


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_example_takes_mixed_size_photos_and_the_trainer_takes_the_dataset_plan(pack, comfy, path):
    p = prompt(pack, path)
    dataset, trainer = entry(p, "DatasetSubsetWeights"), entry(p, "KohyaLoRATrain")
    assert dataset["enable_bucket"] is True and dataset["wrong_size"] == "bucket"
    assert (trainer["epochs"], trainer["width"], trainer["height"]) == (0, 0, 0)


def test_the_qwen_image_example_fits_a_24_gb_gpu_the_way_musubis_table_says(pack, comfy):
    family = entry(prompt(pack, QWEN), "KohyaFamilyOptions")
    assert family["fp8_base"] is True and family["fp8_scaled"] is True and family["blocks_to_swap"] == 16


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_note_names_every_file_with_the_comfyui_folder_it_goes_in(path):
    (note,) = by_type(load(path), "MarkdownNote")
    text = note["widgets_values"][0]
    for role, folder in FOLDER.items():
        value = FILES[path][role]
        name = value[1] if isinstance(value, tuple) else value
        assert f"models/{folder}/{name}" in text, (role, name)
    assert "ComfyUI/lora-projects/" in text and "musubi-tuner" in text
    assert "lora-workbench trainer install --trainer musubi-tuner" in text


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_the_files_picked_on_the_model_files_node_are_slots_of_the_family_recipe(pack, comfy, path):
    files = entry(prompt(pack, path), "KohyaModelFiles")
    _backend, recipe = for_family(FILES[path]["family"])
    slots = {f.widget or f.option for f in recipe.model_files}
    assert {k for k, v in files.items() if k != "options" and v != "(auto)"} <= slots


@pytest.mark.parametrize("path", MUSUBI_EXAMPLES, ids=lambda p: p.stem)
def test_every_setting_the_example_changes_applies_to_its_family(pack, comfy, path):
    p, family = prompt(pack, path), FILES[path]["family"]
    option_nodes = {g.node for g in GROUPS}  # the trainer's own widgets too
    changed = [
        name
        for e in p.values()
        if e["class_type"] in option_nodes
        for name, value in e["inputs"].items()
        if name in SETTING and value != DEFAULTS[name]
    ]
    assert changed, "the example sets no family option"
    assert [n for n in changed if SETTING[n].families and family not in SETTING[n].families] == []


def test_the_wan_example_names_musubis_task_for_the_1_3b_file(pack, comfy):
    assert entry(prompt(pack, WAN), "KohyaFamilyOptions")["task"] == "t2v-1.3B"
