"""Every family sd-scripts trains is told from its file alone: synthetic headers with the real key
names and shapes (tests/unit/synthetic_models.py), full checkpoints and diffusion-model-only files."""

from __future__ import annotations

import json

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import components
from lora_workbench.modelfiles.detect import detect_model
from tests.unit import synthetic_models as sm

EVERY = sm.every_family()


@pytest.mark.parametrize(
    ("family", "variant", "tensors", "_folder"), EVERY, ids=[f"{f}-{v}" for f, v, *_ in EVERY]
)
def test_every_family_and_variant_is_told_from_its_header(tmp_path, family, variant, tensors, _folder):
    info = detect_model(sm.write_model(tmp_path / "m.safetensors", tensors))
    assert (info.arch, info.variant) == (family, variant)
    assert not info.unusable, info.unusable
    assert info.how


@pytest.mark.parametrize(
    ("family", "variant", "tensors", "_folder"), EVERY, ids=[f"{f}-{v}" for f, v, *_ in EVERY]
)
def test_full_size_sparse_files_cost_one_header_read(tmp_path, family, variant, tensors, _folder):
    path = sm.write_model(tmp_path / f"{family}.safetensors", tensors)
    assert path.stat().st_size >= sm.size_of(tensors)  # the real size: a FLUX.1 file is about 24 GB
    assert detect_model(path).arch == family


def test_the_sparse_files_have_the_real_sizes(tmp_path):
    gib = 1024**3
    sizes = {f"{f}-{v}": sm.size_of(t) / gib for f, v, t, _ in EVERY}
    assert 22 < sizes["flux-dev"] < 23  # flux1-dev.safetensors, bf16: 23.8 GB = 22.2 GiB
    assert 16 < sizes["chroma-"] < 17.5  # Chroma: 8.9 B parameters
    assert 4.5 < sizes["lumina2-"] < 5  # Lumina Image 2.0: 2.6 B parameters
    assert 15 < sizes["sd3-3.5-large"] < 16  # SD3.5 large MMDiT: 8.1 B parameters in fp16
    assert 31 < sizes["hunyuan_image-2.1"] < 33  # HunyuanImage 2.1: 17 B parameters
    assert 3.5 < sizes["anima-"] < 4.5  # Anima: 2 B DiT + the LLM adapter


@pytest.mark.parametrize(
    ("tensors", "layout"),
    [
        (sm.flux("dev", prefix="model.diffusion_model."), "diffusion_model"),
        (
            {**sm.flux("dev", "model.diffusion_model."), **sm.clip_l("text_encoders.clip_l.transformer.")},
            "checkpoint",
        ),
        (sm.anima(prefix=""), "diffusion_model"),
        (sm.anima(prefix="net."), "diffusion_model"),
        (sm.lumina2(prefix="model.diffusion_model."), "diffusion_model"),
    ],
)
def test_prefixed_and_bare_diffusion_models_are_both_recognised(tmp_path, tensors, layout):
    info = detect_model(sm.write_model(tmp_path / "m.safetensors", tensors))
    assert info.layout == layout and not info.unusable


def test_a_checkpoint_says_which_text_encoders_and_vae_it_carries(tmp_path):
    with_te = detect_model(sm.write_model(tmp_path / "a.safetensors", sm.sd3_checkpoint("medium")))
    assert set(with_te.includes) == {"clip_l", "clip_g", "t5xxl", "ae16"}
    bare = detect_model(sm.write_model(tmp_path / "b.safetensors", sm.sd3_checkpoint("3.5-large", False)))
    assert bare.includes == ("ae16",) and bare.layout == "checkpoint"


@pytest.mark.parametrize(
    ("tensors", "family", "why"),
    [
        (sm.sd3_mmdit("3.5-large", prefix=""), "sd3", "model.diffusion_model"),
        (sm.hunyuan_image(names="comfy"), "hunyuan_image", "ComfyUI's tensor names"),
        (sm.hunyuan_image(prefix="model.diffusion_model."), "hunyuan_image", "bare keys"),
        (sm.sd_unet(2048, prefix=""), "sdxl", "full checkpoint"),
        ({**sm.flux("dev"), "img_in.weight": ("BF16", [3072, 384])}, "flux", "Fill/Canny/Depth"),
        ({**sm.chroma(), "nerf_blocks.0.norm.scale": ("BF16", [64])}, "chroma", "pixel space"),
        ({**sm.lumina2(), "x_embedder.weight": ("BF16", [3072, 64])}, "lumina2", "width is 3072"),
    ],
)
def test_files_sd_scripts_cannot_load_say_why_before_launch(tmp_path, tensors, family, why):
    info = detect_model(sm.write_model(tmp_path / "m.safetensors", tensors))
    assert info.arch == family and why in info.unusable


@pytest.mark.parametrize(
    ("tensors", "kind"),
    [
        (sm.t5xxl(), "T5-XXL"),
        (sm.flux_ae(), "16-channel autoencoder"),
        (sm.qwen3_06b(), "Qwen3"),
        (sm.gemma2(), "Gemma 2"),
    ],
)
def test_a_text_encoder_or_vae_picked_as_base_model_is_named(tmp_path, tensors, kind):
    with pytest.raises(ValidationError, match=f"holds .*{kind}.*not a diffusion model"):
        detect_model(sm.write_model(tmp_path / "te.safetensors", tensors))


