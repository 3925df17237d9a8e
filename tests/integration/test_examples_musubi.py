"""The Qwen-Image and Wan examples on a real ComfyUI (a125cd84, CPU) whose model folders hold the files
their notes name (empty files: ComfyUI only lists them here): ComfyUI accepts every value of both graphs
as shipped (each file in the folder its loader reads, every loader type, sampler and scheduler one it
knows), and queued as shipped the dataset node asks for the project folder, before any trainer starts.
With full-size sparse files (real headers) and a stand-in musubi-tuner, each example plans its whole
run and hands its files to the first step.

Sampling with the real weights (tens of GB) is the GPU bench's job, not this tier's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_workbench.client import queue_client as qc
from lora_workbench.client.workflow import ui_to_api

from . import _musubi_models
from .conftest import start_comfy, stop_comfy
from .test_example_workflow_e2e import make_dataset

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

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
    # ComfyUI picks the order: the dataset node (no project folder) or a loader (empty files) stops it.
    assert result.status == "error", "the shipped example has no project folder and may not train"
    assert (result.error or {}).get("node_type") != "KohyaLoRATrain", message_of(result)


@pytest.mark.parametrize("name", EXAMPLES)
def test_queued_as_shipped_the_dataset_node_asks_for_the_project_folder(comfy_with_the_named_files, name):
    client = qc.QueueClient(comfy_with_the_named_files.url, out=print)
    result = client.run(training_half(ui_to_api(example(name), client.object_info())), timeout=300)
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
    result = client.run(training_half(prompt), timeout=300)
    print(f"{name}: {result.status}: {message_of(result)!r}")
    assert result.status == "error" and result.error["node_type"] == "KohyaLoRATrain", message_of(result)
    assert "Traceback" not in message_of(result) and len(message_of(result).splitlines()) == 1


def training_half(prompt: dict) -> dict:
    """The prompt without its Save Image output: ComfyUI then runs the trainer and what feeds it, not the
    sampling loaders (which would load the empty or sparse full-size files in whatever order it picks)."""
    return {k: e for k, e in prompt.items() if e["class_type"] != "SaveImage"}


def message_of(result: qc.RunResult) -> str:
    return str((result.error or {}).get("exception_message", "")).strip()


# --------------------------------------------------------------------------- full-size files, a stand-in trainer
FAKE_PYTHON = """#!{python}
import json, sys
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["-c"] and "torch.cuda" in sys.argv[2]:  # the device probe: one 24 GB GPU
    print(json.dumps({{"device": "gpu", "torch": "2.8.0", "gpu_bytes": 24 * 2**30, "torch_dir": "/x"}}))
    sys.exit(0)
