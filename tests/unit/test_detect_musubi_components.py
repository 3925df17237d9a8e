"""The text encoders, VAEs and image encoders musubi-tuner's families need: their kinds from a header
(so a wrong file is refused before launch), the kind names recipes use, and the sentence for a missing
one naming the ComfyUI folder and the file to add."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import components
from lora_workbench.modelfiles.detect import ModelInfo
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from lora_workbench.training import families as recipes
from lora_workbench.training import model_files
from lora_workbench.training.families import ModelFile


def write(path, tensors, dtype="BF16"):
    write_safetensors_header_only(path, {k: (dtype, s) for k, s in tensors.items()})
    return path


def llm(width, q_norm, prefix="model."):
    t = {f"{prefix}layers.0.self_attn.q_proj.weight": [width, width]}
    if q_norm:
        t[f"{prefix}layers.0.self_attn.q_norm.weight"] = [128]
    return t


HF_T5 = "encoder.block.{}.layer.0.SelfAttention.{}.weight"


@pytest.mark.parametrize(
    "tensors,kind",
    [
        (
            {"token_embedding.weight": [256384, 4096], "blocks.0.pos_embedding.embedding.weight": [32, 64]},
            "umt5_xxl",
        ),
        (
            {HF_T5.format(0, "q"): [4096, 4096], HF_T5.format(1, "relative_attention_bias"): [32, 64]},
            "umt5_xxl_hf",
        ),
        ({HF_T5.format(0, "q"): [4096, 4096]}, "t5xxl"),
        (llm(3584, False), "qwen2_5_vl"),
        (llm(1024, True), "qwen3"),
        (llm(2560, True), "qwen3_4b"),
        (llm(4096, True), "qwen3_8b"),
        (llm(4096, False), "llava_llama3"),
        (llm(5120, False, "language_model.model."), "mistral3"),
        ({"vision_model.embeddings.patch_embedding.weight": [1152, 3, 14, 14]}, "siglip"),
        ({"vision_model.embeddings.patch_embedding.weight": [1280, 3, 14, 14]}, "clip_vision_h"),
        ({"decoder.conv1.weight": [384, 16, 3, 3, 3]}, "qwen_image_vae"),
        ({"decoder.conv1.weight": [1024, 48, 3, 3, 3]}, "wan22_vae"),
        ({"decoder.conv_in.weight": [512, 16, 3, 3]}, "ae16"),
        ({"decoder.conv_in.weight": [512, 32, 3, 3]}, "flux2_vae"),
        ({"decoder.conv_in.conv.weight": [512, 16, 3, 3, 3]}, "hunyuan_video_vae"),
        ({"decoder.conv_in.conv.weight": [1024, 32, 3, 3, 3]}, "hv15_vae"),
    ],
)
def test_each_new_component_kind_is_read_from_the_header(tmp_path, tensors, kind):
    assert components.file_kind(write(tmp_path / "c.safetensors", tensors)) == kind


def test_recipe_kind_names_are_satisfied_by_the_files_they_mean():
    assert components.satisfies("qwen_image_vae", "wan_vae")  # one architecture: cannot be told apart
    assert components.satisfies("qwen2_5_vl", "qwen25_vl")
    assert components.satisfies("ae16", "flux_ae")
    assert components.satisfies("qwen3_4b", "qwen3") and not components.satisfies("qwen3", "qwen3_4b")
    assert not components.satisfies("umt5_xxl_hf", "umt5_xxl")
    assert components.satisfies("unknown", "siglip")
    for kind in ("wan_vae", "qwen25_vl", "flux_ae", "umt5_xxl", "siglip", "mistral3", "hv15_vae"):
        assert components.kind_name(kind) != components.kind_name("nonsense")


_SIGLIP = ModelFile(
    "image_encoder",
    "SigLIP image encoder",
    "clip_vision",
    "siglip",
    r"sig(clip|lip)",
    example="sigclip_vision_patch14_384.safetensors",
)
_T5 = ModelFile(
    "t5",
    "UMT5-XXL text encoder",
    "text_encoders",
    "umt5_xxl",
    r"umt5",
    example="umt5-xxl-enc-bf16.safetensors",
)


def _recipe(*slots):
    return replace(recipes.get("flux"), id="framepack", model_files=slots)


def _model(tmp_path):
    return ModelInfo(
        str(tmp_path / "FramePackI2V_HY_bf16.safetensors"), "framepack", "test", layout="diffusion_model"
    )


def test_a_missing_image_encoder_names_comfyuis_clip_vision_folder_and_the_file(tmp_path):
    with pytest.raises(ValidationError) as exc:
        model_files.pick(
            _model(tmp_path), {}, {"clip_vision": []}, lambda f, n: None, recipe=_recipe(_SIGLIP)
        )
    message = str(exc.value)
    assert "models/clip_vision" in message and "sigclip_vision_patch14_384.safetensors" in message


def test_the_image_encoder_is_picked_by_name_from_clip_vision(tmp_path):
    siglip = write(
        tmp_path / "sigclip_vision_patch14_384.safetensors",
        {"vision_model.embeddings.patch_embedding.weight": [1152, 3, 14, 14]},
    )
    picked = model_files.pick(
        _model(tmp_path),
        {},
        {"clip_vision": [siglip.name, "clip_vision_h.safetensors"]},
        lambda f, n: str(tmp_path / n) if f == "clip_vision" else None,
        recipe=_recipe(_SIGLIP),
    )
    assert [(p.option, p.name, p.how) for p in picked] == [("image_encoder", siglip.name, "by name")]


def test_comfyuis_umt5_in_hugging_face_names_is_refused_for_wans_t5(tmp_path):
    hf = write(
        tmp_path / "umt5_xxl_fp16.safetensors",
        {HF_T5.format(0, "q"): [4096, 4096], HF_T5.format(1, "relative_attention_bias"): [32, 64]},
    )
    with pytest.raises(ValidationError, match="Hugging Face names"):
        model_files.pick(
            _model(tmp_path),
            {"t5": hf.name},
            {"text_encoders": [hf.name]},
            lambda f, n: str(hf),
            recipe=_recipe(_T5),
        )


def test_a_scaled_fp8_text_encoder_names_the_trainer_that_cannot_read_it(tmp_path):
    scaled = write(
        tmp_path / "umt5_scaled.safetensors", {"scaled_fp8": [2], "blocks.0.attn.q.scale_weight": [1]}
    )
    with pytest.raises(ValidationError, match="scale tensors musubi-tuner does not read"):
        model_files.pick(
            _model(tmp_path), {"t5": scaled.name}, {}, lambda f, n: str(scaled), recipe=_recipe(_T5)
        )


def test_the_cli_lists_clip_vision_files_and_wans_pth_files(tmp_path):
    for sub, name in (
        ("clip_vision", "sigclip_vision_patch14_384.safetensors"),
        ("text_encoders", "models_t5_umt5-xxl-enc-bf16.pth"),
    ):
        (tmp_path / "models" / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / "models" / sub / name).write_bytes(b"x")
    source = model_files.path_source(tmp_path)
    assert source.listing["clip_vision"] == ["sigclip_vision_patch14_384.safetensors"]
    assert "models_t5_umt5-xxl-enc-bf16.pth" in source.listing["text_encoders"]
