"""Example workflow (b), dataset -> train -> LoadTrainedLoRA -> sample -> save, queued headless on a real
ComfyUI (CPU, random-weight SD1.5, 64x64) through our `queue` CLI and client.

Asserts: the LoRA was trained, ComfyUI logged no "lora key not loaded", the image exists and differs
from the same seed with the LoRA at strength 0. The prepare-in-the-graph example runs the same way on a
server of its own, whose input/ folder holds the photos its core loader reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_workbench.client import queue_client as qc

from .conftest import smoke_images_dir, start_comfy, stop_comfy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_workflows" / "train_a_lora_from_a_folder_of_photos.json"
GRAPH_EXAMPLE = REPO / "example_workflows" / "prepare_a_dataset_in_the_graph_then_train.json"
PHOTOS = "my_photos"  # the example's folder under input/
NEEDED = ("DatasetSubsetWeights", "KohyaLoRATrain", "LoadTrainedLoRA", "StringConcatenate")


def make_dataset(folder: Path) -> None:
    """4 PNGs 64x64 with captions in images/2_testsubject (the integration folder's small dataset when it exists)."""
    dest = folder / "images" / "2_testsubject"
    src = smoke_images_dir()
    if src.is_dir():
        shutil.copytree(src, dest)
        return
    from PIL import Image

    dest.mkdir(parents=True)
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]):
        Image.new("RGB", (64, 64), color).save(dest / f"img{i}.png")
        (dest / f"img{i}.txt").write_text(f"testsubject, plain color {i}", encoding="utf-8")


def project_input(info: dict) -> str:
    """The DatasetSubsetWeights input that takes the project folder."""
    spec = info["DatasetSubsetWeights"]["input"]
    names = [n for s in ("required", "optional") for n in (spec.get(s) or {})]
    for name in names:
        if name in ("project", "project_dir", "project_path", "project_folder"):
            return name
    return next(n for n in names if "project" in n or "folder" in n or n.endswith("dir"))


def diff_pixels(a: Path, b: Path) -> int:
    from PIL import Image, ImageChops

    with Image.open(a) as ia, Image.open(b) as ib:
        r, g, b = ImageChops.difference(ia.convert("RGB"), ib.convert("RGB")).split()
        changed = ImageChops.lighter(ImageChops.lighter(r, g), b)  # per pixel: the largest channel change
        return changed.width * changed.height - changed.histogram()[0]


def test_train_a_lora_from_a_folder_of_photos_runs_headless_end_to_end(comfy_server, tmp_path):
    if not EXAMPLE.is_file():
        pytest.skip(f"{EXAMPLE.name} is not there yet")
    info = comfy_server.get_json("/object_info")
    missing = [n for n in NEEDED if n not in info]
    if missing:
        pytest.skip(f"the server lacks {', '.join(missing)}")
    project = comfy_server.home / "projects" / "e2e"
    make_dataset(project)
    ckpt = "random_sd15.safetensors"
    overrides = [
        f"DatasetSubsetWeights.{project_input(info)}={project}",
        "DatasetSubsetWeights.width=64",
        "DatasetSubsetWeights.height=64",
        f"CheckpointLoaderSimple.ckpt_name={ckpt}",
        f"KohyaLoRATrain.ckpt_name={ckpt}",
        "KohyaLoRATrain.epochs=1",
        "KohyaLoRATrain.width=64",
        "KohyaLoRATrain.height=64",
        "KohyaLoRATrain.network_dim=4",
        "KohyaLoRATrain.network_alpha=4",
        "KohyaLoRATrain.output_name=e2e",
        "EmptyLatentImage.width=64",
        "EmptyLatentImage.height=64",
        "KSampler.steps=2",
    ]
    overrides = [
        o for o in overrides if o.split(".", 1)[1].split("=")[0] in _inputs(info, o.split(".", 1)[0])
    ]
    # An input of the trainer's first layout, a hidden input now: `--set` still takes it.
    overrides.append("KohyaLoRATrain.device=cpu")

    # 1. The CLI, exactly as a user runs it headless.
    with_lora = tmp_path / "with_lora"
    args = [
        sys.executable,
        "-m",
        "lora_workbench",
        "queue",
        str(EXAMPLE),
        "--server",
        comfy_server.url,
        "--download",
        str(with_lora),
        "--timeout",
        "900",
    ]
    for o in overrides:
        args += ["--set", o]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=960)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, (
        f"queue failed ({proc.returncode}):\n{proc.stderr}\n{comfy_server.log()[-3000:]}"
    )
    assert "train:" in proc.stdout  # our training progress came over the websocket
    runs = sorted(project.rglob("run.json"))
    assert runs and json.loads(runs[-1].read_text())["spec"]["device"] == "cpu"

    loras = sorted(project.rglob("e2e*.safetensors")) or sorted(project.rglob("*.safetensors"))
    assert loras, f"no LoRA file under {project}"
    images = sorted(with_lora.glob("*.png"))
    assert images, "no image downloaded"

    # 2. Same seed, LoRA at strength 0 (the training node is cached: same inputs).
    client = qc.QueueClient(comfy_server.url, out=print)
    workflow = json.loads(EXAMPLE.read_text())
    prompt = qc.prepare_prompt(
        workflow,
        client,
        [*overrides, "LoadTrainedLoRA.strength_model=0", "LoadTrainedLoRA.strength_clip=0"],
        info,
    )
    result = client.run(prompt, timeout=600, download_dir=str(tmp_path / "without_lora"))
    assert result.status == "success", result.error
    baseline = sorted((tmp_path / "without_lora").glob("*.png"))
    assert baseline
    changed = diff_pixels(images[-1], baseline[-1])
    print(f"LoRA: {loras[-1].name}; pixels that differ from strength 0: {changed} of {64 * 64}")
    assert changed > 0, "the LoRA did not change the image"

    log = comfy_server.log()
    assert "lora key not loaded" not in log
    assert "NOT LOADED" not in log


