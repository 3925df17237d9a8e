"""The one settings table speaks for musubi-tuner too: each family id has one trainer, every setting
that applies to a musubi family changes the Job, and the sd-scripts-only ones are refused there."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.training import families
from lora_workbench.training.backends import for_family, owner_of
from lora_workbench.training.backends.musubi import MUSUBI
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import (
    MUSUBI_FAMILIES,
    SD_SCRIPTS_FAMILIES,
    SETTINGS,
    VIDEO_FAMILIES,
    Where,
)
from lora_workbench.training.validation import check_family, validate
from tests.unit.training.musubi_fakes import build, make_project, target

# Settings whose example cannot change a musubi Job, and why.
SAME_JOB = {
    "mixed_precision": "auto already trains musubi families in bf16 on a GPU (the example)",
    "text_encoder_lr": "musubi-tuner trains the diffusion model only",
    "train_text_encoder": "musubi-tuner trains the diffusion model only",
    "show_samples": "ours: fills empty prompts with the trigger words (tested with the sd-scripts builder)",
    "link_to_library": "ours: links the result afterwards",
    "resume": "ours: train.py resolves it to the run's state folder (Target.resume_state)",
    "model_type": "ours: decides the family before a backend is chosen",
    "network_module": "each musubi family has one LoRA module, the one auto picks",
}
# Examples musubi-tuner takes where the table's (made for sd-scripts) is one it refuses.
MUSUBI_EXAMPLES = {
    "optimizer": "Adafactor",
    "attention": "xformers",
    "timestep_sampling": "qwen_shift",
    "task": "t2v-1.3B",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    return make_project(tmp_path, monkeypatch)


def _what_it_builds(job) -> tuple:
    return tuple(s.argv for s in job.steps), dict(job.files)


def _build(project, family: str, values: dict, video: bool = False):
    """As train.py does: the device setting decides the target's device (auto: the GPU here)."""
    device = values.get("device", "auto")
    t = target(project, family, device="gpu" if device == "auto" else device)
    # Kontext and Qwen-Image-Edit learn from pairs: a control image for each training image
    t.dataset.subsets[0].control_dir, t.dataset.subsets[0].control_count = str(project / "control"), 3
    t.dataset.subsets[0].kind = "video" if video else "image"
    return build(t, **values)


def _musubi_family(s) -> str | None:
    return next((f for f in s.families if f in MUSUBI_FAMILIES), None)


def test_each_family_id_has_one_trainer():
    assert set(MUSUBI.recipes()) == set(MUSUBI_FAMILIES)
    for family in MUSUBI_FAMILIES:
        backend, recipe = for_family(family)
        assert backend is MUSUBI and recipe.backend == "musubi-tuner" and families.get(family) is recipe
    for family in SD_SCRIPTS_FAMILIES:
        assert owner_of(family).id == "sd-scripts" and families.get(family).backend == "sd-scripts"


def test_every_setting_for_a_musubi_family_changes_the_job(project):
    checked = []
    for s in SETTINGS:
        family = _musubi_family(s)
        if family is None or s.name in SAME_JOB:
            continue
        if s.where is Where.RUN and s.comfy_folder:  # a model file: its path is what changes
            continue
        video = s.families == VIDEO_FAMILIES  # the frame settings shape video subsets only
        base = _what_it_builds(_build(project, family, s.example_with, video))
        values = {**s.example_with, s.name: MUSUBI_EXAMPLES.get(s.name, s.example_value())}
        validate(TrainOptions.from_values(values))
        assert _what_it_builds(_build(project, family, values, video)) != base, s.name
        checked.append(s.name)
    assert {
        "weighting_scheme",
        "fp8_text_encoder",
        "blocks_to_swap",
        "learning_rate",
        "target_frames",
    } <= set(checked)


def test_sd_scripts_only_settings_are_refused_for_musubi_families():
    refused = [s for s in SETTINGS if not set(s.families) & set(MUSUBI_FAMILIES)]
    assert {"unet_lr", "shuffle_caption", "cache_latents", "noise_offset", "bucket_reso_steps"} <= {
        s.name for s in refused
    }
    for s in refused:
        values = {**s.example_with, s.name: s.example_value()}
        with pytest.raises(ValidationError, match="applies only to") as refused:
            check_family(TrainOptions.from_values(values), "wan", "t2v-14B")
        assert str(refused.value).split()[0] in values, s.name  # the setting, or one its example needs


def test_musubi_settings_name_only_real_families():
    for s in SETTINGS:
        assert set(s.families) <= set(SD_SCRIPTS_FAMILIES) | set(MUSUBI_FAMILIES), s.name
    for recipe in families.all_recipes():
        assert recipe.name and recipe.script.endswith(".py"), recipe.id


def test_each_recipe_names_the_files_its_steps_take():
    for family in MUSUBI_FAMILIES:
        _, recipe = for_family(family)
        assert {"cache_latents", "cache_text_encoder_outputs", "train"} <= set(recipe.steps)
        assert (recipe.output == "convert") == ("convert" in recipe.steps)
        for f in recipe.model_files:
            assert f.steps and set(f.steps) <= set(recipe.steps), (family, f.option)
            assert f.setting in {s.name for s in SETTINGS if s.comfy_folder}, (family, f.setting)
            assert family in next(s for s in SETTINGS if s.name == f.setting).families, (family, f.setting)
