"""A LoRA's family from the keys sd-scripts' networks write (lora_unet_double_blocks_* is FLUX, ...),
the refusal of a LoRA for another family, and the renames that let ComfyUI load every key."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import lora_file
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from tests.unit import synthetic_models as sm

DIT_LORAS = {
    "flux": sm.kohya_lora(sm.flux("dev"), "flux"),
    "sd3": sm.kohya_lora(sm.sd3_mmdit("3.5-large", ""), "sd3"),
    "lumina2": sm.kohya_lora(sm.lumina2(), "lumina2"),
    "hunyuan_image": sm.kohya_lora(sm.hunyuan_image(), "hunyuan_image"),
    "anima": sm.kohya_lora(sm.anima(""), "anima"),
}


def lora(tmp_path, tensors, metadata=None, name="l.safetensors"):
    path = tmp_path / name
    write_safetensors_header_only(path, tensors, metadata)
    return lora_file.inspect(path)


@pytest.mark.parametrize("family", list(DIT_LORAS))
def test_each_dit_familys_lora_is_told_from_its_keys(tmp_path, family):
    info = lora(tmp_path, DIT_LORAS[family])
    assert info.arch == family, info.arch_source
    assert not info.has_te and info.rank == 4


def test_flux_and_chroma_share_blocks_and_are_told_apart_by_modulation_or_metadata(tmp_path):
    chroma_keys = sm.kohya_lora(sm.chroma(), "chroma")
    assert lora(tmp_path, chroma_keys, name="a.safetensors").arch == "flux|chroma"
    marked = lora(tmp_path, chroma_keys, {"ss_model_type": "chroma"}, name="b.safetensors")
    assert marked.arch == "chroma"
    spec = lora(tmp_path, chroma_keys, {"modelspec.architecture": "chroma/lora"}, name="c.safetensors")
    assert spec.arch == "chroma"
    assert lora(tmp_path, DIT_LORAS["flux"], name="d.safetensors").arch == "flux"  # it has img_mod_lin


@pytest.mark.parametrize(
    ("tensors", "family"),
    [
        ({**sm.kohya_te_lora("lora_te1_", sm.clip_l()), **sm.kohya_te_lora("lora_te3_", sm.t5xxl())}, "flux"),
        (
            {
                **sm.kohya_te_lora("lora_te1_", sm.clip_l()),
                **sm.kohya_te_lora("lora_te2_", sm.clip_g()),
                **sm.kohya_te_lora("lora_te3_", sm.t5xxl()),
            },
            "sd3",
        ),
        (sm.kohya_te_lora("lora_te_", sm.gemma2(""), ""), "lumina2"),
        (sm.kohya_te_lora("lora_te_", sm.qwen3_06b(""), ""), "anima"),
        (sm.kohya_te_lora("lora_te_", sm.clip_l()), "sd1"),
    ],
)
def test_text_encoder_only_loras_are_told_by_their_encoders(tmp_path, tensors, family):
    info = lora(tmp_path, tensors)
    assert info.arch == family and info.has_te


@pytest.mark.parametrize(
    ("lora_family", "model_config", "ok"),
    [
        ("flux", "Flux", True),
        ("flux", "FluxSchnell", True),
        ("flux", "SDXL", False),
        ("flux", "Chroma", False),
        ("hunyuan_image", "Flux", False),
        ("hunyuan_image", "HunyuanImage21", True),
        ("sd3", "SD3", True),
        ("sd3", "Lumina2", False),
        ("lumina2", "Lumina2", True),
        ("anima", "CosmosT2IPredict2", True),  # ComfyUI without Anima support: unknown, never blocks
    ],
)
def test_a_lora_for_another_family_is_refused_in_one_sentence(tmp_path, lora_family, model_config, ok):
    info = lora(tmp_path, DIT_LORAS[lora_family], name=f"{lora_family}_style.safetensors")
    family = lora_file.model_family([model_config])
    if ok:
        lora_file.check_compatible(info, family)
        return
    with pytest.raises(ValidationError) as exc:
        lora_file.check_compatible(info, family, f"the model ({model_config})")
    message = str(exc.value)
    assert f"{lora_family}_style.safetensors" in message and lora_file.family_name(lora_family) in message
    assert message.count(". ") <= 2  # one sentence of what, one of what to do


def test_a_flux_or_chroma_lora_fits_both(tmp_path):
    info = lora(tmp_path, sm.kohya_lora(sm.chroma(), "chroma"))
    lora_file.check_compatible(info, "chroma")
    lora_file.check_compatible(info, "flux")
    with pytest.raises(ValidationError, match="FLUX.1/Chroma"):
        lora_file.check_compatible(info, "sdxl")


def _generic_map(model: dict, prefix: str) -> dict:
    """What ComfyUI's key map holds for a model: its generic names (<prefix><path>) and kohya's."""
    out = {}
    for name in model:
        if name.endswith(".weight"):
            path = name[: -len(".weight")]
            out[prefix + path] = name
            if prefix == "diffusion_model.":
                out["lora_unet_" + path.replace(".", "_")] = name
    return out


def test_hunyuan_image_loras_are_renamed_to_comfyuis_layer_names(tmp_path):
    keys = DIT_LORAS["hunyuan_image"]
    comfy_map = _generic_map(sm.hunyuan_image(names="comfy"), "diffusion_model.")
    renames = lora_file.align_keys(keys, comfy_map, "hunyuan_image")
    assert renames["lora_unet_double_blocks_0_img_mlp_fc1.lora_down.weight"] == (
        "lora_unet_double_blocks_0_img_mlp_0.lora_down.weight"
    )
    assert (
        renames["lora_unet_single_blocks_3_modulation_linear.alpha"]
        == "lora_unet_single_blocks_3_modulation_lin.alpha"
    )
    modules = {lora_file._split(renames.get(k, k))[0] for k in keys}
    assert modules <= set(comfy_map), sorted(modules - set(comfy_map))[:3]


def test_single_llm_text_encoder_loras_find_comfyuis_generic_names():
    te = sm.gemma2(
        ""
    )  # sd-scripts trains Gemma2Model: layers.N..., ComfyUI holds gemma2_2b.transformer.model.layers.N...
    keys = sm.kohya_te_lora("lora_te_", te, "")
    comfy_map = _generic_map(sm.gemma2("gemma2_2b.transformer.model."), "text_encoders.")
    renames = lora_file.align_keys(keys, comfy_map, "lumina2")
    assert renames["lora_te_layers_0_self_attn_q_proj.lora_down.weight"] == (
        "text_encoders.gemma2_2b.transformer.model.layers.0.self_attn.q_proj.lora_down.weight"
    )
    assert len(renames) == len(keys)


def test_keys_comfyui_already_maps_are_left_alone():
    keys = DIT_LORAS["flux"]
    comfy_map = _generic_map(sm.flux("dev"), "diffusion_model.")
    assert lora_file.align_keys(keys, comfy_map, "flux") == {}


def test_loras_converted_to_comfyui_format_keep_their_family(tmp_path):
    # sd-scripts' convert_*_lora_to_comfy.py outputs: diffusion_model.<path>.lora_A/B and renamed layers
    anima = {"diffusion_model.blocks.0.self_attn.q_proj.lora_A.weight": ("F16", [4, 2048])}
    assert lora(tmp_path, anima, name="a.safetensors").arch == "anima"
    hunyuan = {"lora_unet_double_blocks_0_img_mlp_0.lora_down.weight": ("F16", [4, 3584])}
    assert lora(tmp_path, hunyuan, name="h.safetensors").arch == "hunyuan_image"
