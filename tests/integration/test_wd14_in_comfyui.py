"""Caption Dataset (WD14) in a REAL ComfyUI, queued over HTTP: the real sd-scripts tagger (tiny ONNX
model, off line) captions a copy of the smoke dataset, and its project_folder output feeds Dataset
Subset Weights, which reads the new captions."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import start_comfy, stop_comfy
from .test_train_in_comfyui import fill_defaults, queue, wait_history
from .test_wd14_tagger_real import BUILD_MODEL, TAGS_CSV

pytestmark = pytest.mark.integration

REPO_FOLDER = "SmilingWolf_wd-v1-4-convnext-tagger-v2"


def test_the_node_captions_in_comfyui_and_chains_into_dataset_subset_weights(
    tmp_path, comfyui_dir, comfy_python, kohya_dir, kohya_python, smoke_images
):
    if subprocess.run([str(kohya_python), "-c", "import onnx, onnxruntime"]).returncode != 0:
        pytest.skip(
            f"the sd-scripts venv lacks onnx/onnxruntime: {kohya_python} -m pip install onnx onnxruntime"
        )
    home = tmp_path / "home"
    model = home / "wd14_tagger" / REPO_FOLDER
    model.mkdir(parents=True)
    subprocess.run([str(kohya_python), "-c", BUILD_MODEL, str(model)], check=True, timeout=120)
    (model / "selected_tags.csv").write_text(TAGS_CSV, encoding="utf-8")
    project = home / "projects" / "tagged"
    shutil.copytree(smoke_images, project / "images" / "2_testsubject")
    for caption in (project / "images" / "2_testsubject").glob("*.txt"):
        caption.unlink()
    env = {
        "KOHYA_SS_PATH": str(kohya_dir),
        "KOHYA_PYTHON": str(kohya_python),
        "LORA_WORKBENCH_WD14_DIR": str(home / "wd14_tagger"),
    }
    server = start_comfy(comfyui_dir, comfy_python, home, env)
    try:
        info = server.get_json("/object_info")
        assert "CaptionDatasetWD14" in info, server.log()[-3000:]
        prompt = {
            "1": {
                "class_type": "CaptionDatasetWD14",
                "inputs": fill_defaults(
                    info, "CaptionDatasetWD14", {"project_folder": str(project), "trigger_word": "ohwx"}
                ),
            },
            "2": {
                "class_type": "DatasetSubsetWeights",
                "inputs": fill_defaults(
                    info, "DatasetSubsetWeights", {"project_folder": ["1", 0], "width": 64, "height": 64}
                ),
            },
        }
        entry = wait_history(server, queue(server, prompt), 300)
    finally:
        stop_comfy(server)
    assert entry["status"]["status_str"] == "success", str(entry["status"])[:3000]
    captions = sorted(p.read_text() for p in (project / "images" / "2_testsubject").glob("*.txt"))
    print("\n", entry["outputs"]["1"]["text"][0], "\n", captions)
    assert captions == ["ohwx, tiny tag, solo\n"] * 4
    assert (project / "dataset.toml").is_file()