@pytest.fixture(scope="module")
def comfy_with_photos(
    comfyui_dir, comfy_python, tmp_path_factory, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
):
    """A real ComfyUI like comfy_server whose input/ (its own, not the checkout's) holds 4 photos 64x64
    in input/my_photos/, without captions: the graph example brings them."""
    from PIL import Image

    home = tmp_path_factory.mktemp("comfy-photos")
    photos = home / "input" / PHOTOS
    photos.mkdir(parents=True)
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]):
        Image.new("RGB", (64, 64), color).save(photos / f"photo{i}.png")
    env = {
        "KOHYA_SS_PATH": str(kohya_dir),
        "KOHYA_PYTHON": str(kohya_python),
        "LORA_WORKBENCH_TOKENIZER_CACHE": str(tokenizer_cache),
    }
    extra = ("--input-directory", str(home / "input"))
    server = start_comfy(comfyui_dir, comfy_python, home, env, extra_args=extra, checkpoint=test_checkpoint)
    yield server
    stop_comfy(server)


def test_the_prepare_in_the_graph_example_saves_captions_trains_and_samples(comfy_with_photos, tmp_path):
    server = comfy_with_photos
    project = server.home / "projects" / "from-the-graph"
    ckpt = "random_sd15.safetensors"
    overrides = [
        f"LoadImageSetFromFolderNode.folder={PHOTOS}",
        f"SaveTrainingImages.project_folder={project}",
        "SaveTrainingImages.repeats=2",
        "DatasetSubsetWeights.width=64",
        "DatasetSubsetWeights.height=64",
        f"CheckpointLoaderSimple.ckpt_name={ckpt}",
        f"KohyaLoRATrain.ckpt_name={ckpt}",
        "KohyaLoRATrain.epochs=1",
        "KohyaLoRATrain.network_dim=4",
        "KohyaLoRATrain.network_alpha=4",
        "KohyaLoRATrain.output_name=graph",
        "KohyaSamplingOptions.sample_steps=2",
        "EmptyLatentImage.width=64",
        "EmptyLatentImage.height=64",
        "KSampler.steps=2",
        "KohyaLoRATrain.device=cpu",
    ]
    client = qc.QueueClient(server.url, out=print)
    prompt = qc.prepare_prompt(json.loads(GRAPH_EXAMPLE.read_text()), client, overrides)
    result = client.run(prompt, timeout=900, download_dir=str(tmp_path / "sampled"))
    assert result.status == "success", f"{result.error}\n{server.log()[-3000:]}"

    saved = sorted((project / "images" / "2_subject").glob("*.png"))
    captions = [p.with_suffix(".txt").read_text(encoding="utf-8") for p in saved]
    print(f"saved {len(saved)} images, e.g. {saved[0].name}: {captions[0]!r}")
    assert len(saved) == 4 and all(c.startswith("my_subject, a photo of the subject") for c in captions)
    loras = sorted(project.rglob("graph*.safetensors"))
    assert loras, f"no LoRA file under {project}"
    assert sorted((tmp_path / "sampled").glob("*.png")), "no image downloaded"
    assert "lora key not loaded" not in server.log()


def test_every_example_and_a_migrated_first_layout_workflow_fit_the_live_nodes(comfy_server):
    """Each example (and the first-layout fixture after migration) converts with the live /object_info,
    names only inputs the server knows and gives every required input."""
    from lora_workbench.client.workflow import ui_to_api
    from lora_workbench.training.node_layout import migrate_workflow

    info = comfy_server.get_json("/object_info")
    files = sorted((REPO / "example_workflows").glob("*.json"))
    files.append(REPO / "tests" / "fixtures" / "workflows" / "kohya_train_v1.json")
    for path in files:
        ui, notes = migrate_workflow(json.loads(path.read_text(encoding="utf-8")))
        assert bool(notes) == (path.parent.name == "workflows"), (path.name, notes)
        prompt = ui_to_api(ui, info)
        for nid, entry in prompt.items():
            spec = info[entry["class_type"]]["input"]
            known = {n for s in ("required", "optional") for n in (spec.get(s) or {})}
            assert set(entry["inputs"]) <= known, (path.name, nid, set(entry["inputs"]) - known)
            assert set(spec.get("required") or {}) <= set(entry["inputs"]), (path.name, nid)
        print(f"{path.name}: {len(prompt)} nodes fit the live /object_info; {notes}")


def _inputs(info: dict, node: str) -> set[str]:
    spec = (info.get(node) or {}).get("input", {})
    return {n for s in ("required", "optional") for n in (spec.get(s) or {})}
