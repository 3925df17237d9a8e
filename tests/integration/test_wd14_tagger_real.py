"""The WD14 tagger through REAL sd-scripts: finetune/tag_images_by_wd14_tagger.py --onnx, in the sd-scripts
venv, off line, on a copy of the smoke dataset, with a tiny ONNX model of the tagger's shape.

The model is built in the test with the `onnx` package's helper API, inside the sd-scripts venv (the
test tier's python need not have onnx): input [batch, 448, 448, 3] float, output [batch, 8] sigmoid
probabilities (4 ratings, 3 general tags, 1 character tag) whose biases fix the answer, so the
captions are known: `tiny tag` and `solo` pass the thresholds, `blue sky` and the character do not.
The venv needs onnx and onnxruntime (`KOHYA_PYTHON -m pip install onnx onnxruntime`); without them
the test says so and skips.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lora_workbench.captioning.tag import STAGING_FOLDER, Hooks, caption_project
from lora_workbench.captioning.wd14 import DEFAULT_REPO, TaggerSpec
from lora_workbench.dataset.confined import Guard
from lora_workbench.paths import allowed_roots, cache_dir

pytestmark = pytest.mark.integration

BUILD_MODEL = r"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

folder = sys.argv[1]
bias = np.array([[0, -5, -5, -5, 10, -10, 10, -10]], dtype=np.float32)  # ratings x4, tiny_tag, blue_sky, solo, char
weight = np.zeros((3, 8), dtype=np.float32)
graph = helper.make_graph(
    [
        helper.make_node("ReduceMean", ["input_1:0"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["mean", "weight"], ["logits0"]),
        helper.make_node("Add", ["logits0", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ],
    "tiny_wd14",
    [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, ["batch", 448, 448, 3])],
    [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", 8])],
    [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
onnx.checker.check_model(model)
onnx.save(model, folder + "/model.onnx")
"""
TAGS_CSV = (
    "tag_id,name,category,count\n"
    "9999999,general,9,0\n9999998,sensitive,9,0\n9999997,questionable,9,0\n9999996,explicit,9,0\n"
    "1,tiny_tag,0,100\n2,blue_sky,0,90\n3,solo,0,80\n4,test_character_(series),4,10\n"
)


@pytest.fixture
def tiny_model(tmp_path, kohya_python) -> Path:
    probe = subprocess.run(
        [str(kohya_python), "-c", "import onnx, onnxruntime"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(
            f"the sd-scripts venv lacks onnx/onnxruntime: {kohya_python} -m pip install onnx onnxruntime"
        )
    model_dir = tmp_path / "models" / "wd14_tagger"
    folder = model_dir / DEFAULT_REPO.replace("/", "_")
    folder.mkdir(parents=True)
    subprocess.run([str(kohya_python), "-c", BUILD_MODEL, str(folder)], check=True, timeout=120)
    (folder / "selected_tags.csv").write_text(TAGS_CSV, encoding="utf-8")
    return model_dir


def test_the_real_tagger_captions_the_smoke_dataset_off_line(
    tmp_path, monkeypatch, kohya_dir, kohya_python, smoke_images, tiny_model
):
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", str(tmp_path / "projects"))
    subset = tmp_path / "projects" / "smoke" / "images" / "2_testsubject"
    shutil.copytree(smoke_images, subset)
    (subset / "img_01.txt").write_text("red scarf, ohwx\n", encoding="utf-8")
    spec = TaggerSpec.from_values(
        str(subset.parents[1]),
        str(tiny_model),
        {"trigger_word": "ohwx", "existing_captions": "append", "batch_size": 2},
    )
    seen = []
    report = caption_project(spec, Guard(allowed_roots()), Hooks(on_progress=seen.append))
    print(report.summary())
    captions = {p.name: p.read_text("utf-8") for p in sorted(subset.glob("*.txt"))}
    print(captions)
    assert captions["img_00.txt"].startswith("ohwx, ")
    assert captions["img_01.txt"] == "ohwx, red scarf, tiny tag, solo\n"
    for name in ("img_02.txt", "img_03.txt"):
        tags = captions[name].strip().split(", ")
        assert tags[0] == "ohwx" and "tiny tag" in tags and "solo" in tags and "blue sky" not in tags
        assert "test character (series)" not in tags
    assert report.images == 4 and len(report.written) == 4 and not report.skipped
    assert seen and (seen[-1].done, seen[-1].total) == (2, 2)
    assert list((cache_dir() / STAGING_FOLDER).iterdir()) == []
