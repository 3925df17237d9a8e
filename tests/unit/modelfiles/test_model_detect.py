"""Base checkpoint architecture from the safetensors header: SD1 / SD2 / SDXL, or a clear refusal."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree


@pytest.mark.parametrize(
    "tensors,arch,script",
    [
        (fakes.sd1_tensors(), "sd1", "train_network.py"),
        (fakes.sd2_tensors(), "sd2", "train_network.py"),
        (fakes.sdxl_tensors(), "sdxl", "sdxl_train_network.py"),
    ],
)
def test_detects_architecture_from_tensor_names_and_shapes(tmp_path, tensors, arch, script):
    ckpt = fakes.write_checkpoint(tmp_path / "m.safetensors", tensors)
    info = detect_model(ckpt)
    assert (info.arch, info.script) == (arch, script)


def test_sdxl_detected_by_cross_attention_width_alone(tmp_path):
    ckpt = fakes.write_checkpoint(
        tmp_path / "m.safetensors",
        {
            "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (
                "F16",
                [640, 2048],
            )
        },
    )
    assert detect_model(ckpt).arch == "sdxl"


@pytest.mark.parametrize(
    "key,what",
    [
        ("mlp_t5.0.weight", "Hunyuan-DiT"),
        ("model.diffusion_model.caption_projection.0.linear.weight", "HiDream"),
    ],
)
def test_models_neither_trainer_trains_are_refused_by_name(tmp_path, key, what):
    ckpt = fakes.write_checkpoint(tmp_path / "m.safetensors", {key: ("F16", [4, 4])})
    with pytest.raises(ValidationError, match=what) as exc:
        detect_model(ckpt)
    message = str(exc.value)
    assert "does not train" in message and "FLUX.1" in message and "Qwen-Image" in message
    assert "through sd-scripts" in message and "through musubi-tuner" in message


def test_a_lora_is_not_accepted_as_base_model(tmp_path):
    ckpt = fakes.write_checkpoint(
        tmp_path / "l.safetensors", {"lora_unet_x.lora_down.weight": ("F16", [4, 320])}
    )
    with pytest.raises(ValidationError, match="is a LoRA, not a base model"):
        detect_model(ckpt)


def test_ckpt_needs_the_model_type_set_by_hand(tmp_path):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x02pickle")
    with pytest.raises(ValidationError, match="Set the model type"):
        detect_model(ckpt)
    assert detect_model(ckpt, "sd2").arch == "sd2"


def test_unknown_model_type_and_missing_file(tmp_path):
    ckpt = fakes.write_checkpoint(tmp_path / "m.safetensors", fakes.sd1_tensors())
    with pytest.raises(ValidationError, match="auto, sd1, sd2, sdxl, sd3, flux"):
        detect_model(ckpt, "flux3")
    assert detect_model(ckpt, "flux").arch == "flux"
    with pytest.raises(ValidationError, match="does not exist"):
        detect_model(tmp_path / "nope.safetensors")


def test_not_a_safetensors_file_is_a_sentence(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"hello")
    with pytest.raises(ValidationError, match="Cannot read the base model"):
        detect_model(bad)


def test_diffusers_folder_is_read_from_unet_config(tmp_path):
    (tmp_path / "d" / "unet").mkdir(parents=True)
    (tmp_path / "d" / "unet" / "config.json").write_text('{"cross_attention_dim": 2048}')
    assert detect_model(tmp_path / "d").arch == "sdxl"


def test_header_only_read_of_a_big_file_is_cheap(tmp_path):
    # 1.6 GB sparse file: detection must read the header only.
    ckpt = tmp_path / "big.safetensors"
    write_safetensors_header_only(ckpt, {**fakes.sd1_tensors(), "pad": ("F32", [400_000_000])})
    assert ckpt.stat().st_size > 1_500_000_000
    assert detect_model(ckpt).arch == "sd1"