sys.stderr.write("stand-in musubi-tuner: the run stops here\\n")
sys.exit(3)
"""


def _musubi_headers(tmp: Path) -> dict:
    """Full-size headers from musubi-tuner's own model classes (tests/integration/_musubi_models.py)."""
    root, python = os.environ.get("MUSUBI_TUNER_PATH"), os.environ.get("MUSUBI_PYTHON")
    if not root or not python:
        pytest.skip(
            "MUSUBI_TUNER_PATH / MUSUBI_PYTHON are not set: the headers come from musubi-tuner's classes"
        )
    out = tmp / "headers.json"
    proc = subprocess.run(
        [python, str(Path(_musubi_models.__file__)), root, str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


# Each file the notes name -> the fixture whose header it gets (None: a file no header check reads).
SPARSE = {
    "diffusion_models/qwen_image_bf16.safetensors": ("models", "qwen_image_bf16.safetensors"),
    "text_encoders/qwen_2.5_vl_7b.safetensors": ("components", "qwen_2.5_vl_7b.safetensors"),
    "vae/qwen_image_vae.safetensors": (
        "components",
        "wan_2.1_vae.safetensors",
    ),  # ComfyUI's: Wan's VAE layout
    "diffusion_models/wan2.1_t2v_1.3B_bf16.safetensors": ("models", "wan2.1_t2v_1.3B_bf16.safetensors"),
    "text_encoders/models_t5_umt5-xxl-enc-bf16.pth": None,  # a torch pickle: the pack reads no header
    "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors": None,  # ComfyUI's, for sampling only
    "vae/wan_2.1_vae.safetensors": ("components", "wan_2.1_vae.safetensors"),
}


@pytest.fixture(scope="module")
def comfy_with_full_size_files(comfyui_dir, comfy_python, tmp_path_factory):
    """A real ComfyUI whose models/ holds the notes' files as full-size sparse files (real headers, built
    from musubi-tuner's classes), with a stand-in musubi-tuner whose python logs each step's argv and
    stops: the run gets as far as the first trainer step, every step before it the pack's own."""
    tmp = tmp_path_factory.mktemp("comfy-musubi-full-size")
    headers = _musubi_headers(tmp)
    named = {m["name"]: m["tensors"] for m in headers["models"]}
    named.update({k: {n: ["BF16", s] for n, s in v.items()} for k, v in headers["components"].items()})
    home = tmp / "home"
    for rel, source in SPARSE.items():
        path = home / "models" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _musubi_models.write_sparse(path, named[source[1]]) if source else path.touch()
    checkout = tmp / "musubi-tuner"
    (checkout / "src" / "musubi_tuner").mkdir(parents=True)
    (checkout / "src" / "musubi_tuner" / "wan_train_network.py").touch()
    python = tmp / "python"
    python.write_text(
        FAKE_PYTHON.format(python=sys.executable, log=str(tmp / "argv.jsonl")), encoding="utf-8"
    )
    python.chmod(0o755)
    env = {"MUSUBI_TUNER_PATH": str(checkout), "MUSUBI_PYTHON": str(python)}
    server = start_comfy(comfyui_dir, comfy_python, home, env, extra_args=("--base-directory", str(home)))
    server.argv_log = tmp / "argv.jsonl"
    yield server
    stop_comfy(server)


# What each example's run config must hold (besides the files its note names).
CONFIG = {
    "train_a_qwen_image_lora_from_a_folder_of_photos": {
        "model_version": "original",
        "fp8_base": True,
        "fp8_scaled": True,
        "blocks_to_swap": 16,
        "network_module": "networks.lora_qwen_image",
        "timestep_sampling": "shift",
    },
    "train_a_wan_lora_from_a_folder_of_photos": {
        "task": "t2v-1.3B",
        "network_module": "networks.lora_wan",
        "timestep_sampling": "shift",
    },
}
# musubi-tuner's option for each file the note names, by folder and role.
OPTION = {
    "diffusion_models/qwen_image_bf16.safetensors": "dit",
    "text_encoders/qwen_2.5_vl_7b.safetensors": "text_encoder",
    "vae/qwen_image_vae.safetensors": "vae",
    "diffusion_models/wan2.1_t2v_1.3B_bf16.safetensors": "dit",
    "text_encoders/models_t5_umt5-xxl-enc-bf16.pth": "t5",
    "vae/wan_2.1_vae.safetensors": "vae",
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_plans_its_musubi_run_from_the_files_its_note_names(comfy_with_full_size_files, name):
    """Detection, the model files picked by the example's names, validation and the Job all pass: the
    run stops at the stand-in trainer's first step, which got the example's files."""
    server = comfy_with_full_size_files
    project = server.home / "lora-projects" / f"full-{name}"
    make_dataset(project)
    client = qc.QueueClient(server.url, out=print)
    prompt = qc.prepare_prompt(example(name), client, [f"DatasetSubsetWeights.project_folder={project}"])
    result = client.run(training_half(prompt), timeout=300)  # a sparse DiT loaded to sample: tens of GB
    print(f"{name}: {result.status}: {message_of(result)!r}")
    assert result.status == "error" and result.error["node_type"] == "KohyaLoRATrain", message_of(result)
    assert "stand-in musubi-tuner" in message_of(result), message_of(result)
    argv = json.loads(server.argv_log.read_text(encoding="utf-8").splitlines()[-1])
    print(f"the first step's argv: {argv}")
    assert argv[0].endswith("_cache_latents.py")
    vae = next(rel for rel in EXAMPLES[name] if rel.startswith("vae/"))
    assert argv[argv.index("--vae") + 1] == str(server.home / "models" / vae)
    (config_file,) = project.glob("output/*/config.toml")
    config = {
        k: v
        for section in tomllib.loads(config_file.read_text(encoding="utf-8")).values()
        for k, v in section.items()
    }
    files = {OPTION[rel]: str(server.home / "models" / rel) for rel in EXAMPLES[name] if rel in OPTION}
    assert {k: config.get(k) for k in files} == files
    assert {k: config.get(k) for k in CONFIG[name]} == CONFIG[name]
