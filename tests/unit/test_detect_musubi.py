"""musubi-tuner's families from a base model file's header: each family in both spellings (musubi's and
ComfyUI's), its variant (musubi's --task / --model_version), and a sentence for the files musubi cannot
load. Small synthetic headers with the marker tensors' real shapes (the full-size files are the
integration tier's: tests/integration/test_musubi_sparse_detect.py)."""

from __future__ import annotations

import json

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import families
from lora_workbench.modelfiles.detect import detect_model, model_types
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

CKPT = "model.diffusion_model."


def write(tmp_path, name, tensors, dtype="BF16", metadata=None):
    path = tmp_path / name
    write_safetensors_header_only(path, {k: (dtype, s) for k, s in tensors.items()}, metadata)
    return path


def qwen_image(prefix="", extra=()):
    t = {
        "txt_norm.weight": [3584],
        "img_in.weight": [3072, 64],
        "txt_in.weight": [3072, 3584],
        "transformer_blocks.0.attn.to_q.weight": [3072, 3072],
        "transformer_blocks.0.img_mod.1.weight": [18432, 3072],
    }
    t.update({k: [1] for k in extra})
    return {prefix + k: s for k, s in t.items()}


def wan(dim=1536, in_dim=16, out_dim=16, prefix="", extra=()):
    t = {
        "patch_embedding.weight": [dim, in_dim, 1, 2, 2],
        "head.modulation": [1, 2, dim],
        "head.head.weight": [out_dim * 4, dim],
        "blocks.0.self_attn.q.weight": [dim, dim],
        "blocks.0.ffn.0.weight": [dim * 4, dim],
    }
    t.update({k: [1] for k in extra})
    return {prefix + k: s for k, s in t.items()}


def z_image(spelling="comfy", prefix=""):
    if spelling == "comfy":
        t = {
            "x_embedder.weight": [3840, 64],
            "cap_embedder.1.weight": [3840, 2560],
            "x_pad_token": [1, 3840],
            "layers.0.attention.qkv.weight": [11520, 3840],
        }
    else:
        t = {
            "all_x_embedder.2-1.weight": [3840, 64],
            "cap_embedder.1.weight": [3840, 2560],
            "layers.0.attention.to_q.weight": [3840, 3840],
        }
    return {prefix + k: s for k, s in t.items()}


def flux2(width=6144, context=15360, prefix=""):
    t = {
        "img_in.weight": [width, 128],
        "txt_in.weight": [width, context],
        "double_blocks.0.img_attn.qkv.weight": [width * 3, width],
        "double_blocks.0.img_attn.norm.key_norm.scale": [128],
        "single_blocks.0.linear1.weight": [width * 9, width],
        "double_stream_modulation_img.lin.weight": [width * 6, width],
    }
    return {prefix + k: s for k, s in t.items()}


def flux1(dev=True, prefix=""):
    t = {
        "img_in.weight": [3072, 64],
        "double_blocks.0.img_attn.norm.key_norm.scale": [128],
        "double_blocks.0.img_attn.qkv.weight": [9216, 3072],
        "double_blocks.0.img_mod.lin.weight": [18432, 3072],
        "single_blocks.0.linear1.weight": [21504, 3072],
    }
    if dev:
        t["guidance_in.in_layer.weight"] = [3072, 256]
    return {prefix + k: s for k, s in t.items()}


def hv15(spelling="comfy"):
    qkv = (
        {"double_blocks.0.img_attn_qkv.weight": [6144, 2048]}
        if spelling == "comfy"
        else {"double_blocks.0.img_attn_q.weight": [2048, 2048]}
    )
    return {
        "txt_in.individual_token_refiner.blocks.0.norm1.weight": [2048],
        "cond_type_embedding.weight": [3, 2048],
        "img_in.proj.weight": [2048, 65, 1, 1, 1],
        "byt5_in.fc1.weight": [2048, 1472],
        "double_blocks.0.img_attn_proj.weight": [2048, 2048],
        **qkv,
    }


def framepack():
    return {
        "x_embedder.proj.weight": [3072, 16, 1, 2, 2],
        "clean_x_embedder.proj.weight": [3072, 16, 1, 2, 2],
        "image_projection.up.weight": [9216, 1152],
        "transformer_blocks.0.attn.to_q.weight": [3072, 3072],
        "transformer_blocks.0.attn.add_q_proj.weight": [3072, 3072],
        "single_transformer_blocks.0.attn.to_q.weight": [3072, 3072],
        "context_embedder.token_refiner.refiner_blocks.0.attn.to_q.weight": [3072, 3072],
    }


