"""Shared material for the training tests: synthetic checkpoints, a project with a dataset, a fake
sd-scripts install (tests/unit/fake_sdscripts.py as train_network.py, run by this python)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

FAKE_SCRIPT = Path(__file__).with_name("fake_sdscripts.py")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdscripts"

UNET = "model.diffusion_model."
SCRIPTS = (  # every trainer the families use (the fake stands in for each)
    "train_network.py",
    "sdxl_train_network.py",
    "sd3_train_network.py",
    "flux_train_network.py",
    "lumina_train_network.py",
    "hunyuan_image_train_network.py",
    "anima_train_network.py",
)


def sd1_tensors() -> dict:
    return {
        UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": ("F16", [320, 768]),
        UNET + "input_blocks.0.0.weight": ("F16", [320, 4, 3, 3]),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": ("F16", [8, 768]),
    }


def sd2_tensors() -> dict:
    return {
        UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": ("F16", [320, 1024]),
        "cond_stage_model.model.token_embedding.weight": ("F16", [8, 1024]),
    }


def sdxl_tensors() -> dict:
    return {
        UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": ("F16", [640, 2048]),
        "conditioner.embedders.1.model.token_embedding.weight": ("F16", [8, 1280]),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": ("F16", [8, 768]),
    }


def write_checkpoint(path: Path, tensors: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors_header_only(path, tensors, {"note": "synthetic"})
    return path


def make_project(root: Path, images: int = 4, repeats: int = 1, name: str = "p1", size: int = 64) -> Path:
    """A project folder: images/<repeats>_subject with tiny PNGs + captions, and dataset.toml."""
    from PIL import Image

    project = root / name
    sub = project / "images" / f"{repeats}_subject"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        Image.new("RGB", (size, size), (i * 30, 100, 200)).save(sub / f"img{i}.png")
        (sub / f"img{i}.txt").write_text("subject, a photo", encoding="utf-8")
    (project / "dataset.toml").write_text(
        '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n[[datasets]]\n'
        f"resolution = [{size}, {size}]\nbatch_size = 1\n\n  [[datasets.subsets]]\n"
        f'  image_dir = "{sub.as_posix()}"\n  class_tokens = "subject"\n  num_repeats = {repeats}\n',
        encoding="utf-8",
    )
    return project


def make_kohya(root: Path, monkeypatch, layout: str = "sd-scripts") -> Path:
    """A fake install: `sd-scripts` has the scripts at top; `kohya_ss` has them in sd-scripts/."""
    base = root / ("kohya_ss" if layout == "kohya_ss" else "sd-scripts")
    scripts = base / "sd-scripts" if layout == "kohya_ss" else base
    scripts.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        shutil.copyfile(FAKE_SCRIPT, scripts / name)
    monkeypatch.setenv("KOHYA_SS_PATH", str(base))
    monkeypatch.setenv("KOHYA_PYTHON", sys.executable)
    monkeypatch.delenv("LORA_WORKBENCH_TOKENIZER_CACHE", raising=False)
    return base


def option_set(name: str) -> set[str]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}
