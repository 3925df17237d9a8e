"""The family table: one recipe per family sd-scripts trains, consistent with the file families and
with the model sizes the synthetic headers (the real files' shapes) have."""

from __future__ import annotations

import pytest

from lora_workbench.modelfiles import families as file_families
from lora_workbench.training import families
from tests.unit import synthetic_models as sm

SCRIPTS = {
    "sd1": "train_network.py",
    "sd2": "train_network.py",
    "sdxl": "sdxl_train_network.py",
    "sd3": "sd3_train_network.py",
    "flux": "flux_train_network.py",
    "chroma": "flux_train_network.py",
    "lumina2": "lumina_train_network.py",
    "hunyuan_image": "hunyuan_image_train_network.py",
    "anima": "anima_train_network.py",
}
FILES = {  # sd-scripts' option names, checked in each trainer's argument parser
    "sd1": [],
    "sd2": [],
    "sdxl": [],
    "sd3": ["clip_l", "clip_g", "t5xxl", "vae"],
    "flux": ["clip_l", "t5xxl", "ae"],
    "chroma": ["t5xxl", "ae"],
    "lumina2": ["gemma2", "ae"],
    "hunyuan_image": ["text_encoder", "byt5", "vae"],
    "anima": ["qwen3", "vae"],
}


def test_every_sd_scripts_family_has_exactly_one_recipe():
    # musubi-tuner's families have their recipes in training/backends/musubi
    sd_scripts = {f.id for f in file_families.FAMILY_LIST if f.trainer == "sd-scripts"}
    assert set(families.FAMILIES) == sd_scripts


@pytest.mark.parametrize("family", list(SCRIPTS))
def test_script_network_module_and_extra_files_per_family(family):
    recipe = families.get(family)
    assert recipe.script == SCRIPTS[family]
    assert [f.option for f in recipe.model_files] == FILES[family]
    assert recipe.network_modules[0].startswith("networks.lora")
    assert all(f.folder in ("text_encoders", "vae") for f in recipe.model_files)


def test_the_dit_families_only_offer_their_own_network_module():
    assert families.get("flux").network_modules == ("networks.lora_flux", "networks.oft_flux")
    assert families.get("sd3").network_modules == ("networks.lora_sd3",)
    assert families.get("lumina2").network_modules == ("networks.lora_lumina",)
    assert families.get("hunyuan_image").network_modules == ("networks.lora_hunyuan_image",)
    assert families.get("anima").network_modules == ("networks.lora_anima",)
    assert "networks.lora_flux" not in families.get("sdxl").network_modules


def test_family_options_follow_sd_scripts_recommendations():
    flux = families.get("flux").recommended
    assert (flux["guidance_scale"], flux["model_prediction_type"]) == (1.0, "raw")
    chroma = families.get("chroma")
    assert (
        chroma.recommended["guidance_scale"] == 0.0 and chroma.recommended["timestep_sampling"] == "sigmoid"
    )
    assert chroma.required == {"model_type": "chroma", "apply_t5_attn_mask": True}
    assert families.get("lumina2").recommended["timestep_sampling"] == "nextdit_shift"
    assert families.get("hunyuan_image").required == {"network_train_unet_only": True}
    assert families.family_of_option("system_prompt") == ["lumina2"]
    assert set(families.family_of_option("discrete_flow_shift")) == {
        "flux",
        "lumina2",
        "hunyuan_image",
        "anima",
    }


def test_samples_use_each_familys_own_settings():
    assert families.get("flux").sample_for("dev").guidance == 3.5
    assert families.get("flux").sample_for("schnell").steps == 4
    assert families.get("chroma").sample_for().negative  # Chroma's sampler needs a negative prompt
    assert families.get("sdxl").sample_for().cfg is None  # sd-scripts' own default


@pytest.mark.parametrize(
    ("family", "variant", "tensors"),
    [
        ("flux", "", sm.flux("dev")),
        ("chroma", "", sm.chroma()),
        ("sd3", "", sm.sd3_mmdit("3.5-large")),
        ("sd3", "medium", sm.sd3_mmdit("medium")),
        ("lumina2", "", sm.lumina2()),
        ("hunyuan_image", "", sm.hunyuan_image()),
        ("anima", "", sm.anima()),
    ],
)
def test_memory_sizes_match_the_models_and_their_loras(family, variant, tensors):
    mem = families.get(family).memory_for(variant)
    params = sm.size_of(tensors) / 2 / 1e9  # bf16/fp16: two bytes a parameter
    assert abs(mem.dit_b - params) / params < 0.02, (mem.dit_b, params)
    lora = sm.kohya_lora(tensors, family, rank=1, strip="model.diffusion_model.")
    lora = lora or sm.kohya_lora(tensors, family, rank=1, strip="net.")
    per_rank = sum(s[0] * s[1] for k, (_d, s) in lora.items() if k.endswith("weight")) / 1e6
    assert abs(mem.lora_m_per_rank - per_rank) / per_rank < 0.02, (mem.lora_m_per_rank, per_rank)


def test_docs_families_md_is_generated_from_the_tables():
    from pathlib import Path

    from lora_workbench.training import families_doc

    committed = Path(__file__).resolve().parents[3] / families_doc.PATH
    assert committed.read_text(encoding="utf-8") == families_doc.render(), (
        "docs/families.md is stale: regenerate it with families_doc.render()"
    )
    assert (
        "`--t5xxl`: T5-XXL text encoder from `text_encoders`, e.g. `t5xxl_fp16.safetensors`"
        in committed.read_text()
    )