def test_cosmos_without_animas_adapter_is_refused_by_name(tmp_path):
    cosmos = {k: v for k, v in sm.anima().items() if "llm_adapter" not in k}
    with pytest.raises(ValidationError, match="Cosmos Predict2"):
        detect_model(sm.write_model(tmp_path / "c.safetensors", cosmos))


def test_modelspec_architecture_answers_when_the_tensors_do_not(tmp_path):
    odd = {"some.quantized.blob": ("U8", [1024])}
    path = sm.write_model(tmp_path / "q.safetensors", odd, {"modelspec.architecture": "flux-1-dev"})
    info = detect_model(path)
    assert info.arch == "flux" and "modelspec.architecture=flux-1-dev" in info.how
    with pytest.raises(ValidationError, match="set the model type"):
        detect_model(sm.write_model(tmp_path / "r.safetensors", odd))


def test_metadata_that_contradicts_the_tensors_is_a_warning(tmp_path):
    path = sm.write_model(
        tmp_path / "m.safetensors", sm.flux("schnell"), {"modelspec.architecture": "lumina-2"}
    )
    info = detect_model(path)
    assert info.arch == "flux" and "going by the tensors" in info.warnings[0]


def test_the_family_can_be_set_by_hand_for_any_file(tmp_path):
    odd = sm.write_model(tmp_path / "x.safetensors", {"a": ("F16", [1])})
    assert detect_model(odd, "anima").arch == "anima"
    assert detect_model(odd, "anima").how == "set by the user"


def test_diffusers_folders_are_read_from_model_index(tmp_path):
    flux_dir = tmp_path / "FLUX.1-dev"
    flux_dir.mkdir()
    (flux_dir / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    assert detect_model(flux_dir).arch == "flux" and not detect_model(flux_dir).unusable
    sd3_dir = tmp_path / "sd3"
    sd3_dir.mkdir()
    (sd3_dir / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    assert "single .safetensors file" in detect_model(sd3_dir).unusable


@pytest.mark.parametrize(
    ("tensors", "kind"),
    [
        (sm.clip_l(), "clip_l"),
        (sm.clip_g(), "clip_g"),
        (sm.t5xxl(), "t5xxl"),
        (sm.byt5(), "byt5"),
        (sm.gemma2(), "gemma2"),
        (sm.qwen2_5_vl(), "qwen2_5_vl"),
        (sm.qwen3_06b(), "qwen3"),
        (sm.flux_ae(), "ae16"),
        (sm.hunyuan_vae(), "hunyuan_vae"),
        (sm.qwen_image_vae(), "qwen_image_vae"),
        ({"decoder.conv_in.weight": ("F16", [512, 4, 3, 3])}, "sd_vae"),
        ({"decoder.conv1.weight": ("F16", [384, 16, 3, 3, 3])}, "qwen_image_vae"),
        ({"x": ("F16", [3])}, "unknown"),
    ],
)
def test_text_encoder_and_vae_kinds(tmp_path, tensors, kind):
    assert components.file_kind(sm.write_model(tmp_path / "c.safetensors", tensors)) == kind


def test_fp8_files_are_read_like_any_other(tmp_path):
    fp8 = {k: ("F8_E4M3" if len(s) == 2 else d, s) for k, (d, s) in sm.flux("dev").items()}
    path = sm.write_model(tmp_path / "flux1-dev-fp8.safetensors", fp8)
    assert path.stat().st_size < sm.size_of(sm.flux("dev"))  # one byte a weight
    info = detect_model(path)
    assert (info.arch, info.variant, info.unusable) == ("flux", "dev", "")


def test_comfyuis_scaled_fp8_files_are_refused_with_the_reason(tmp_path):
    scaled = {**sm.flux("dev"), "scaled_fp8": ("F8_E4M3", [2]), "img_in.scale_weight": ("F32", [])}
    info = detect_model(sm.write_model(tmp_path / "flux1-dev-fp8-scaled.safetensors", scaled))
    assert info.arch == "flux" and "scaled fp8" in info.unusable
    t5 = sm.write_model(tmp_path / "t5.safetensors", {**sm.t5xxl(), "scaled_fp8": ("F8_E4M3", [2])})
    assert components.file_facts(t5) == components.FileFacts("t5xxl", scaled_fp8=True)


def test_a_family_set_by_hand_keeps_what_the_file_says_when_it_agrees(tmp_path):
    path = sm.write_model(tmp_path / "m.safetensors", sm.sd3_checkpoint("medium"))
    agreed = detect_model(path, "sd3")
    assert (agreed.variant, set(agreed.includes)) == ("medium", {"clip_l", "clip_g", "t5xxl", "ae16"})
    assert agreed.how.startswith("set by the user, and the file agrees")
    forced = detect_model(path, "flux")
    assert forced.arch == "flux" and "looks like SD3 medium" in forced.how
