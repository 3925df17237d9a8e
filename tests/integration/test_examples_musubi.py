"""The Qwen-Image and Wan examples on a real ComfyUI (a125cd84, CPU) whose model folders hold the files
their notes name (empty files: ComfyUI only lists them here): ComfyUI accepts every value of both graphs
as shipped (each file in the folder its loader reads, every loader type, sampler and scheduler one it
knows), and queued as shipped a run stops at the dataset node with a sentence asking for the project
folder, before any trainer starts.

Sampling with the real weights (tens of GB) is the GPU bench's job, not this tier's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_workbench.client import queue_client as qc
from lora_workbench.client.workflow import ui_to_api

from .conftest import start_comfy, stop_comfy
from .test_example_workflow_e2e import make_dataset

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Each example and the files its note tells people to put in ComfyUI's models/ folders.
EXAMPLES = {
    "train_a_qwen_image_lora_from_a_folder_of_photos": (
        "diffusion_models/qwen_image_bf16.safetensors",
        "text_encoders/qwen_2.5_vl_7b.safetensors",
        "vae/qwen_image_vae.safetensors",
    ),
    "train_a_wan_lora_from_a_folder_of_photos": (
        "diffusion_models/wan2.1_t2v_1.3B_bf16.safetensors",
        "text_encoders/models_t5_umt5-xxl-enc-bf16.pth",
        "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "vae/wan_2.1_vae.safetensors",
    ),
}


def example(name: str) -> dict:
    return json.loads((REPO / "example_workflows" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def comfy_with_the_named_files(comfyui_dir, comfy_python, tmp_path_factory):
    """A real ComfyUI on its own base folder whose models/ holds every file the two notes name."""
    home = tmp_path_factory.mktemp("comfy-musubi-examples")
    for files in EXAMPLES.values():
        for rel in files:
            path = home / "models" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    server = start_comfy(comfyui_dir, comfy_python, home, {}, extra_args=("--base-directory", str(home)))
    yield server
    stop_comfy(server)


def named_files_note_names(name: str) -> list[str]:
    (note,) = [n for n in example(name)["nodes"] if n["type"] == "MarkdownNote"]
    return [rel for rel in EXAMPLES[name] if f"models/{rel}" not in note["widgets_values"][0]]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_note_names_each_file_this_test_puts_in_place(name):
    assert named_files_note_names(name) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_comfyui_accepts_every_value_of_the_example_when_the_named_files_are_there(
    comfy_with_the_named_files, name
):
    server = comfy_with_the_named_files
    client = qc.QueueClient(server.url, out=print)
    prompt = ui_to_api(example(name), client.object_info())
    result = client.run(prompt, timeout=300)  # PromptRejected (a value ComfyUI does not offer) fails here
    print(
        f"{name}: {len(prompt)} nodes accepted by ComfyUI; the run: {result.status}, {message_of(result)!r}"
    )
    assert result.status == "error", "the shipped example has no project folder and may not train"
    assert (result.error or {}).get("node_type") == "DatasetSubsetWeights", message_of(result)
    assert "project folder" in message_of(result)


@pytest.mark.parametrize("name", EXAMPLES)
def test_with_a_project_the_trainer_node_stops_with_one_sentence_not_a_traceback(
    comfy_with_the_named_files, name
):
    """The named files here are empty (and no trainer is installed): whatever the trainer node refuses
    first, it says in one sentence."""
    server = comfy_with_the_named_files
    project = server.home / "lora-projects" / name
    make_dataset(project)
    client = qc.QueueClient(server.url, out=print)
    prompt = qc.prepare_prompt(example(name), client, [f"DatasetSubsetWeights.project_folder={project}"])
    result = client.run(prompt, timeout=300)
    print(f"{name}: {result.status}: {message_of(result)!r}")
    assert result.status == "error" and result.error["node_type"] == "KohyaLoRATrain", message_of(result)
    assert "Traceback" not in message_of(result) and len(message_of(result).splitlines()) == 1


def message_of(result: qc.RunResult) -> str:
    return str((result.error or {}).get("exception_message", "")).strip()
