"""Shared material for the tagger tests: a fake sd-scripts install whose tagger is fake_wd14.py (run by
this python, with stub onnx/onnxruntime modules beside it), a model folder and a small project."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lora_workbench.captioning.wd14 import DEFAULT_REPO, TaggerSpec

FAKE_TAGGER = Path(__file__).with_name("fake_wd14.py")


@dataclass
class Setup:
    scripts: Path  # the fake sd-scripts checkout
    model_dir: Path  # holds SmilingWolf_wd-v1-4-convnext-tagger-v2/
    project: Path
    subset: Path  # project/images/2_cat
    outside: Path  # a folder outside the allowed roots

    def spec(self, **values) -> TaggerSpec:
        return TaggerSpec.from_values(str(self.project), str(self.model_dir), values)


def make_install(root: Path, monkeypatch, onnx: bool = True) -> Path:
    scripts = root / "sd-scripts"
    (scripts / "finetune").mkdir(parents=True)
    (scripts / "train_network.py").write_text("# not run here\n")
    shutil.copyfile(FAKE_TAGGER, scripts / "finetune" / "tag_images_by_wd14_tagger.py")
    if onnx:  # importable by the probe: it runs in the script's environment (PYTHONPATH = the checkout)
        (scripts / "onnx.py").write_text("")
        (scripts / "onnxruntime.py").write_text("")
    monkeypatch.setenv("KOHYA_SS_PATH", str(scripts))
    monkeypatch.setenv("KOHYA_PYTHON", sys.executable)
    return scripts


def make_model(model_dir: Path, repo_id: str = DEFAULT_REPO) -> Path:
    folder = model_dir / repo_id.replace("/", "_")
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not a real model")
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n", encoding="utf-8")
    return folder


def make_project(root: Path, images: int = 3) -> tuple[Path, Path]:
    project = root / "proj"
    subset = project / "images" / "2_cat"
    subset.mkdir(parents=True)
    for i in range(images):
        Image.new("RGB", (32, 32), (i * 40, 90, 160)).save(subset / f"img{i}.png")
    return project, subset


def setup(tmp_path: Path, monkeypatch, onnx: bool = True, images: int = 3) -> Setup:
    """Roots = tmp_path/inside; the install and an `outside` folder lie beside it."""
    inside = tmp_path / "inside"
    inside.mkdir()
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", str(inside))
    scripts = make_install(tmp_path, monkeypatch, onnx)
    model_dir = tmp_path / "models" / "wd14_tagger"
    make_model(model_dir)
    project, subset = make_project(inside, images)
    outside = tmp_path / "outside"
    outside.mkdir()
    return Setup(scripts, model_dir, project, subset, outside)
