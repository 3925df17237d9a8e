"""The library links what the newer model families need: diffusion-model-only files and text
encoders, under ComfyUI's folder names (and Forge's)."""

from __future__ import annotations

from pathlib import Path

from lora_workbench.library import layout
from lora_workbench.library.layout import init_library
from lora_workbench.library.linker import link_library


def _ui(base: Path, folders) -> Path:
    for f in folders:
        (base / f).mkdir(parents=True, exist_ok=True)
    return base


def _put(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("weights")
    return path


def test_the_library_has_comfyuis_diffusion_models_and_text_encoders_folders(tmp_path):
    init_library(tmp_path / "lib")
    assert (tmp_path / "lib/diffusion_models").is_dir() and (tmp_path / "lib/text_encoders").is_dir()
    comfy = layout.UI_LAYOUTS["comfyui"]
    assert comfy["diffusion_models"][0] == ("models/diffusion_models", "models/unet")
    assert comfy["text_encoders"][0] == comfy["clip"][0] == ("models/text_encoders", "models/clip")
    assert layout.COMFY_FOLDER_NAMES["diffusion_models"] == "diffusion_models"


def test_flux_files_are_linked_where_comfyui_and_forge_load_them(tmp_path):
    lib = tmp_path / "lib"
    init_library(lib)
    _put(lib / "diffusion_models" / "flux1-dev.safetensors")
    _put(lib / "text_encoders" / "t5xxl_fp16.safetensors")
    _put(lib / "clip" / "clip_l.safetensors")
    _put(lib / "vae" / "ae.safetensors")
    comfy = _ui(
        tmp_path / "ComfyUI", ["models/unet", "models/text_encoders", "models/vae"]
    )  # an older ComfyUI
    forge = _ui(tmp_path / "forge", ["models/Stable-diffusion", "models/text_encoder", "models/VAE"])
    report = link_library(lib, {"comfyui": comfy, "forge": forge})
    assert report.ok, report.to_text()
    assert (comfy / "models/unet/flux1-dev.safetensors").is_symlink()
    assert (comfy / "models/text_encoders/t5xxl_fp16.safetensors").is_symlink()
    assert (comfy / "models/text_encoders/clip_l.safetensors").is_symlink()
    assert (forge / "models/Stable-diffusion/flux1-dev.safetensors").is_symlink()
    assert (forge / "models/text_encoder/t5xxl_fp16.safetensors").is_symlink()
    again = link_library(lib, {"comfyui": comfy, "forge": forge})
    assert again.ok and not again.created and not again.fixed  # a second pass changes nothing
