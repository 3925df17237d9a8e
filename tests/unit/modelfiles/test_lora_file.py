"""LoRA inspection: architecture from synthetic kohya key sets, TE weights, trigger words, epoch files."""

from __future__ import annotations

import json

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import lora_file
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

SD15_KEYS = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
        "F16",
        [4, 768],
    ),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": ("F16", [320, 4]),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": ("F16", []),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [4, 768]),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": ("F16", [768, 4]),
}
SDXL_KEYS = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": ("F16", [8, 2048]),
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": ("F16", [640, 8]),
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [8, 768]),
    "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [8, 1280]),
}
SD2_KEYS = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v.lora_down.weight": (
        "F16",
        [4, 1024],
    ),
}
FLUX_KEYS = {
    "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": ("F16", [4, 3072]),
    "lora_unet_single_blocks_0_linear1.lora_down.weight": ("F16", [4, 3072]),
}


def write_lora(path, keys, metadata=None):
    write_safetensors_header_only(path, keys, metadata)
    return path


@pytest.mark.parametrize(
    ("keys", "arch"),
    [(SD15_KEYS, "sd1"), (SDXL_KEYS, "sdxl"), (SD2_KEYS, "sd2"), (FLUX_KEYS, "flux|chroma")],
)
def test_architecture_is_read_from_the_key_set(tmp_path, keys, arch):
    info = lora_file.inspect(write_lora(tmp_path / "l.safetensors", keys))
    assert info.arch == arch


def test_text_encoder_weights_are_detected(tmp_path):
    with_te = lora_file.inspect(write_lora(tmp_path / "a.safetensors", SD15_KEYS))
    unet_only = lora_file.inspect(write_lora(tmp_path / "b.safetensors", SD2_KEYS))
    assert with_te.has_te and not unet_only.has_te
    assert with_te.rank == 4


def test_text_encoder_only_loras_are_classified_by_their_encoders(tmp_path):
    sdxl_te = {k: v for k, v in SDXL_KEYS.items() if k.startswith("lora_te")}
    sd1_te = {k: v for k, v in SD15_KEYS.items() if k.startswith("lora_te")}
    assert lora_file.inspect(write_lora(tmp_path / "x.safetensors", sdxl_te)).arch == "sdxl"
    assert lora_file.inspect(write_lora(tmp_path / "y.safetensors", sd1_te)).arch == "sd1"


def test_metadata_decides_when_the_keys_do_not(tmp_path):
    keys = {"lora_unet_mid_block_resnets_0_conv1.lora_down.weight": ("F16", [4, 1280, 3, 3])}
    info = lora_file.inspect(
        write_lora(tmp_path / "m.safetensors", keys, {"ss_base_model_version": "sdxl_base_v1-0"})
    )
    assert info.arch == "sdxl"
    assert lora_file.inspect(write_lora(tmp_path / "n.safetensors", keys)).arch == "unknown"


def test_trigger_words_come_from_class_tokens_then_folders_then_output_name(tmp_path):
    datasets = [
        {
            "subsets": [
                {"class_tokens": "ohwx cat", "is_reg": False},
                {"class_tokens": "cat", "is_reg": True},
                {"class_tokens": "ohwx dog", "is_reg": False},
            ]
        }
    ]
    meta = {
        "ss_datasets": json.dumps(datasets),
        "ss_tag_frequency": json.dumps({"2_other": {}}),
        "ss_output_name": "pets",
    }
    assert lora_file.trigger_words_from_metadata(meta) == ["ohwx cat", "ohwx dog"]
    del meta["ss_datasets"]
    assert lora_file.trigger_words_from_metadata(meta) == ["other"]
    del meta["ss_tag_frequency"]
    assert lora_file.trigger_words_from_metadata(meta) == ["pets"]
    assert lora_file.trigger_words_from_metadata({"ss_datasets": "not json"}) == []


def test_model_family_follows_comfy_config_classes_and_latent_formats():
    assert lora_file.model_family(["SD15_instructpix2pix", "SD15", "BASE", "object"]) == "sd1"
    assert lora_file.model_family(["SSD1B", "SDXL", "BASE"]) == "sdxl"
    assert lora_file.model_family(["FluxSchnell", "Flux"]) == "flux"
    assert lora_file.model_family([], "SDXL") == "sdxl"
    assert lora_file.model_family([], "SD15") == "sd1|sd2"
    assert lora_file.model_family(["SD3"], "SD3") == "sd3"
    assert lora_file.model_family(["ChromaRadiance", "Chroma"]) == "chroma"
    assert lora_file.model_family(["HunyuanImage21", "HunyuanVideo"]) == "hunyuan_image"
    assert lora_file.model_family(["CosmosT2IPredict2"], "Wan21") == "unknown"


def test_sd15_lora_on_sdxl_model_is_a_clear_error_naming_both(tmp_path):
    sd15 = lora_file.inspect(write_lora(tmp_path / "mine_sd15.safetensors", SD15_KEYS))
    with pytest.raises(ValidationError, match=r"mine_sd15\.safetensors.*SD 1\.x.*SDXL"):
        lora_file.check_compatible(sd15, "sdxl")
    sdxl = lora_file.inspect(write_lora(tmp_path / "mine_xl.safetensors", SDXL_KEYS))
    with pytest.raises(ValidationError, match=r"SDXL.*SD 1\.x"):
        lora_file.check_compatible(sdxl, "sd1")


def test_matching_or_unknown_families_are_allowed(tmp_path):
    sd15 = lora_file.inspect(write_lora(tmp_path / "a.safetensors", SD15_KEYS))
    lora_file.check_compatible(sd15, "sd1")
    lora_file.check_compatible(sd15, "sd1|sd2")
    lora_file.check_compatible(sd15, "unknown")
    assert lora_file.compatible("unknown", "sdxl")


def test_epoch_files_follow_kohya_naming(tmp_path):
    final = write_lora(tmp_path / "run.safetensors", SD15_KEYS, {"ss_epoch": "3"})
    e1 = write_lora(tmp_path / "run-000001.safetensors", SD15_KEYS)
    assert lora_file.epoch_file(str(final), 0) == str(final)
    assert lora_file.epoch_file(str(final), 1) == str(e1)
    assert lora_file.epoch_file(str(final), 3) == str(final)  # the final file is the last epoch
    with pytest.raises(ValidationError, match=r"No epoch 2 .*epochs saved: 1, 3"):
        lora_file.epoch_file(str(final), 2)