@pytest.mark.parametrize(
    "name,tensors,family,variant",
    [
        ("qwen_image_bf16.safetensors", qwen_image(), "qwen_image", "original"),
        ("qi.safetensors", qwen_image(CKPT), "qwen_image", "original"),
        ("q.safetensors", qwen_image(extra=("__index_timestep_zero__",)), "qwen_image", "edit-2511"),
        ("wan2.1_t2v_1.3B_bf16.safetensors", wan(), "wan", "t2v-1.3B"),
        ("w.safetensors", wan(prefix=CKPT), "wan", "t2v-1.3B"),
        ("w.safetensors", wan(5120), "wan", "t2v-14B"),
        ("w.safetensors", wan(5120, 36, extra=("img_emb.proj.0.bias",)), "wan", "i2v-14B"),
        (
            "w.safetensors",
            wan(5120, 36, extra=("img_emb.proj.0.bias", "img_emb.emb_pos")),
            "wan",
            "flf2v-14B",
        ),
        ("w.safetensors", wan(5120, 36), "wan", "i2v-A14B"),  # Wan 2.2 I2V has no CLIP input
        ("z_image_bf16.safetensors", z_image("comfy"), "z_image", ""),
        ("z.safetensors", z_image("musubi"), "z_image", ""),
        ("flux2-dev.safetensors", flux2(), "flux2", "dev"),
        ("k.safetensors", flux2(4096, 12288), "flux2", "klein-9b"),
        ("k.safetensors", flux2(3072, 7680), "flux2", "klein-4b"),
        ("flux2-klein-base-4b.safetensors", flux2(3072, 7680), "flux2", "klein-base-4b"),
        ("flux1-kontext-dev.safetensors", flux1(), "flux_kontext", ""),
        ("hunyuanvideo1.5_720p_t2v_fp16.safetensors", hv15("comfy"), "hunyuan_video_1_5", "t2v"),
        ("hunyuanvideo1.5_720p_i2v_fp16.safetensors", hv15("tencent"), "hunyuan_video_1_5", "i2v"),
        ("FramePackI2V_HY_bf16.safetensors", framepack(), "framepack", ""),
    ],
)
def test_each_musubi_family_is_detected_with_its_variant(tmp_path, name, tensors, family, variant):
    info = detect_model(write(tmp_path, name, tensors))
    assert (info.arch, info.variant, info.unusable) == (family, variant, "")
    assert info.trainer == "musubi-tuner" and info.script == families.get(family).script


def test_wan_2_2_a14b_comes_from_the_file_name_or_the_model_type(tmp_path):
    high = write(tmp_path, "wan2.2_t2v_high_noise_14B_fp16.safetensors", wan(5120))
    assert detect_model(high).variant == "t2v-A14B"
    plain = write(tmp_path, "my_wan_14b.safetensors", wan(5120))
    assert detect_model(plain).variant == "t2v-14B"
    info = detect_model(plain, "wan_t2v_A14B")
    assert (info.arch, info.variant, info.unusable) == ("wan", "t2v-A14B", "")
    assert "the model type says Wan 2.2 T2V A14B" in info.how


def test_a_model_type_naming_another_variant_than_the_file_is_a_sentence(tmp_path):
    small = write(tmp_path, "w.safetensors", wan(1536))
    info = detect_model(small, "wan_t2v_A14B")
    assert "names Wan 2.2 T2V A14B, but the file is Wan 2.1 T2V 1.3B" in info.unusable
    assert "set the model type to wan or auto" in info.unusable


@pytest.mark.parametrize(
    "model_type,variant",
    [
        ("qwen_image_edit", "edit"),
        ("qwen_image_edit_2509", "edit-2509"),
        ("qwen_image_edit_2511", "edit-2511"),
    ],
)
def test_qwen_image_edit_is_told_by_the_model_type(tmp_path, model_type, variant):
    path = write(tmp_path, "q.safetensors", qwen_image())
    assert detect_model(path).variant == "original"
    info = detect_model(path, model_type)
    assert (info.arch, info.variant, info.unusable) == ("qwen_image", variant, "")


def test_qwen_image_edit_files_say_their_variant_by_name(tmp_path):
    for name, variant in (
        ("qwen_image_edit_bf16.safetensors", "edit"),
        ("qwen_image_edit_2509_bf16.safetensors", "edit-2509"),
    ):
        assert detect_model(write(tmp_path, name, qwen_image())).variant == variant


def test_flux_kontext_has_flux_dev_tensors_so_the_model_type_decides(tmp_path):
    dev = write(tmp_path, "flux1-dev.safetensors", flux1())
    assert detect_model(dev).arch == "flux"
    info = detect_model(dev, "flux_kontext")
    assert (info.arch, info.unusable) == ("flux_kontext", "")
    assert "set by the user, and the file agrees" in info.how
    schnell = write(tmp_path, "s.safetensors", flux1(dev=False))
    assert "no guidance input" in detect_model(schnell, "flux_kontext").unusable


