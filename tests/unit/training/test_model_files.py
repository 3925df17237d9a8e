"""Extra model files: picked from ComfyUI's text_encoders/vae folders, pre-selected by name when the
choice is obvious, named with their folder when missing, and refused when they are the wrong kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import ModelInfo, detect_model
from lora_workbench.training import families, model_files
from lora_workbench.training.model_files import AUTO, NONE
from tests.unit import synthetic_models as sm

FILES = {
    "text_encoders": {
        "clip_l.safetensors": sm.clip_l(),
        "clip_g.safetensors": sm.clip_g(),
        "t5xxl_fp16.safetensors": sm.t5xxl(),
        "t5xxl_fp8_e4m3fn.safetensors": sm.t5xxl(),
        "t5xxl_fp8_e4m3fn_scaled.safetensors": sm.t5xxl(),
        "gemma_2_2b_fp16.safetensors": sm.gemma2(),
        "qwen_2.5_vl_7b.safetensors": sm.qwen2_5_vl(),
        "byt5_small_glyphxl_fp16.safetensors": sm.byt5(),
        "qwen_3_06b_base.safetensors": sm.qwen3_06b(),
    },
    "vae": {
        "ae.safetensors": sm.flux_ae(),
        "hunyuan_image_2.1_vae_fp16.safetensors": sm.hunyuan_vae(),
        "qwen_image_vae.safetensors": sm.qwen_image_vae(),
        "sdxl_vae.safetensors": {"decoder.conv_in.weight": ("F16", [512, 4, 3, 3])},
    },
}


@pytest.fixture
def comfy_models(tmp_path) -> Path:
    root = tmp_path / "models"
    for folder, files in FILES.items():
        for name, tensors in files.items():
            sm.write_model(root / folder / name, tensors)
    return root


def listing(root: Path) -> dict[str, list[str]]:
    return {f: sorted(p.name for p in (root / f).iterdir()) for f in FILES}


def resolver(root: Path):
    def resolve(folder, name):
        p = root / folder / name
        return str(p) if p.is_file() else None

    return resolve


def model(family: str, includes=()) -> ModelInfo:
    return ModelInfo("/m/base.safetensors", family, "test", includes=tuple(includes))


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("flux", {"clip_l": "clip_l.safetensors", "t5xxl": "t5xxl_fp16.safetensors", "ae": "ae.safetensors"}),
        ("chroma", {"t5xxl": "t5xxl_fp16.safetensors", "ae": "ae.safetensors"}),
        ("lumina2", {"gemma2": "gemma_2_2b_fp16.safetensors", "ae": "ae.safetensors"}),
        (
            "hunyuan_image",
            {
                "text_encoder": "qwen_2.5_vl_7b.safetensors",
                "byt5": "byt5_small_glyphxl_fp16.safetensors",
                "vae": "hunyuan_image_2.1_vae_fp16.safetensors",
            },
        ),
        ("anima", {"qwen3": "qwen_3_06b_base.safetensors", "vae": "qwen_image_vae.safetensors"}),
    ],
)
def test_the_obvious_files_are_preselected_by_name(comfy_models, family, expected):
    picked = model_files.pick(model(family), {}, listing(comfy_models), resolver(comfy_models))
    assert {p.option: p.name for p in picked} == expected
    assert all(p.how == "by name" and Path(p.path).is_file() for p in picked)
    assert set(model_files.as_options(picked)) == set(expected)


def test_fp16_t5_wins_over_fp8_and_scaled_t5_is_never_preselected():
    slot = next(f for f in families.get("flux").model_files if f.option == "t5xxl")
    assert (
        model_files.preselect(slot, ["t5xxl_fp8_e4m3fn.safetensors", "t5xxl_fp16.safetensors"])
        == "t5xxl_fp16.safetensors"
    )
    assert model_files.preselect(slot, ["t5xxl_fp8_e4m3fn_scaled.safetensors"]) == ""
    assert (
        model_files.preselect(slot, ["a/t5xxl_fp16.safetensors", "b/t5xxl_fp16.safetensors"]) == ""
    )  # a tie


def test_a_missing_file_is_named_with_the_folder_it_belongs_in(tmp_path):
    empty = {"text_encoders": [], "vae": ["ae.safetensors"]}
    with pytest.raises(ValidationError) as exc:
        model_files.pick(model("flux"), {}, empty, lambda f, n: None)
    msg = str(exc.value)
    assert "CLIP-L text encoder (--clip_l)" in msg and "models/text_encoders (or models/clip)" in msg


def test_a_picked_file_that_is_not_there_is_a_sentence(comfy_models):
    chosen = {"clip_l": "gone.safetensors"}
    with pytest.raises(
        ValidationError, match=r"'gone.safetensors' \(--clip_l\) is not in ComfyUI's models/text_encoders"
    ):
        model_files.pick(model("flux"), chosen, listing(comfy_models), resolver(comfy_models))


def test_a_file_of_the_wrong_kind_is_refused_before_launch(comfy_models):
    chosen = {"clip_l": "t5xxl_fp16.safetensors"}
    with pytest.raises(ValidationError, match="holds a T5-XXL text encoder, not a CLIP-L text encoder"):
        model_files.pick(model("flux"), chosen, listing(comfy_models), resolver(comfy_models))
    with pytest.raises(ValidationError, match="SD 1.x/2.x/SDXL VAE"):
        model_files.pick(
            model("flux"), {"ae": "sdxl_vae.safetensors"}, listing(comfy_models), resolver(comfy_models)
        )


def test_sd3_uses_the_encoders_its_checkpoint_carries(tmp_path, comfy_models):
    ckpt = sm.write_model(tmp_path / "sd3_medium_incl_clips_t5xxl.safetensors", sm.sd3_checkpoint("medium"))
    info = detect_model(ckpt)
    picked = model_files.pick(info, {}, listing(comfy_models), resolver(comfy_models))
    assert {p.option: p.how for p in picked} == {
        o: "in the checkpoint" for o in ("clip_l", "clip_g", "t5xxl", "vae")
    }
    assert model_files.as_options(picked) == {}
    bare = detect_model(
        sm.write_model(tmp_path / "sd3.5_large.safetensors", sm.sd3_checkpoint("3.5-large", False))
    )
    picked = model_files.pick(bare, {}, listing(comfy_models), resolver(comfy_models))
    assert model_files.as_options(picked).keys() == {"clip_l", "clip_g", "t5xxl"}


def test_none_is_only_allowed_where_the_checkpoint_carries_the_file(comfy_models):
    with pytest.raises(ValidationError, match="does not carry one"):
        model_files.pick(model("flux"), {"clip_l": NONE}, listing(comfy_models), resolver(comfy_models))
    picked = model_files.pick(
        model("sd3", ["clip_l", "clip_g", "t5xxl", "ae16"]),
        {"t5xxl": NONE, "clip_l": AUTO},
        listing(comfy_models),
        resolver(comfy_models),
    )
    assert all(p.how == "in the checkpoint" for p in picked)


def test_sd_families_need_no_extra_files(comfy_models):
    assert model_files.pick(model("sdxl"), {}, listing(comfy_models), resolver(comfy_models)) == []


def test_a_scaled_fp8_text_encoder_is_refused(tmp_path, comfy_models):
    sm.write_model(
        comfy_models / "text_encoders/t5xxl_scaled.safetensors",
        {**sm.t5xxl(), "scaled_fp8": ("F8_E4M3", [2])},
    )
    with pytest.raises(ValidationError, match="scaled fp8.*scale tensors sd-scripts does not read"):
        model_files.pick(
            model("flux"),
            {"t5xxl": "t5xxl_scaled.safetensors"},
            listing(comfy_models),
            resolver(comfy_models),
        )
