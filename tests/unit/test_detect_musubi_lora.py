"""LoRAs trained by musubi-tuner: their family from musubi's metadata, or without it from the module
names (lora_unet_<path> as trained, diffusion_model.<path>.lora_A after convert_lora.py --target other)
and widths; and the family check against the model ComfyUI loaded (Kontext loads as FLUX.1)."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import lora_file
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

RANK = 4


def lora(path, modules: dict[str, tuple[int, int]], metadata=None, converted=False):
    """modules: module path (dots) -> (in, out); written as musubi saves them, or converted."""
    tensors = {}
    for module, (n_in, n_out) in modules.items():
        if converted:
            tensors[f"diffusion_model.{module}.lora_A.weight"] = ("BF16", [RANK, n_in])
            tensors[f"diffusion_model.{module}.lora_B.weight"] = ("BF16", [n_out, RANK])
        else:
            name = "lora_unet_" + module.replace(".", "_")
            tensors[f"{name}.lora_down.weight"] = ("BF16", [RANK, n_in])
            tensors[f"{name}.lora_up.weight"] = ("BF16", [n_out, RANK])
            tensors[f"{name}.alpha"] = ("BF16", [])
    write_safetensors_header_only(path, tensors, metadata)
    return path


MODULES = {
    "wan": {"blocks.0.self_attn.q": (1536, 1536), "blocks.0.ffn.0": (1536, 8960)},
    "qwen_image": {
        "transformer_blocks.0.attn.to_q": (3072, 3072),
        "transformer_blocks.0.img_mlp.net.0.proj": (3072, 12288),
    },
    "framepack": {
        "transformer_blocks.0.attn.to_q": (3072, 3072),
        "single_transformer_blocks.0.attn.to_q": (3072, 3072),
    },
    "hunyuan_video_1_5": {"double_blocks.0.img_attn_q": (2048, 2048)},
    "flux2": {"double_blocks.0.img_attn.qkv": (6144, 18432)},
    "z_image": {"layers.0.attention.to_q": (3840, 3840)},
}


@pytest.mark.parametrize("family", list(MODULES))
@pytest.mark.parametrize("converted", [False, True])
def test_musubi_loras_are_recognised_by_their_modules(tmp_path, family, converted):
    info = lora_file.inspect(lora(tmp_path / "l.safetensors", MODULES[family], converted=converted))
    assert info.arch == family, info.arch_source


def test_flux2_klein_4b_is_told_from_flux1_by_its_single_blocks(tmp_path):
    klein = {"double_blocks.0.img_attn.qkv": (3072, 9216), "single_blocks.0.linear1": (3072, 27648)}
    flux1 = {"double_blocks.0.img_attn.qkv": (3072, 9216), "single_blocks.0.linear1": (3072, 21504)}
    assert lora_file.inspect(lora(tmp_path / "k.safetensors", klein)).arch == "flux2"
    assert lora_file.inspect(lora(tmp_path / "f.safetensors", flux1)).arch in ("flux", "flux|chroma")


@pytest.mark.parametrize(
    "metadata,family",
    [
        ({"modelspec.architecture": "wan2.1/lora", "ss_base_model_version": "wan"}, "wan"),
        ({"modelspec.architecture": "Qwen-Image-Edit-Plus/lora"}, "qwen_image"),
        ({"ss_base_model_version": "z_image"}, "z_image"),
        ({"modelspec.architecture": "Flux.2-klein-4b/lora"}, "flux2"),
        (
            {"modelspec.architecture": "Flux.1-dev/lora", "ss_base_model_version": "flux_kontext"},
            "flux_kontext",
        ),
        ({"modelspec.architecture": "hunyuan-video-1.5/lora"}, "hunyuan_video_1_5"),
        ({"modelspec.architecture": "framepack/lora"}, "framepack"),
        ({"modelspec.architecture": "flux-1-dev/lora", "ss_base_model_version": "flux1"}, "flux"),
    ],
)
def test_musubis_metadata_names_the_family(tmp_path, metadata, family):
    kontext_like = {
        "double_blocks.0.img_attn.qkv": (3072, 9216),
        "double_blocks.0.img_mod.lin": (3072, 18432),
    }
    info = lora_file.inspect(lora(tmp_path / "l.safetensors", kontext_like, metadata))
    assert info.arch == family


def test_a_kontext_lora_loads_on_comfyuis_flux_but_a_wan_lora_does_not():
    kontext = lora_file.LoraInfo("k.safetensors", "flux_kontext", False, arch_source="metadata")
    lora_file.check_compatible(kontext, lora_file.model_family(["Flux"]))
    wan = lora_file.LoraInfo("w.safetensors", "wan", False, arch_source="Wan blocks")
    lora_file.check_compatible(wan, lora_file.model_family(["WAN21_T2V"]))
    with pytest.raises(ValidationError, match="trained for Wan 2"):
        lora_file.check_compatible(wan, lora_file.model_family(["QwenImage"]))


@pytest.mark.parametrize(
    "classes,family",
    [
        (["WAN21_I2V", "WAN21_T2V"], "wan"),
        (["WAN22_T2V"], "wan"),
        (["QwenImage"], "qwen_image"),
        (["ZImage", "Lumina2"], "z_image"),
    ],
)
def test_comfyuis_model_classes_name_the_musubi_families(classes, family):
    assert lora_file.model_family(classes) == family