def test_flux2_is_not_taken_for_a_flux1_fill_model(tmp_path):
    info = detect_model(write(tmp_path, "f.safetensors", flux2()))
    assert info.arch == "flux2" and "stream modulations" in info.how


def test_z_image_and_lumina2_share_a_layout_but_not_a_width(tmp_path):
    lumina = {
        "cap_embedder.1.weight": [2304, 2304],
        "x_embedder.weight": [2304, 64],
        "x_pad_token": [1, 2304],
        "layers.0.attention.qkv.weight": [6912, 2304],
    }
    assert detect_model(write(tmp_path, "l.safetensors", lumina)).arch == "lumina2"
    assert detect_model(write(tmp_path, "z.safetensors", z_image())).arch == "z_image"


def test_hunyuan_video_1_5_is_not_taken_for_hunyuan_image(tmp_path):
    assert detect_model(write(tmp_path, "h.safetensors", hv15())).arch == "hunyuan_video_1_5"


@pytest.mark.parametrize(
    "tensors,words",
    [
        (wan(3072, 48, 48), "does not train Wan 2.2 TI2V 5B"),
        (wan(1536, 48), "Fun Control"),
        (wan(1536, extra=("vace_patch_embedding.weight",)), "Wan VACE model"),
        (qwen_image(extra=("time_text_embed.addition_t_embedding.weight",)), "Qwen-Image-Layered"),
        (flux2(prefix=CKPT), "reads bare names"),
        (qwen_image("net."), "bare or model.diffusion_model. names"),
        (z_image(prefix=CKPT), "reads bare names"),
    ],
)
def test_files_musubi_cannot_train_are_a_sentence(tmp_path, tensors, words):
    info = detect_model(write(tmp_path, "m.safetensors", tensors))
    assert words in info.unusable


def test_a_scaled_fp8_dit_names_the_bf16_file_to_download(tmp_path):
    tensors = {**qwen_image(), "scaled_fp8": [2], "transformer_blocks.0.attn.to_q.scale_weight": [1]}
    info = detect_model(write(tmp_path, "qwen_image_fp8_scaled.safetensors", tensors, "F8_E4M3"))
    assert "'scaled fp8'" in info.unusable and "musubi-tuner" in info.unusable
    assert "qwen_image_bf16.safetensors" in info.unusable


def test_fp8_weights_are_refused_except_for_wan_which_trains_them_with_fp8_base(tmp_path):
    qwen = detect_model(write(tmp_path, "q.safetensors", qwen_image(), "F8_E4M3"))
    assert "stored in fp8" in qwen.unusable and qwen.fp8_weights
    w = detect_model(write(tmp_path, "wan2.1_t2v_1.3B_fp8_e4m3fn.safetensors", wan(), "F8_E4M3"))
    assert (w.unusable, w.fp8_weights) == ("", True)


def test_a_dit_with_its_text_encoder_inside_is_a_sentence_for_musubi(tmp_path):
    tensors = {**wan(), "text_encoders.t5.encoder.block.0.layer.0.SelfAttention.q.weight": [4096, 4096]}
    info = detect_model(write(tmp_path, "w.safetensors", tensors))
    assert "loads the diffusion model alone" in info.unusable


def test_hunyuan_video_in_diffusers_naming_is_refused_by_name(tmp_path):
    tensors = {k: s for k, s in framepack().items() if not k.startswith(("clean_x", "image_proj"))}
    with pytest.raises(ValidationError, match="HunyuanVideo in diffusers naming"):
        detect_model(write(tmp_path, "h.safetensors", tensors))


def test_a_diffusers_folder_of_a_musubi_family_names_the_file_to_use(tmp_path):
    folder = tmp_path / "Qwen-Image"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "QwenImagePipeline"}))
    info = detect_model(folder)
    assert info.arch == "qwen_image" and "not a diffusers folder" in info.unusable
    assert "qwen_image_bf16.safetensors" in info.unusable


def test_the_model_types_are_auto_the_families_and_the_variants_files_cannot_tell():
    types = model_types()
    assert types[0] == "auto" and set(families.FAMILY_IDS) <= set(types)
    for name in (
        "qwen_image_edit",
        "qwen_image_edit_2509",
        "qwen_image_edit_2511",
        "wan_t2v_A14B",
        "wan_i2v_A14B",
    ):
        assert name in types


def test_unknown_files_name_both_trainers(tmp_path):
    with pytest.raises(ValidationError) as exc:
        detect_model(write(tmp_path, "x.safetensors", {"foo.weight": [4, 4]}))
    assert "(through sd-scripts)" in str(exc.value) and "Wan 2.x" in str(exc.value)
